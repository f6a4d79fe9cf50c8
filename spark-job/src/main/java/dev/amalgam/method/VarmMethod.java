package dev.amalgam.method;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.Operand;
import dev.amalgam.kernels.Primitive;

import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * VaRM, FuseChat's variation-ratio merge (METHODS.md, docs/methods.md): each model weighted by
 * how far it moved from the base, measured per tensor, module, layer, the whole model or per
 * element; the result is the weighted sum of the models (the base only measures).
 *
 * <p>Statistics: per model the exact sum of {@code f(d)} (a dot product for {@code square}, an
 * L1 sum for {@code abs}, a signed sum for {@code signed}) over the tensor, the group of a
 * module or layer ({@link Scope#GROUP_MEANS}: the sum of the member tensors' means), or the whole
 * model ({@link Scope#MODEL}). Element granularity needs none: its weights are per element.
 */
final class VarmMethod extends DeclaredMethod {
    static final List<String> VARIATIONS = List.of("square", "abs", "signed");
    static final List<String> GRANULARITIES = List.of("tensor", "module", "layer", "model", "element", "group");
    static final List<String> WEIGHTINGS = List.of("sum", "softmax");
    /** The modules a decoder layer has in FuseChat's grouping; other parts of a layer are modules of their own. */
    private static final List<String> MODULES = List.of("self_attn", "mlp", "input_layernorm", "post_attention_layernorm");
    /** Group numbers per layer: the four modules, then hashed names of other parts. */
    private static final int GROUPS_PER_LAYER = 64;
    private static final Pattern MODULE = Pattern.compile("(?:^|\\.)(?:layers|h|blocks)\\.(\\d+)\\.([^.]+)");

    private static final int TENSOR = 0;
    private static final int MODULE_G = 1;
    private static final int LAYER = 2;
    private static final int MODEL = 3;
    private static final int ELEMENT = 4;
    private static final int GROUP = 5;

    VarmMethod() {
        super("varm", "FuseChat VaRM: models weighted by their variation from the base",
                Inputs.base(1, Integer.MAX_VALUE),
                List.of(Parameter.choice("variation", VARIATIONS, "f(d): d^2, |d| or d"),
                        Parameter.choice("granularity", GRANULARITIES,
                                "where variation is measured: per tensor, module, layer, whole model, element, or "
                                        + "the config's groups"),
                        Parameter.choice("weighting", WEIGHTINGS, "weights from variations: by share of the sum, or softmax"),
                        Parameter.number("temperature", Parameter.Scope.GLOBAL, 1.0, Parameter.Range.above(0), false,
                                "softmax temperature")),
                Primitive.LINEAR, Primitive.DOT, Primitive.KEPT_ABS_SUM, Primitive.SUM, Primitive.VARM);
    }

    private int variation(MethodTensor t) {
        return (int) global(t, "variation");
    }

    private int granularity(MethodTensor t) {
        return (int) global(t, "granularity");
    }

    private boolean softmax(MethodTensor t) {
        return global(t, "weighting") == 1.0;
    }

    @Override
    public Set<Primitive> primitives(MethodTensor tensor) {
        if (granularity(tensor) == ELEMENT) {
            return EnumSet.of(Primitive.CODEC, Primitive.VARM);
        }
        Primitive reduction = switch (variation(tensor)) {
            case 0 -> Primitive.DOT;
            case 1 -> Primitive.KEPT_ABS_SUM;
            default -> Primitive.SUM;
        };
        return EnumSet.of(Primitive.CODEC, Primitive.LINEAR, reduction);
    }

    /** The scope a tensor's variation is reduced over, and its group number. */
    private StatisticRequest scoped(MethodTensor t, StatisticRequest r) {
        int layer = t.layer();
        return switch (granularity(t)) {
            case MODULE_G -> layer < 0 ? r : r.over(Scope.GROUP_MEANS, moduleGroup(t.name()));
            case LAYER -> layer < 0 ? r : r.over(Scope.GROUP_MEANS, layer);
            case MODEL -> r.over(Scope.MODEL);
            case GROUP -> {
                int group = t.extent().groupOf(t.name());
                yield group < 0 ? r : r.over(Scope.GROUP_MEANS, group);
            }
            default -> r;
        };
    }

    /** A layer module's group number: layer x 64 plus the module's place (known modules) or a hash of its name. */
    static int moduleGroup(String tensorName) {
        Matcher m = MODULE.matcher(tensorName);
        if (!m.find()) {
            return -1;
        }
        int known = MODULES.indexOf(m.group(2));
        int slot = known >= 0 ? known : MODULES.size()
                + Math.floorMod(m.group(2).hashCode(), GROUPS_PER_LAYER - MODULES.size());
        return Integer.parseInt(m.group(1)) * GROUPS_PER_LAYER + slot;
    }

    private static String moduleName(String tensorName) {
        Matcher m = MODULE.matcher(tensorName);
        return m.find() ? "layers." + m.group(1) + "." + m.group(2) : tensorName;
    }

    private StatisticRequest request(MethodTensor t, int model) {
        Operand d = new Operand.Delta(model);
        StatisticRequest r = switch (variation(t)) {
            case 0 -> StatisticRequest.dot(d, d);
            case 1 -> StatisticRequest.absSum(d);
            default -> StatisticRequest.sum(d);
        };
        return scoped(t, r);
    }

    @Override
    public boolean wideStatistics(MethodTensor tensor) {
        int g = granularity(tensor);
        return g == MODEL || ((g == MODULE_G || g == LAYER) && tensor.layer() >= 0)
                || (g == GROUP && tensor.extent().groupOf(tensor.name()) >= 0);
    }


    @Override
    public List<String> checkAll(String file, List<? extends MethodTensor> tensors) {
        // Module group numbers must tell every module of a layer apart (a hash could collide).
        Map<Integer, String> owner = new HashMap<>();
        List<String> problems = new ArrayList<>();
        if (tensors.stream().anyMatch(t -> granularity(t) == GROUP && t.extent().groupCount() == 0)) {
            problems.add(file + ": parameters.granularity: group measures variation over the config's tensor groups, "
                    + "and the config gives none; add a top-level 'groups:' mapping (e.g. {attention: 'self_attn', "
                    + "mlp: 'mlp'}) or use granularity: module or layer");
        }
        for (MethodTensor t : tensors) {
            if (granularity(t) != MODULE_G || t.layer() < 0) {
                continue;
            }
            String module = moduleName(t.name());
            String before = owner.putIfAbsent(moduleGroup(t.name()), module);
            if (before != null && !before.equals(module)) {
                problems.add(file + ": varm cannot tell modules '" + before + "' and '" + module + "' apart; use "
                        + "granularity: layer or tensor");
            }
        }
        return problems;
    }

    @Override
    public List<StatisticRequest> statistics(MethodTensor tensor, int round, TensorStatistics known) {
        if (round > 0 || granularity(tensor) == ELEMENT) {
            return List.of();
        }
        List<StatisticRequest> requests = new ArrayList<>();
        for (int i = 0; i < tensor.modelCount(); i++) {
            requests.add(request(tensor, i));
        }
        return requests;
    }

    /** Model {@code i}'s variation at the tensor's granularity, in double. */
    private double variationOf(MethodTensor t, int i, TensorStatistics stats) {
        StatisticRequest r = request(t, i);
        double value = stats.value(r);
        if (Double.isNaN(value) && !stats.has(r)) {
            throw new IllegalStateException("tensor '" + t.name() + "' merges before its variations were reduced");
        }
        return switch (r.scope()) {
            case TENSOR -> value / t.elements();
            case MODEL -> value / t.extent().elements();
            default -> value; // GROUP_MEANS is already a sum of means
        };
    }

    /** METHODS.md's weights from the variations, in double, rounded once to float32. */
    static float[] weights(double[] v, boolean softmax, double temperature) {
        int m = v.length;
        double[] w = new double[m];
        if (softmax) {
            double max = Double.NEGATIVE_INFINITY;
            for (double x : v) {
                max = Math.max(max, x);
            }
            double total = 0.0;
            for (int i = 0; i < m; i++) {
                w[i] = Math.exp((v[i] - max) / temperature);
                total += w[i];
            }
            for (int i = 0; i < m; i++) {
                w[i] /= total;
            }
        } else {
            boolean anyZero = false;
            double total = 0.0;
            for (double x : v) {
                anyZero |= x == 0.0;
                total += Math.abs(x);
            }
            for (int i = 0; i < m; i++) {
                w[i] = anyZero ? 1.0 / m : Math.abs(v[i]) / total;
            }
        }
        float[] out = new float[m];
        for (int i = 0; i < m; i++) {
            out[i] = (float) w[i];
        }
        return out;
    }

    @Override
    public void merge(ChunkKernels kernels, MethodTensor tensor, long chunkStart, int count, TensorStatistics stats,
                      MethodSettings settings, ChunkMetrics metrics) {
        double temperature = global(tensor, "temperature");
        if (granularity(tensor) == ELEMENT) {
            kernels.varmElement(variation(tensor), softmax(tensor), (float) temperature, count, metrics);
            return;
        }
        double[] v = new double[tensor.modelCount()];
        for (int i = 0; i < v.length; i++) {
            v[i] = variationOf(tensor, i, stats);
        }
        kernels.mergeLinear(count, weights(v, softmax(tensor), temperature), false, metrics);
    }
}
