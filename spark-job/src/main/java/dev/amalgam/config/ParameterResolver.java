package dev.amalgam.config;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Resolves a {@link ParameterValue} for one tensor. Gradients interpolate at
 * {@code t = layer / (layers - 1)}; tensors outside the layer stack use {@code t = 0}.
 */
public final class ParameterResolver {
    /** A decoder layer's index in a tensor name: {@code layers.N.}, or {@code h.N.} (GPT-2, BLOOM, Falcon), {@code blocks.N.} (MPT). */
    private static final Pattern LAYER = Pattern.compile("(?:^|\\.)(?:layers|h|blocks)\\.(\\d+)\\.");

    private final int layerCount;

    public ParameterResolver(int layerCount) {
        this.layerCount = layerCount;
    }

    /** {@code tensorName} with its layer index replaced by {@code layer}; the name must have one. */
    public static String withLayer(String tensorName, int layer) {
        Matcher m = LAYER.matcher(tensorName);
        if (!m.find()) {
            throw new IllegalArgumentException(tensorName + " is not a layer tensor");
        }
        return tensorName.substring(0, m.start(1)) + layer + tensorName.substring(m.end(1));
    }

    /** The layer index of a tensor name ("model.layers.12.mlp.up_proj.weight" is 12), or -1. */
    public static int layerOf(String tensorName) {
        Matcher m = LAYER.matcher(tensorName);
        return m.find() ? Integer.parseInt(m.group(1)) : -1;
    }

    /** The value for {@code tensorName}: a Double or Boolean, or null when no filter entry matches. */
    public Object resolve(ParameterValue value, String tensorName) {
        return resolve(value, tensorName, position(tensorName));
    }

    /** The same with gradients read at {@code t} (0 to 1), where slices give each layer its place. */
    public static Object resolve(ParameterValue value, String tensorName, double t) {
        if (value instanceof ParameterValue.Scalar s) {
            return s.value();
        }
        if (value instanceof ParameterValue.Gradient g) {
            return interpolate(g.points(), t);
        }
        for (ParameterValue.FilterEntry entry : ((ParameterValue.Filtered) value).entries()) {
            String f = entry.filter();
            if (f.isEmpty() || f.equals("*") || tensorName.contains(f)) {
                return resolve(entry.value(), tensorName, t);
            }
        }
        return null;
    }

    /** Where a tensor of a {@code models} merge reads gradients: its layer over the layer stack, 0 outside it. */
    public double position(String tensorName) {
        int layer = layerOf(tensorName);
        if (layer < 0 || layerCount <= 1) {
            return 0.0;
        }
        return (double) layer / (layerCount - 1);
    }

    static double interpolate(double[] points, double t) {
        if (points.length == 1) {
            return points[0];
        }
        double x = t * (points.length - 1);
        int i = (int) Math.floor(x);
        if (i >= points.length - 1) {
            return points[points.length - 1];
        }
        double frac = x - i;
        return points[i] + (points[i + 1] - points[i]) * frac;
    }
}
