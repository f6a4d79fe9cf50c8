package dev.amalgam.stats;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ExactSum;
import dev.amalgam.kernels.KeepRule;
import dev.amalgam.kernels.MagnitudeHistogram;
import dev.amalgam.merge.MergeMethod;
import dev.amalgam.merge.OrderStatistic;
import dev.amalgam.merge.Sparsifier;
import dev.amalgam.plan.ChunkPlan;
import dev.amalgam.plan.MergePlan;
import dev.amalgam.plan.TensorPlan;

/**
 * Statistics of a tensor that fits in one chunk, computed inside its merge task: the same
 * radix selection and exact sums as the distributed rounds, over the whole tensor, so the result
 * is identical and the tensor is read once instead of once per round. Most tensors of a model
 * (norms, biases, projections of small models) take this path.
 */
public final class LocalStatistics {
    private final long[] histogram = new long[MagnitudeHistogram.BINS];

    /** True when the plan cut the tensor into exactly one chunk. */
    public static boolean isLocal(TensorPlan tensor, ChunkPlan chunk) {
        return chunk.start() == 0 && chunk.count() == tensor.elements();
    }

    /** Whether any model of the tensor needs statistics at all. */
    public static boolean needed(MergeMethod method, MergePlan plan, TensorPlan tensor) {
        for (int i = 0; i < plan.modelCount(); i++) {
            long[] p = method.orderPositions(tensor, i);
            if (p[0] != Sparsifier.UNUSED || p[1] != Sparsifier.UNUSED || method.needsRescale(tensor, i, plan.settings())) {
                return true;
            }
        }
        return false;
    }

    /** The statistics of a single-chunk tensor whose inputs {@code kernels} holds decoded. */
    public StatisticsResult compute(MergeMethod method, MergePlan plan, TensorPlan tensor, ChunkPlan chunk,
                                    ChunkKernels kernels) {
        StatisticsResult result = StatisticsResult.empty();
        int count = chunk.count();
        for (int i = 0; i < plan.modelCount(); i++) {
            long[] positions = method.orderPositions(tensor, i);
            if (positions[0] == Sparsifier.UNUSED && positions[1] == Sparsifier.UNUSED) {
                continue;
            }
            java.util.Arrays.fill(histogram, 0);
            kernels.histogramHigh(i, count, histogram);
            MagnitudeHistogram.Selection[] high = new MagnitudeHistogram.Selection[2];
            for (int slot = 0; slot < 2; slot++) {
                if (positions[slot] != Sparsifier.UNUSED) {
                    high[slot] = MagnitudeHistogram.select(histogram, positions[slot]);
                }
            }
            for (int slot = 0; slot < 2; slot++) {
                if (high[slot] == null) {
                    continue;
                }
                java.util.Arrays.fill(histogram, 0);
                kernels.histogramLow(i, count, high[slot].bucket(), histogram);
                MagnitudeHistogram.Selection low = MagnitudeHistogram.select(histogram, positions[slot] - high[slot].below());
                result.orders().put(StatisticKeys.of(tensor.index(), i, slot), new OrderStatistic(
                        (high[slot].bucket() << 16) | low.bucket(), high[slot].below() + low.below(), low.inBucket()));
            }
        }
        for (int i = 0; i < plan.modelCount(); i++) {
            if (!method.needsRescale(tensor, i, plan.settings())) {
                continue;
            }
            ExactSum all = new ExactSum();
            ExactSum kept = new ExactSum();
            KeepRule rule = result.rule(method, plan, tensor, chunk, i);
            kernels.magnitudeSums(i, count, chunk.start(), rule, all, kept);
            result.scales().put(StatisticKeys.of(tensor.index(), i, 0), RescaleFactor.of(all, kept));
        }
        return result;
    }
}
