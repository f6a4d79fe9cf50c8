package dev.amalgam.kernels;

import org.apache.arrow.memory.ArrowBuf;

/**
 * The task-vector family's per-chunk merge (task_arithmetic, ties, dare_*, breadcrumbs*,
 * della*): delta, sparsify, rescale, weight, optional sign consensus, normalize, lambda.
 * Float32 throughout, models in config order, no fused multiply-add (Java never fuses).
 */
public final class TaskVectorKernel {
    private TaskVectorKernel() {
    }

    /** How the weighted deltas of the models are combined. */
    public enum Consensus {
        /** Plain sum; divisor is the sum of weights. */
        NONE,
        /** TIES sign election by the sign of the sum; only agreeing non-zero entries count. */
        SUM
    }

    /** One model's part in a chunk: weight, sparsification, and the rescale factor (1 for none). */
    public record ModelTerm(float weight, KeepRule keep, float rescale) {
    }

    /**
     * Computes {@code out = base + mix} for one chunk. The model buffers are overwritten with
     * the sparsified deltas.
     */
    public static void merge(ArrowBuf base, ArrowBuf[] models, int count, long chunkStart, ModelTerm[] terms,
                             Consensus consensus, boolean normalize, float lambda, ArrowBuf out,
                             ChunkMetrics metrics, KernelScratch scratch) {
        merge(Simd.ENABLED, base, models, count, chunkStart, terms, consensus, normalize, lambda, out, metrics, scratch);
    }

    /** The same, choosing SIMD or scalar loops explicitly (tests compare the two). */
    static void merge(boolean simd, ArrowBuf base, ArrowBuf[] models, int count, long chunkStart, ModelTerm[] terms,
                      Consensus consensus, boolean normalize, float lambda, ArrowBuf out,
                      ChunkMetrics metrics, KernelScratch scratch) {
        int m = models.length;
        int from = simd ? SimdKernels.bound(count) : 0;
        // Every delta whole, before any is sparsified: the report's norms and agreement between models.
        if (from > 0) {
            SimdKernels.toDeltas(models, base, count, metrics.deltaSquares, metrics.deltaDots);
        }
        for (int i = 0; i < m; i++) {
            metrics.deltaSquares[i] += toDelta(models[i], base, from, count);
            for (int j = 0; j < i; j++) {
                metrics.deltaDots[ChunkMetrics.pair(j, i, m)] += dot(models[j], models[i], from, count);
            }
        }
        for (int i = 0; i < m; i++) {
            KeepRule keep = terms[i].keep();
            if (keep instanceof KeepRule.TopK topK) {
                metrics.kept[i] += topK.apply(simd, models[i], count);
            } else {
                metrics.kept[i] += keep.apply(models[i], count, chunkStart, scratch);
            }
        }
        if (from > 0) {
            float[] weights = new float[m];
            float[] scales = new float[m];
            float plainDiv = 0.0f;
            for (int i = 0; i < m; i++) {
                weights[i] = terms[i].weight();
                scales[i] = terms[i].rescale();
                plainDiv += weights[i];
            }
            if (Math.abs(plainDiv) < 1e-8f) {
                plainDiv = 1.0f;
            }
            metrics.signConflicts += SimdKernels.combine(base, models, count, weights, scales,
                    consensus == Consensus.SUM, plainDiv, normalize, lambda, out);
        }
        if (m == 2) {
            // The common case of two fine-tunes, without the inner loop over models.
            mergeTwo(base, models[0], models[1], from, count, terms[0], terms[1], consensus, normalize, lambda, out, metrics);
        } else {
            mergeAny(base, models, from, count, terms, consensus, normalize, lambda, out, metrics);
        }
        metrics.elements += count;
    }

    /** The dot product of two deltas over [from, count), report only. */
    static double dot(ArrowBuf a, ArrowBuf b, int from, int count) {
        double s = 0.0;
        for (int j = from; j < count; j++) {
            long at = (long) j << 2;
            s += (double) a.getFloat(at) * b.getFloat(at);
        }
        return s;
    }

