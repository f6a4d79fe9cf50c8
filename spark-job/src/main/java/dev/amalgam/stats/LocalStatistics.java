package dev.amalgam.stats;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.MagnitudeHistogram;
import dev.amalgam.kernels.Operand;
import dev.amalgam.method.MergeMethod;
import dev.amalgam.method.OrderStatistic;
import dev.amalgam.method.Reduction;
import dev.amalgam.method.StatisticRequest;
import dev.amalgam.plan.ChunkPlan;
import dev.amalgam.plan.MergePlan;
import dev.amalgam.plan.TensorPlan;

import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The statistics stage's rounds for a tensor that fits in one chunk, run inside its merge task on
 * the chunk already decoded there: the same radix selection and exact partial sums as the
 * distributed rounds (with one chunk, nothing precedes it), so the result is identical and the
 * tensor is read once instead of once per round. Most tensors of a model take this path.
 */
public final class LocalStatistics {
    private final long[] histogram = new long[MagnitudeHistogram.BINS];

    /**
     * True when the plan cut the tensor into exactly one chunk and none of its statistics reach
     * beyond it (a whole-model statistic needs every tensor's part before any tensor merges).
     */
    public static boolean isLocal(MergeMethod method, TensorPlan tensor, ChunkPlan chunk) {
        return chunk.start() == 0 && chunk.count() == tensor.elements()
                && (tensor.copy() || tensor.derived() || !method.wideStatistics(tensor));
    }

    /** Runs every round the method asks of the single-chunk tensor whose inputs {@code kernels} holds decoded. */
    public StatisticsResult compute(MergeMethod method, MergePlan plan, TensorPlan tensor, ChunkPlan chunk,
                                    ChunkKernels kernels) {
        StatisticsResult result = StatisticsResult.empty();
        for (int round = 0; ; round++) {
            List<StatisticRequest> requests = method.statistics(tensor, round, result.view(tensor.index(), chunk.index()));
            if (requests.isEmpty()) {
                return result;
            }
            StatisticsStage.checkRound(method, tensor, round);
            for (StatisticRequest r : requests) {
                if (r.wide()) {
                    throw new IllegalStateException(method.name() + " asked tensor '" + tensor.name() + "' for a "
                            + r.scope() + " statistic but does not declare wideStatistics for it");
                }
                if (r.reduction() == Reduction.ORDER) {
                    result.orders().put(new StatisticKey(tensor.index(), r), select(kernels, r, chunk.count()));
                }
            }
            Map<StatisticRequest, Partial> sums = new HashMap<>();
            ChunkSums.add(kernels, method, plan, tensor, chunk, requests, result.view(tensor.index(), chunk.index()), sums);
            sums.forEach((r, p) -> result.values().put(new StatisticKey(tensor.index(), r), p.value()));
        }
    }

    private OrderStatistic select(ChunkKernels kernels, StatisticRequest r, int count) {
        Operand model = StatisticsStage.ordered(r);
        Arrays.fill(histogram, 0);
        kernels.histogramHigh(model, count, histogram);
        MagnitudeHistogram.Selection high = MagnitudeHistogram.select(histogram, r.position());
        Arrays.fill(histogram, 0);
        kernels.histogramLow(model, count, high.bucket(), histogram);
        MagnitudeHistogram.Selection low = MagnitudeHistogram.select(histogram, r.position() - high.below());
        return new OrderStatistic((high.bucket() << 16) | low.bucket(), high.below() + low.below(), low.inBucket());
    }
}
