package dev.amalgam.testing;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Whole-model references written from METHODS.md's definitions: every tensor of every model in
 * memory, flattened in the canonical order (tensor names in ascending byte order, then element
 * index), straightforward loops. Independent of the engine's statistics and kernels.
 */
public final class WholeModelReference {
    private WholeModelReference() {
    }

    /** Tensor names in canonical order. */
    public static List<String> canonical(Iterable<String> names) {
        List<String> sorted = new ArrayList<>();
        names.forEach(sorted::add);
        sorted.sort((a, b) -> Arrays.compareUnsigned(a.getBytes(StandardCharsets.UTF_8), b.getBytes(StandardCharsets.UTF_8)));
        return sorted;
    }

    /** The model's tensors concatenated in canonical order. */
    public static float[] flatten(Map<String, float[]> tensors, List<String> order) {
        int n = order.stream().mapToInt(t -> tensors.get(t).length).sum();
        float[] flat = new float[n];
        int at = 0;
        for (String t : order) {
            float[] v = tensors.get(t);
            System.arraycopy(v, 0, flat, at, v.length);
            at += v.length;
        }
        return flat;
    }

    /** Cuts a flat whole-model vector back into tensors. */
    public static Map<String, float[]> split(float[] flat, Map<String, float[]> shapes, List<String> order) {
        Map<String, float[]> out = new LinkedHashMap<>();
        int at = 0;
        for (String t : order) {
            int n = shapes.get(t).length;
            out.put(t, Arrays.copyOfRange(flat, at, at + n));
            at += n;
        }
        return out;
    }

    /** {@code keep[j]} for the k largest |d| (ties: lower index first), k = floor(density * n) in double. */
    public static boolean[] topK(float[] d, double density) {
        int n = d.length;
        long k = (long) Math.floor(density * n);
        Integer[] idx = new Integer[n];
        for (int j = 0; j < n; j++) {
            idx[j] = j;
        }
        Arrays.sort(idx, Comparator.<Integer>comparingDouble(j -> -Math.abs(d[j])).thenComparingInt(j -> j));
        boolean[] keep = new boolean[n];
        for (int r = 0; r < k; r++) {
            keep[idx[r]] = true;
        }
        return keep;
    }

    /**
     * TIES as its paper defines it (METHODS.md, {@code trim_scope: model}) over flat whole-model
     * vectors: per model the top {@code density_i} of |d_i| over the whole model, weighted; the
     * elected sign per element, the whole model's majority where the total is 0; the mean of the
     * agreeing non-zero entries by count, times lambda, plus the base.
     */
    public static float[] tiesPaper(float[] base, float[][] x, double[] density, float[] weight, float lambda) {
        float[][] v = trimmedWeighted(base, x, density, weight, false);
        int majority = majority(v);
        float[] out = new float[base.length];
        for (int j = 0; j < out.length; j++) {
            out[j] = base[j] + lambda * electedMean(v, j, majority);
        }
        return out;
    }

    /**
     * How many elements paper TIES decides by the whole model's majority (a total of 0 with
     * non-zero entries), and that majority: a test's proof that its fixture exercises the rule.
     */
    public static long[] decidedByMajority(float[] base, float[][] x, double[] density, float[] weight) {
        float[][] v = trimmedWeighted(base, x, density, weight, false);
        long decided = 0;
        for (int j = 0; j < base.length; j++) {
            boolean any = false;
            for (float[] vi : v) {
                any |= vi[j] != 0.0f;
            }
            if (total(v, j) == 0.0f && any) {
                decided++;
            }
        }
        return new long[]{decided, majority(v)};
    }

    /**
     * {@code v_i = w_i t_i}: each model's delta trimmed to its top {@code density_i} over the whole
     * vector (all when 1); with {@code zeroPlus} a dropped or zero delta is +0 whatever the weight.
     */
    private static float[][] trimmedWeighted(float[] base, float[][] x, double[] density, float[] weight,
                                             boolean zeroPlus) {
        int n = base.length;
        float[][] v = new float[x.length][n];
        for (int i = 0; i < x.length; i++) {
            float[] d = new float[n];
            for (int j = 0; j < n; j++) {
                d[j] = x[i][j] - base[j];
            }
            boolean[] keep = density[i] >= 1.0 ? null : topK(d, density[i]);
            for (int j = 0; j < n; j++) {
                boolean kept = keep == null || keep[j];
                v[i][j] = zeroPlus ? (kept && d[j] != 0.0f ? weight[i] * d[j] : 0.0f) : weight[i] * (kept ? d[j] : 0.0f);
            }
        }
        return v;
    }