    private static double toDelta(ArrowBuf x, ArrowBuf base, int from, int count) {
        // Four partial sums break the add-latency chain; squares only feed the run report.
        double s0 = 0;
        double s1 = 0;
        double s2 = 0;
        double s3 = 0;
        int j = from;
        for (; j + 3 < count; j += 4) {
            long at = (long) j << 2;
            float d0 = x.getFloat(at) - base.getFloat(at);
            float d1 = x.getFloat(at + 4) - base.getFloat(at + 4);
            float d2 = x.getFloat(at + 8) - base.getFloat(at + 8);
            float d3 = x.getFloat(at + 12) - base.getFloat(at + 12);
            x.setFloat(at, d0);
            x.setFloat(at + 4, d1);
            x.setFloat(at + 8, d2);
            x.setFloat(at + 12, d3);
            s0 += (double) d0 * d0;
            s1 += (double) d1 * d1;
            s2 += (double) d2 * d2;
            s3 += (double) d3 * d3;
        }
        for (; j < count; j++) {
            long at = (long) j << 2;
            float d = x.getFloat(at) - base.getFloat(at);
            x.setFloat(at, d);
            s0 += (double) d * d;
        }
        return (s0 + s1) + (s2 + s3);
    }

    /** {@code w * (d * s)}, the rescale skipped when it is 1 (as METHODS.md orders the operations). */
    private static float weigh(float d, float w, float s) {
        return w * (s != 1.0f ? d * s : d);
    }

    // Signs of merged deltas are close to random, so a branch per model and element mispredicts
    // half the time. Agreement is computed on bit patterns instead, as an all-ones or all-zeros
    // mask: a disagreeing model contributes +0.0, which is exact because the running sums of
    // agreeing non-zero values are never -0.0 (x + 0.0f == x).

    /** 1 if the float with these bits is negative and non-zero, or NaN (so that "S >= 0" is false). */
    static int negativeOrNaN(int bits) {
        int magnitude = bits & 0x7fffffff;
        int nonZero = (magnitude + 0x7fffffff) >>> 31;
        int nan = (0x7f800000 - magnitude) >>> 31;
        return ((bits >>> 31) & nonZero) | nan;
    }

    /** All ones if v (bits) is non-zero, not NaN, and has the majority sign; else 0. */
    static int agreeMask(int bits, int majorityNegative) {
        int magnitude = bits & 0x7fffffff;
        int nonZero = (magnitude + 0x7fffffff) >>> 31;
        int notNaN = ((0x7f800000 - magnitude) >>> 31) ^ 1;
        int sameSign = ((bits >>> 31) ^ majorityNegative) ^ 1;
        return -(nonZero & notNaN & sameSign);
    }

    /** 1 when v (bits) is non-zero (NaN included) and does not agree. */
    static int conflict(int bits, int mask) {
        int nonZero = ((bits & 0x7fffffff) + 0x7fffffff) >>> 31;
        return nonZero & ~mask;
    }

    /** {@code div == 0 ? 1 : div} without a branch. */
    static float oneIfZero(float div) {
        int bits = Float.floatToRawIntBits(div);
        int zero = -((((bits & 0x7fffffff) + 0x7fffffff) >>> 31) ^ 1);
        return Float.intBitsToFloat((bits & ~zero) | (0x3f800000 & zero));
    }

