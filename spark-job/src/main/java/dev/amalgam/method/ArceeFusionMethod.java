package dev.amalgam.method;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.Operand;
import dev.amalgam.kernels.Primitive;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * {@code arcee_fusion}: takes the model's value where its change is an outlier of importance,
 * {@code s = |x - b| * KL(softmax(x_row) || softmax(b_row))} (chunks hold whole rows; see
 * {@link dev.amalgam.kernels.ComposedKernels#importance}). One statistics round finds the exact
 * quantiles of {@code s} at positions {@code floor(q (n - 1))}, q = 1/4, 1/2, 3/4; the threshold
 * is {@code median + 1.5 (q3 - q1)} in float32. The standard tool estimates the quantiles from a
 * random sample of a million entries; exact order statistics are a deliberate difference.
 */
final class ArceeFusionMethod extends DeclaredMethod {

    ArceeFusionMethod() {
        super("arcee_fusion", "the model's values where their KL-weighted change is an outlier",
                Inputs.base(1, 1), List.of(), Primitive.IMPORTANCE, Primitive.DELTA_ORDER, Primitive.FUSE);
    }

    @Override
    public boolean rowAligned() {
        return true;
    }

    private static Operand importance(MethodTensor t) {
        return new Operand.Importance(t.cols());
    }

    /** The positions of q1, the median and q3: {@code floor(q (n - 1))}, exact in integers. */
    private static long[] positions(MethodTensor t) {
        long last = t.elements() - 1;
        return new long[]{last / 4, last / 2, (3 * last) / 4};
    }

    @Override
    public List<StatisticRequest> statistics(MethodTensor tensor, int round, TensorStatistics known) {
        if (round > 0 || tensor.elements() == 0) {
            return List.of();
        }
        Set<StatisticRequest> requests = new LinkedHashSet<>();
        for (long p : positions(tensor)) {
            requests.add(StatisticRequest.order(importance(tensor), p));
        }
        return new ArrayList<>(requests);
    }

    static float threshold(float q1, float median, float q3) {
        return median + 1.5f * (q3 - q1);
    }

    @Override
    public void merge(ChunkKernels kernels, MethodTensor tensor, long chunkStart, int count, TensorStatistics stats,
                      MethodSettings settings, ChunkMetrics metrics) {
        long[] p = positions(tensor);
        float[] q = new float[3];
        for (int i = 0; i < 3 && tensor.elements() > 0; i++) {
            // Importances are never negative, so the order of |s| is the order of s.
            q[i] = Float.intBitsToFloat(stats.order(StatisticRequest.order(importance(tensor), p[i])).valueBits());
        }
        kernels.fuse(threshold(q[0], q[1], q[2]), tensor.cols(), count, metrics);
    }
}
