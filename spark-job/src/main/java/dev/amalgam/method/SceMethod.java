package dev.amalgam.method;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.Operand;
import dev.amalgam.kernels.Primitive;

import java.util.ArrayList;
import java.util.List;

/**
 * {@code sce}: select, calculate, erase. With {@code select_topk < 1} only the positions of
 * highest variance across the models' deltas take part: {@code k = floor(select_topk * nnz)}
 * in double, where {@code nnz} counts the positions of non-zero variance (round 0), then the
 * variance's exact order statistic at {@code n - k} (round 1) selects them, ties by lower flat
 * index. Each model's weight is the mean square of its selected delta over the tensor (round 2,
 * exact sums of squares), normalized to sum 1 in double and rounded to float32; the merge is
 * the weighted sign consensus of {@link dev.amalgam.kernels.ComposedKernels#sce}.
 */
final class SceMethod extends DeclaredMethod {

    SceMethod() {
        super("sce", "variance-selected deltas, sign consensus weighted by their mean squares",
                Inputs.base(1, Integer.MAX_VALUE),
                List.of(Parameter.number("select_topk", Parameter.Scope.GLOBAL, 1.0, Parameter.Range.closed(0, 1), true,
                                "fraction of the positions with non-zero variance across models to keep")
                                .withExample(0.5),
                        Parameter.flag("int8_mask", false, "accepted for compatibility; no effect on results")),
                Primitive.VARIANCE, Primitive.COUNT, Primitive.DELTA_ORDER, Primitive.SELECT, Primitive.DOT,
                Primitive.SCE);
    }

    private static final Operand VARIANCE = new Operand.Variance();

    private boolean selects(MethodTensor t) {
        return global(t, "select_topk") < 1.0;
    }

    /** The kept count, once the non-zero variances are counted. */
    private long keep(MethodTensor t, TensorStatistics known) {
        double nonzero = known.value(StatisticRequest.nonzero(VARIANCE));
        return (long) Math.floor(global(t, "select_topk") * nonzero);
    }

    private static StatisticRequest threshold(MethodTensor t, long k) {
        return StatisticRequest.order(VARIANCE, t.elements() - k);
    }

    private static Operand term(MethodTensor t, int i, boolean selects) {
        return selects ? new Operand.Selected(i) : new Operand.Delta(i);
    }

    private static List<StatisticRequest> squares(MethodTensor t, boolean selects) {
        List<StatisticRequest> requests = new ArrayList<>();
        for (int i = 0; i < t.modelCount(); i++) {
            requests.add(StatisticRequest.dot(term(t, i, selects), term(t, i, selects)));
        }
        return requests;
    }

    @Override
    public List<StatisticRequest> statistics(MethodTensor tensor, int round, TensorStatistics known) {
        if (tensor.elements() == 0) {
            return List.of();
        }
        if (!selects(tensor)) {
            return round == 0 ? squares(tensor, false) : List.of();
        }
        List<List<StatisticRequest>> rounds = new ArrayList<>();
        rounds.add(List.of(StatisticRequest.nonzero(VARIANCE)));
        if (round >= 1) {
            long k = keep(tensor, known);
            if (k > 0) {
                rounds.add(List.of(threshold(tensor, k)));
            }
            rounds.add(squares(tensor, true));
        }
        return round < rounds.size() ? rounds.get(round) : List.of();
    }

    /** The chunk's selection: the top k variances, or nothing when k is 0. */
    @Override
    public Selection selection(MethodTensor t, TensorStatistics stats) {
        if (!selects(t)) {
            return null;
        }
        long k = keep(t, stats);
        if (k == 0) {
            return new Selection(VARIANCE, OrderStatistic.KEEP_NOTHING);
        }
        StatisticRequest r = threshold(t, k);
        return new Selection(VARIANCE, stats.order(r).keepFrom(r.position(), stats.equalsBefore(r)));
    }

    /** Each model's mean square over the tensor, normalized to sum 1 (uniform when the sum is under 1e-6). */
    private static float[] weights(MethodTensor t, TensorStatistics stats, boolean selects) {
        int m = t.modelCount();
        double[] means = new double[m];
        double sum = 0.0;
        for (int i = 0; i < m; i++) {
            means[i] = stats.value(StatisticRequest.dot(term(t, i, selects), term(t, i, selects))) / t.elements();
            sum += means[i];
        }
        float[] weights = new float[m];
        for (int i = 0; i < m; i++) {
            weights[i] = (float) (Math.abs(sum) < 1e-6 ? 1.0 / m : means[i] / sum);
        }
        return weights;
    }

    @Override
    public void merge(ChunkKernels kernels, MethodTensor tensor, long chunkStart, int count, TensorStatistics stats,
                      MethodSettings settings, ChunkMetrics metrics) {
        boolean selects = selects(tensor);
        if (selects) {
            Selection selection = selection(tensor, stats);
            kernels.select(selection.rankedBy(), selection.rule(), chunkStart, count);
        }
        kernels.sce(weights(tensor, stats, selects), selects, count, metrics);
    }
}