    private static void mergeTwo(ArrowBuf base, ArrowBuf x0, ArrowBuf x1, int from, int count, ModelTerm t0, ModelTerm t1,
                                 Consensus consensus, boolean normalize, float lambda, ArrowBuf out, ChunkMetrics metrics) {
        float w0 = t0.weight();
        float w1 = t1.weight();
        int w0Bits = Float.floatToRawIntBits(w0);
        int w1Bits = Float.floatToRawIntBits(w1);
        float s0 = t0.rescale();
        float s1 = t1.rescale();
        long conflicts = 0;
        if (consensus == Consensus.SUM) {
            for (int j = from; j < count; j++) {
                long at = (long) j << 2;
                float v0 = weigh(x0.getFloat(at), w0, s0);
                float v1 = weigh(x1.getFloat(at), w1, s1);
                int negative = negativeOrNaN(Float.floatToRawIntBits(0.0f + v0 + v1));
                int b0 = Float.floatToRawIntBits(v0);
                int b1 = Float.floatToRawIntBits(v1);
                int m0 = agreeMask(b0, negative);
                int m1 = agreeMask(b1, negative);
                float mix = 0.0f + Float.intBitsToFloat(b0 & m0) + Float.intBitsToFloat(b1 & m1);
                float div = 0.0f + Float.intBitsToFloat(w0Bits & m0) + Float.intBitsToFloat(w1Bits & m1);
                conflicts += conflict(b0, m0) | conflict(b1, m1);
                out.setFloat(at, finish(base.getFloat(at), mix, oneIfZero(div), normalize, lambda));
            }
        } else {
            float div = 0.0f + w0 + w1;
            if (Math.abs(div) < 1e-8f) {
                div = 1.0f;
            }
            for (int j = from; j < count; j++) {
                long at = (long) j << 2;
                float mix = 0.0f + weigh(x0.getFloat(at), w0, s0) + weigh(x1.getFloat(at), w1, s1);
                out.setFloat(at, finish(base.getFloat(at), mix, div, normalize, lambda));
            }
        }
        metrics.signConflicts += conflicts;
    }

    private static void mergeAny(ArrowBuf base, ArrowBuf[] models, int from, int count, ModelTerm[] terms, Consensus consensus,
                                 boolean normalize, float lambda, ArrowBuf out, ChunkMetrics metrics) {
        int m = models.length;
        float[] weights = new float[m];
        int[] weightBits = new int[m];
        float[] scales = new float[m];
        int[] v = new int[m];
        for (int i = 0; i < m; i++) {
            weights[i] = terms[i].weight();
            weightBits[i] = Float.floatToRawIntBits(weights[i]);
            scales[i] = terms[i].rescale();
        }
        long conflicts = 0;
        float plainDiv = 0.0f;
        for (int i = 0; i < m; i++) {
            plainDiv += weights[i];
        }
        if (Math.abs(plainDiv) < 1e-8f) {
            plainDiv = 1.0f;
        }
        for (int j = from; j < count; j++) {
            long at = (long) j << 2;
            float sum = 0.0f;
            for (int i = 0; i < m; i++) {
                float w = weigh(models[i].getFloat(at), weights[i], scales[i]);
                v[i] = Float.floatToRawIntBits(w);
                sum += w;
            }
            float mix;
            float div;
            if (consensus == Consensus.SUM) {
                int negative = negativeOrNaN(Float.floatToRawIntBits(sum));
                mix = 0.0f;
                div = 0.0f;
                int conflict = 0;
                for (int i = 0; i < m; i++) {
                    int mask = agreeMask(v[i], negative);
                    mix += Float.intBitsToFloat(v[i] & mask);
                    div += Float.intBitsToFloat(weightBits[i] & mask);
                    conflict |= conflict(v[i], mask);
                }
                conflicts += conflict;
                div = oneIfZero(div);
            } else {
                mix = sum;
                div = plainDiv;
            }
            out.setFloat(at, finish(base.getFloat(at), mix, div, normalize, lambda));
        }
        metrics.signConflicts += conflicts;
    }

    private static float finish(float base, float mix, float div, boolean normalize, float lambda) {
        if (normalize) {
            mix = mix / div;
        }
        if (lambda != 1.0f) {
            mix = mix * lambda;
        }
        return base + mix;
    }
}
