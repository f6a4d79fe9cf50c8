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
     * the weighted deltas.
     */
    public static void merge(ArrowBuf base, ArrowBuf[] models, int count, long chunkStart, ModelTerm[] terms,
                             Consensus consensus, boolean normalize, float lambda, ArrowBuf out,
                             ChunkMetrics metrics, KernelScratch scratch) {
        int m = models.length;
        for (int i = 0; i < m; i++) {
            ArrowBuf x = models[i];
            double squares = 0;
            for (int j = 0; j < count; j++) {
                long at = (long) j << 2;
                float d = x.getFloat(at) - base.getFloat(at);
                squares += (double) d * d;
                x.setFloat(at, d);
            }
            metrics.deltaSquares[i] += squares;
            metrics.kept[i] += terms[i].keep().apply(x, count, chunkStart, scratch);
            weigh(x, count, terms[i]);
        }
        float[] weights = new float[m];
        for (int i = 0; i < m; i++) {
            weights[i] = terms[i].weight();
        }
        long conflicts = 0;
        if (consensus == Consensus.SUM) {
            for (int j = 0; j < count; j++) {
                long at = (long) j << 2;
                float sum = 0.0f;
                for (int i = 0; i < m; i++) {
                    sum += models[i].getFloat(at);
                }
                boolean positive = sum >= 0.0f;
                float mix = 0.0f;
                float div = 0.0f;
                boolean conflict = false;
                for (int i = 0; i < m; i++) {
                    float v = models[i].getFloat(at);
                    if (positive ? v > 0.0f : v < 0.0f) {
                        mix += v;
                        div += weights[i];
                    } else if (v != 0.0f) {
                        conflict = true;
                    }
                }
                if (conflict) {
                    conflicts++;
                }
                if (div == 0.0f) {
                    div = 1.0f;
                }
                out.setFloat(at, finish(base.getFloat(at), mix, div, normalize, lambda));
            }
        } else {
            float div = 0.0f;
            for (int i = 0; i < m; i++) {
                div += weights[i];
            }
            if (Math.abs(div) < 1e-8f) {
                div = 1.0f;
            }
            for (int j = 0; j < count; j++) {
                long at = (long) j << 2;
                float mix = 0.0f;
                for (int i = 0; i < m; i++) {
                    mix += models[i].getFloat(at);
                }
                out.setFloat(at, finish(base.getFloat(at), mix, div, normalize, lambda));
            }
        }
        metrics.signConflicts += conflicts;
        metrics.elements += count;
    }

    private static void weigh(ArrowBuf x, int count, ModelTerm term) {
        float w = term.weight();
        float s = term.rescale();
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            float d = x.getFloat(at);
            if (s != 1.0f) {
                d = d * s;
            }
            x.setFloat(at, w * d);
        }
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