    /** The total {@code v_0 + v_1 + ...} at element j, float32 in config order. */
    private static float total(float[][] v, int j) {
        float s = v[0][j];
        for (int i = 1; i < v.length; i++) {
            s += v[i][j];
        }
        return s;
    }

    /** The whole vector's majority: the sign of the count of positive minus negative totals. */
    private static int majority(float[][] v) {
        long signs = 0;
        for (int j = 0; j < v[0].length; j++) {
            float s = total(v, j);
            signs += s > 0 ? 1 : s < 0 ? -1 : 0;
        }
        return Long.signum(signs);
    }

    /** Paper TIES at element j: the elected sign (the majority where the total is 0), agreeing mean by count. */
    private static float electedMean(float[][] v, int j, int majority) {
        float total = total(v, j);
        int sign = total > 0 ? 1 : total < 0 ? -1 : majority;
        float mix = 0.0f;
        int agreeing = 0;
        for (float[] vi : v) {
            if ((sign > 0 && vi[j] > 0) || (sign < 0 && vi[j] < 0)) {
                mix += vi[j];
                agreeing++;
            }
        }
        return mix / Math.max(agreeing, 1);
    }

    /** f(d) as VaRM measures it: 0 square, 1 abs, 2 signed; exact (a BigDecimal). */
    private static java.math.BigDecimal variation(float d, int variation) {
        java.math.BigDecimal x = new java.math.BigDecimal(d);
        return switch (variation) {
            case 0 -> x.multiply(x);
            case 1 -> x.abs();
            default -> x;
        };
    }

    /** The exact sum of f(x - b) over a tensor. */
    private static java.math.BigDecimal variationSum(float[] x, float[] b, int variation) {
        java.math.BigDecimal s = java.math.BigDecimal.ZERO;
        for (int j = 0; j < x.length; j++) {
            s = s.add(variation(x[j] - b[j], variation));
        }
        return s;
    }

