package dev.amalgam.testing;

import dev.amalgam.kernels.CounterRandom;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * The merge methods of METHODS.md written the plain way: whole tensors in memory, sorting for
 * order statistics, BigDecimal for sums. Independent of the chunked statistics and kernels it
 * checks; shares only the counter-based generator, which is the definition of the random masks.
 */
public final class ReferenceMerge {

    /** One model's tensor and its resolved parameters (fractions as the config's decimals, in double). */
    public record Model(float[] x, float weight, double density, double gamma, double epsilon) {
    }

    /** The global settings. */
    public record Settings(boolean normalize, boolean rescale, float lambda, long seed) {
    }

    private ReferenceMerge() {
    }

    public static float[] linear(List<Model> models, boolean normalize) {
        int n = models.get(0).x().length;
        float[] out = new float[n];
        float weightSum = 0.0f;
        for (Model m : models) {
            weightSum += m.weight();
        }
        for (int j = 0; j < n; j++) {
            float sum = 0.0f;
            for (Model m : models) {
                sum += m.weight() * m.x()[j];
            }
            out[j] = normalize ? sum / weightSum : sum;
        }
        return out;
    }

    public static float[] taskVector(String method, String tensor, long[] shape, float[] base, List<Model> models,
                                     Settings s) {
        int n = base.length;
        boolean consensus = switch (method) {
            case "ties", "dare_ties", "breadcrumbs_ties", "della" -> true;
            default -> false;
        };
        List<float[]> weighted = new ArrayList<>();
        for (int i = 0; i < models.size(); i++) {
            Model m = models.get(i);
            float[] d = new float[n];
            for (int j = 0; j < n; j++) {
                d[j] = m.x()[j] - base[j];
            }
            boolean[] keep = keepMask(method, tensor, shape, d, m, i, s.seed());
            float[] kept = new float[n];
            for (int j = 0; j < n; j++) {
                kept[j] = keep[j] ? d[j] : 0.0f;
            }
            boolean sparsified = !method.equals("task_arithmetic") && m.density() < 1.0f;
            if (s.rescale() && sparsified) {
                float all = exactL1(d);
                float survivors = exactL1(kept);
                if (!(all < 1e-7f || survivors < 1e-7f)) {
                    float scale = all / survivors;
                    for (int j = 0; j < n; j++) {
                        kept[j] = kept[j] * scale;
                    }
                }
            }
            float[] v = new float[n];
            for (int j = 0; j < n; j++) {
                v[j] = m.weight() * kept[j];
            }
            weighted.add(v);
        }
        float[] out = new float[n];
        for (int j = 0; j < n; j++) {
            float mix = 0.0f;
            float div = 0.0f;
            if (consensus) {
                float total = 0.0f;
                for (float[] v : weighted) {
                    total += v[j];
                }
                float majority = total >= 0.0f ? 1.0f : -1.0f;
                for (int i = 0; i < weighted.size(); i++) {
                    float v = weighted.get(i)[j];
                    if (Math.signum(v) == majority) {
                        mix += v;
                        div += models.get(i).weight();
                    }
                }
                if (div == 0.0f) {
                    div = 1.0f;
                }
            } else {
                for (int i = 0; i < weighted.size(); i++) {
                    mix += weighted.get(i)[j];
                    div += models.get(i).weight();
                }
                if (Math.abs(div) < 1e-8f) {
                    div = 1.0f;
                }
            }
            if (s.normalize()) {
                mix = mix / div;
            }
            if (s.lambda() != 1.0f) {
                mix = mix * s.lambda();
            }
            out[j] = base[j] + mix;
        }
        return out;
    }

    static boolean[] keepMask(String method, String tensor, long[] shape, float[] d, Model m, int model, long seed) {
        int n = d.length;
        boolean[] keep = new boolean[n];
        if (method.equals("task_arithmetic") || m.density() >= 1.0f) {
            java.util.Arrays.fill(keep, true);
            return keep;
        }
        switch (method) {
            case "ties" -> {
                long k = (long) Math.floor(m.density() * n);
                List<Integer> order = indices(n);
                order.sort(Comparator.<Integer>comparingDouble(j -> -Math.abs(d[j])).thenComparingInt(j -> j));
                for (int r = 0; r < k; r++) {
                    keep[order.get(r)] = true;
                }
            }
            case "dare_ties", "dare_linear" -> {
                long key = CounterRandom.streamKey(seed, tensor, model);
                for (int j = 0; j < n; j++) {
                    keep[j] = CounterRandom.uniform(key, j) < (float) m.density();
                }
            }
            case "breadcrumbs", "breadcrumbs_ties" -> {
                long target = (long) Math.floor(m.density() * n);
                long top = (long) Math.floor(m.gamma() * n);
                long bot = n - target - top;
                if (bot < 0) {
                    top += bot;
                    bot = 0;
                }
                List<Integer> ascending = indices(n);
                ascending.sort(Comparator.<Integer>comparingDouble(j -> Math.abs(d[j])).thenComparingInt(j -> j));
                for (long p = bot; p < n - top; p++) {
                    keep[ascending.get((int) p)] = true;
                }
            }
            case "della", "della_linear" -> {
                int cols = shape.length == 0 ? 1 : (int) shape[shape.length - 1];
                long key = CounterRandom.streamKey(seed, tensor, model);
                float low = (float) m.density() - (float) m.epsilon();
                float twoEps = 2.0f * (float) m.epsilon();
                for (int row = 0; row < n / cols; row++) {
                    int start = row * cols;
                    List<Integer> ascending = indices(cols);
                    ascending.sort(Comparator.<Integer>comparingDouble(c -> Math.abs(d[start + c])).thenComparingInt(c -> c));
                    for (int rank = 0; rank < cols; rank++) {
                        int j = start + ascending.get(rank);
                        float spread = cols == 1 ? 0.0f : (float) rank / (float) (cols - 1);
                        keep[j] = CounterRandom.uniform(key, j) < low + spread * twoEps;
                    }
                }
            }
            default -> throw new IllegalArgumentException(method);
        }
        return keep;
    }

    static float exactL1(float[] values) {
        BigDecimal sum = BigDecimal.ZERO;
        for (float v : values) {
            sum = sum.add(new BigDecimal(Math.abs(v)));
        }
        return sum.floatValue();
    }

    private static List<Integer> indices(int n) {
        List<Integer> list = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            list.add(i);
        }
        return list;
    }
}