    /** The module a VaRM tensor belongs to: {@code layers.N.<part>}, or the tensor itself outside the layers. */
    public static String module(String tensor) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("layers\\.(\\d+)\\.([^.]+)").matcher(tensor);
        return m.find() ? "layers." + m.group(1) + "." + m.group(2) : tensor;
    }

    public static String layer(String tensor) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("layers\\.(\\d+)\\.").matcher(tensor);
        return m.find() ? "layers." + m.group(1) : tensor;
    }

    /**
     * VaRM (METHODS.md) over whole models: per model and group the variation (tensor: the
     * float32-rounded exact sum over the tensor / its size; module and layer: the sum of their
     * tensors' values in canonical order; model: the rounded whole-model sum / N), weights by share
     * of the sum (uniform if a variation is 0) or softmax, result {@code sum_i w_i x_i} from +0.
     * {@code granularity} is tensor, module, layer or model.
     */
    public static Map<String, float[]> varm(Map<String, float[]> base, List<Map<String, float[]>> models,
                                            String granularity, int variation, boolean softmax, double temperature) {
        return varm(base, models, granularity, variation, softmax, temperature, t -> t);
    }

    /**
     * The same, with granularity {@code group}: {@code groups} names each tensor's group (the
     * tensor itself for a tensor of no group), whose variation is the sum of its tensors' values.
     */
    public static Map<String, float[]> varm(Map<String, float[]> base, List<Map<String, float[]>> models,
                                            String granularity, int variation, boolean softmax, double temperature,
                                            java.util.function.Function<String, String> groups) {
        List<String> order = canonical(base.keySet());
        int m = models.size();
        long total = order.stream().mapToLong(t -> base.get(t).length).sum();
        double[][] perTensor = new double[m][order.size()];
        java.math.BigDecimal[] whole = new java.math.BigDecimal[m];
        for (int i = 0; i < m; i++) {
            whole[i] = java.math.BigDecimal.ZERO;
            for (int k = 0; k < order.size(); k++) {
                String t = order.get(k);
                java.math.BigDecimal s = variationSum(models.get(i).get(t), base.get(t), variation);
                whole[i] = whole[i].add(s);
                perTensor[i][k] = (double) s.floatValue() / base.get(t).length;
            }
        }
        Map<String, float[]> out = new LinkedHashMap<>();
        for (int k = 0; k < order.size(); k++) {
            String t = order.get(k);
            double[] v = new double[m];
            for (int i = 0; i < m; i++) {
                switch (granularity) {
                    case "tensor" -> v[i] = perTensor[i][k];
                    case "model" -> v[i] = (double) whole[i].floatValue() / total;
                    default -> {
                        java.util.function.Function<String, String> key = granularity.equals("module")
                                ? WholeModelReference::module : granularity.equals("layer")
                                ? WholeModelReference::layer : groups;
                        String group = key.apply(t);
                        double sum = 0.0;
                        for (int q = 0; q < order.size(); q++) {
                            if (key.apply(order.get(q)).equals(group)) {
                                sum += perTensor[i][q];
                            }
                        }
                        v[i] = sum;
                    }
                }
            }
            float[] w = varmWeights(v, softmax, temperature);
            float[] x0 = base.get(t);
            float[] r = new float[x0.length];
            for (int j = 0; j < r.length; j++) {
                float sum = 0.0f;
                for (int i = 0; i < m; i++) {
                    sum += w[i] * models.get(i).get(t)[j];
                }
                r[j] = sum;
            }
            out.put(t, r);
        }
        return out;
    }

    private static float[] varmWeights(double[] v, boolean softmax, double temperature) {
        int m = v.length;
        float[] w = new float[m];
        if (softmax) {
            double max = Arrays.stream(v).max().orElseThrow();
            double[] e = new double[m];
            double total = 0.0;
            for (int i = 0; i < m; i++) {
                e[i] = Math.exp((v[i] - max) / temperature);
                total += e[i];
            }
            for (int i = 0; i < m; i++) {
                w[i] = (float) (e[i] / total);
            }
            return w;
        }
        double total = 0.0;
        boolean zero = false;
        for (double x : v) {
            total += Math.abs(x);
            zero |= x == 0.0;
        }
        for (int i = 0; i < m; i++) {
            w[i] = (float) (zero ? 1.0 / m : Math.abs(v[i]) / total);
        }
        return w;
    }

    /** VaRM at element granularity, per element in float32 (METHODS.md), the exponential PortableMath's, in double. */
    public static float[] varmElement(float[] base, float[][] x, int variation, boolean softmax, float temperature) {
        int m = x.length;
        float[] out = new float[base.length];
        for (int j = 0; j < base.length; j++) {
            float[] f = new float[m];
            for (int i = 0; i < m; i++) {
                float d = x[i][j] - base[j];
                f[i] = variation == 0 ? d * d : variation == 1 ? Math.abs(d) : d;
            }
            float[] w = new float[m];
            if (softmax) {
                float max = Float.NEGATIVE_INFINITY;
                for (int i = 0; i < m; i++) {
                    max = Math.max(max, f[i] / temperature);
                }
                float total = 0.0f;
                for (int i = 0; i < m; i++) {
                    w[i] = (float) dev.amalgam.kernels.PortableMath.exp(f[i] / temperature - max);
                    total += w[i];
                }
                for (int i = 0; i < m; i++) {
                    w[i] = w[i] / total;
                }
            } else {
                float total = 0.0f;
                for (int i = 0; i < m; i++) {
                    total += f[i];
                }
                for (int i = 0; i < m; i++) {
                    w[i] = f[i] / Math.max(total, 1e-13f);
                }
            }
            float sum = 0.0f;
            for (int i = 0; i < m; i++) {
                sum += w[i] * x[i][j];
            }
            out[j] = sum;
        }
        return out;
    }

    /**
     * Fisher-weighted averaging as the authors' code merges: c_i = w_i / ||F_i|| over the whole
     * model (the sum of squares exact, rounded to float32, its root in double; c_i rounded to
     * float32), F floored for the first model (or all), per element sum c_i F_i x_i / sum c_i F_i.
     */
    public static Map<String, float[]> fisher(List<Map<String, float[]>> models, List<Map<String, float[]>> fishers,
                                              double[] weights, float floor, boolean favorTarget, boolean normalize) {
        int m = models.size();
        float[] c = new float[m];
        for (int i = 0; i < m; i++) {
            double w = weights[i];
            if (normalize) {
                java.math.BigDecimal squares = java.math.BigDecimal.ZERO;
                for (float[] f : fishers.get(i).values()) {
                    for (float v : f) {
                        java.math.BigDecimal b = new java.math.BigDecimal(v);
                        squares = squares.add(b.multiply(b));
                    }
                }
                w /= Math.sqrt(squares.floatValue());
            }
            c[i] = (float) w;
        }
        Map<String, float[]> out = new LinkedHashMap<>();
        for (String t : models.get(0).keySet()) {
            int n = models.get(0).get(t).length;
            float[] r = new float[n];
            for (int j = 0; j < n; j++) {
                float lhs = 0.0f;
                float rhs = 0.0f;
                for (int i = 0; i < m; i++) {
                    float diag = fishers.get(i).get(t)[j];
                    if (!favorTarget || i == 0) {
                        diag = Math.max(diag, floor);
                    }
                    float term = c[i] * diag;
                    lhs += term;
                    rhs += term * models.get(i).get(t)[j];
                }
                r[j] = rhs / lhs;
            }
            out.put(t, r);
        }
        return out;
    }

    /**
     * Consensus merging (TALL masks) over flat whole-model vectors: per model the top
     * {@code density_i} of |d_i| over the whole model (all when 1); {@code v_i = w_i d_i} where kept
     * and non-zero, else +0; the multi-task vector (task arithmetic sum, or with {@code ties} the
     * paper's TIES mean with the whole model's majority sign where the total is 0); the masks
     * {@code |x_i - b| > |(b + tv) - x_i| * lambda_i}; {@code b + alpha * (tv where >= k masks, else 0)}.
     */
    public static float[] consensus(float[] base, float[][] x, float[] weight, double[] density, float[] tallLambda,
                                    int k, float alpha, boolean ties) {
        float[][] v = trimmedWeighted(base, x, density, weight, true);
        int majority = majority(v);
        float[] out = new float[base.length];
        for (int j = 0; j < out.length; j++) {
            float tv = ties ? electedMean(v, j, majority) : total(v, j);
            float multi = base[j] + tv;
            int tasks = 0;
            for (int i = 0; i < x.length; i++) {
                if (Math.abs(base[j] - x[i][j]) > Math.abs(multi - x[i][j]) * tallLambda[i]) {
                    tasks++;
                }
            }
            out[j] = base[j] + alpha * (tasks >= k ? tv : 0.0f);
        }
        return out;
    }
    /**
     * OTA as its authors' merge method defines it, per element in float32:
     * {@code p_i = sqrt(v_i + eps) + eps} (the float root), {@code sum p_i x_i / sum p_i}.
     */
    public static float[] ota(float[][] x, float[][] moments, float epsilon) {
        float[] out = new float[x[0].length];
        for (int j = 0; j < out.length; j++) {
            float num = 0.0f;
            float den = 0.0f;
            for (int i = 0; i < x.length; i++) {
                float p = (float) Math.sqrt((double) (moments[i][j] + epsilon)) + epsilon;
                den += p;
                num += p * x[i][j];
            }
            out[j] = num / den;
        }
        return out;
    }

    /**
     * Fast Fisher Grafting of one tensor: scores {@code (d * d) * v} in float32; the positions of
     * the {@code max(1, round_half_even(density * n))} largest scores (a full sort, equal scores
     * by lower index) take {@code b + d}, the rest {@code b}; {@code density >= 1} is {@code x},
     * {@code <= 0} is {@code b}.
     */
    public static float[] graft(float[] base, float[] x, float[] moment, double density) {
        int n = base.length;
        if (density >= 1.0) {
            return x.clone();
        }
        float[] out = base.clone();
        if (density <= 0.0 || n == 0) {
            return out;
        }
        long k = Math.max(1L, Math.round(Math.rint(density * n)));
        float[] score = new float[n];
        Integer[] order = new Integer[n];
        for (int j = 0; j < n; j++) {
            float d = x[j] - base[j];
            score[j] = (d * d) * moment[j];
            order[j] = j;
        }
        java.util.Arrays.sort(order, (a, b) -> {
            int bySize = Float.compare(score[b], score[a]);
            return bySize != 0 ? bySize : Integer.compare(a, b);
        });
        for (int r = 0; r < k; r++) {
            int j = order[r];
            out[j] = base[j] + (x[j] - base[j]);
        }
        return out;
    }
    /**
     * WIDEN on one tensor as the authors' code merges it, written out whole: a 2-D tensor's
     * vectors are its columns (its rows when {@code byRow}, an input embedding); per vector the
     * float32 norm (the root of the float32-rounded sum of squares, summed in double down the
     * vector) and the cosine to the base from the same kind of dot product; magnitude change
     * {@code |n_i - n_b|}, direction change {@code 1 - cos} (cos 0 for a zero vector); each
     * model's vectors ranked ascending (stable), significance {@code rank / count} in float32;
     * scores: softmax across models ({@code exp(s - max)}, {@link dev.amalgam.kernels.PortableMath#exp}),
     * {@code calibration} where the significance exceeds the model's mean significance times
     * {@code ratio}; weights {@code 0.5 (magnitude + direction)}; {@code b + sum_i d_i w_i}.
     * Other tensors score elements by {@code |d_i|} against the mean |d_i| over the tensor.
     */
    public static float[] widen(float[] base, float[][] x, long[] shape, boolean byRow, float ratio, float calibration) {
        int m = x.length;
        int n = base.length;
        float[] out = new float[n];
        if (shape.length != 2) {
            float[] thresholds = new float[m];
            for (int i = 0; i < m; i++) {
                java.math.BigDecimal sum = java.math.BigDecimal.ZERO;
                for (int j = 0; j < n; j++) {
                    sum = sum.add(new java.math.BigDecimal(Math.abs(x[i][j] - base[j])));
                }
                thresholds[i] = (float) (sum.doubleValue() / n) * ratio;
            }
            for (int j = 0; j < n; j++) {
                float[] diff = new float[m];
                for (int i = 0; i < m; i++) {
                    diff[i] = Math.abs(x[i][j] - base[j]);
                }
                float[] s = softmaxCalibrated(diff, thresholds, calibration);
                float sum = (x[0][j] - base[j]) * s[0];
                for (int i = 1; i < m; i++) {
                    sum += (x[i][j] - base[j]) * s[i];
                }
                out[j] = base[j] + sum;
            }
            return out;
        }
        int rows = (int) shape[0];
        int cols = (int) shape[1];
        int vectors = byRow ? rows : cols;
        int length = byRow ? cols : rows;
        java.util.function.IntBinaryOperator at = byRow ? (v, k) -> v * cols + k : (v, k) -> k * cols + v;
        float[][][] changes = new float[2][m][vectors];
        for (int v = 0; v < vectors; v++) {
            double bb = 0.0;
            for (int k = 0; k < length; k++) {
                double b = base[at.applyAsInt(v, k)];
                bb += b * b;
            }
            float nb = (float) Math.sqrt((float) bb);
            for (int i = 0; i < m; i++) {
                double xx = 0.0;
                double xb = 0.0;
                for (int k = 0; k < length; k++) {
                    double xv = x[i][at.applyAsInt(v, k)];
                    xx += xv * xv;
                    xb += xv * (double) base[at.applyAsInt(v, k)];
                }
                float nx = (float) Math.sqrt((float) xx);
                float norms = nx * nb;
                changes[0][i][v] = Math.abs(nx - nb);
                changes[1][i][v] = 1.0f - (norms == 0.0f ? 0.0f : (float) xb / norms);
            }
        }
        float[][][] scores = new float[2][m][vectors];
        for (int kind = 0; kind < 2; kind++) {
            float[][] significance = new float[m][vectors];
            float[] thresholds = new float[m];
            for (int i = 0; i < m; i++) {
                float[] c = changes[kind][i];
                List<Integer> order = new ArrayList<>();
                for (int v = 0; v < vectors; v++) {
                    order.add(v);
                }
                order.sort((a, b) -> Float.compare(c[a] + 0.0f, c[b] + 0.0f));
                java.math.BigDecimal sum = java.math.BigDecimal.ZERO;
                for (int r = 0; r < vectors; r++) {
                    significance[i][order.get(r)] = (float) r / (float) vectors;
                    sum = sum.add(new java.math.BigDecimal((float) r / (float) vectors));
                }
                thresholds[i] = (float) (sum.doubleValue() / vectors) * ratio;
            }
            for (int v = 0; v < vectors; v++) {
                float[] s = new float[m];
                for (int i = 0; i < m; i++) {
                    s[i] = significance[i][v];
                }
                float[] sc = softmaxCalibrated(s, thresholds, calibration);
                for (int i = 0; i < m; i++) {
                    scores[kind][i][v] = sc[i];
                }
            }
        }
        for (int v = 0; v < vectors; v++) {
            for (int k = 0; k < length; k++) {
                int j = at.applyAsInt(v, k);
                float sum = (x[0][j] - base[j]) * (0.5f * (scores[0][0][v] + scores[1][0][v]));
                for (int i = 1; i < m; i++) {
                    sum += (x[i][j] - base[j]) * (0.5f * (scores[0][i][v] + scores[1][i][v]));
                }
                out[j] = base[j] + sum;
            }
        }
        return out;
    }

    private static float[] softmaxCalibrated(float[] s, float[] thresholds, float calibration) {
        int m = s.length;
        float max = Float.NEGATIVE_INFINITY;
        for (float v : s) {
            max = Math.max(max, v);
        }
        float[] e = new float[m];
        float total = 0.0f;
        for (int i = 0; i < m; i++) {
            e[i] = (float) dev.amalgam.kernels.PortableMath.exp(s[i] - max);
            total += e[i];
        }
        for (int i = 0; i < m; i++) {
            e[i] = s[i] > thresholds[i] ? calibration : e[i] / total;
        }
        return e;
    }
    /**
     * PCB-merging as the authors' {@code pcb_merging} computes it on flat whole-model task
     * vectors, with full sorts: |d_i| clamped to its sorted entries at {@code int(D * 1e-4)} and
     * {@code int(D * (1 - 1e-4) - 1)}; the clamped magnitudes min-max normalized (0 where
     * max == min), squared, times M, exponentiated; times {@code tanh(d_i * sum_j d_j)}; that
     * balance clamped below at its sorted entry {@code int(D * (1 - ratio))} and min-max
     * normalized into the scale (0 where max == min); {@code b + lambda * sum scale_i t_i /
     * max(sum scale_i, 1e-12)}, {@code t_i} the signed clamped delta. Float32 throughout, sums
     * from the first term, exp and tanh by {@link dev.amalgam.kernels.PortableMath}.
     */
    public static float[] pcb(float[] base, float[][] x, double ratio, float lambda) {
        int m = x.length;
        int n = base.length;
        float[][] d = new float[m][n];
        float[] sum = new float[n];
        for (int j = 0; j < n; j++) {
            for (int i = 0; i < m; i++) {
                d[i][j] = x[i][j] - base[j];
                sum[j] = i == 0 ? d[i][j] : sum[j] + d[i][j];
            }
        }
        float[][] t = new float[m][n];
        float[][] scale = new float[m][n];
        for (int i = 0; i < m; i++) {
            float[] a = new float[n];
            for (int j = 0; j < n; j++) {
                a[j] = Math.abs(d[i][j]);
            }
            float[] sorted = a.clone();
            Arrays.sort(sorted);
            float lo = sorted[(int) (n * 0.0001)];
            float hi = sorted[(int) (n * (1 - 0.0001) - 1)];
            for (int j = 0; j < n; j++) {
                a[j] = Math.min(Math.max(a[j], lo), hi);
                t[i][j] = Math.signum(d[i][j]) * a[j] + 0.0f;
            }
            float[] self = normalized(a);
            float[] balance = new float[n];
            for (int j = 0; j < n; j++) {
                float e = (float) dev.amalgam.kernels.PortableMath.exp(m * (self[j] * self[j]));
                balance[j] = e * dev.amalgam.kernels.PortableMath.tanh(d[i][j] * sum[j]);
            }
            float[] sortedBalance = balance.clone();
            Arrays.sort(sortedBalance);
            float low = sortedBalance[(int) (n * (1.0 - ratio))];
            float high = sortedBalance[(int) (n * 1.0 - 1)];
            for (int j = 0; j < n; j++) {
                balance[j] = Math.min(Math.max(balance[j], low), high);
            }
            scale[i] = normalized(balance);
        }
        float[] out = new float[n];
        for (int j = 0; j < n; j++) {
            float num = scale[0][j] * t[0][j];
            float den = scale[0][j];
            for (int i = 1; i < m; i++) {
                num += scale[i][j] * t[i][j];
                den += scale[i][j];
            }
            out[j] = base[j] + lambda * (num / Math.max(den, 1e-12f));
        }
        return out;
    }

    /** {@code (v - min) / (max - min)} over the vector, all 0 where max == min. */
    private static float[] normalized(float[] v) {
        float min = Float.POSITIVE_INFINITY;
        float max = Float.NEGATIVE_INFINITY;
        for (float e : v) {
            min = Math.min(min, e);
            max = Math.max(max, e);
        }
        float[] out = new float[v.length];
        for (int j = 0; j < v.length; j++) {
            out[j] = max > min ? (v[j] - min) / (max - min) : 0.0f;
        }
        return out;
    }
}
