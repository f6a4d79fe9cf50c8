package dev.amalgam.method;

import dev.amalgam.config.ModelSpec;
import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.KeepRule;
import dev.amalgam.kernels.Operand;
import dev.amalgam.kernels.Primitive;

import java.util.List;

/**
 * {@code ffg}, Fast Fisher Grafting: OTA's mask variant (Mahdavi et al. 2025; the authors' fork
 * of the widely used tool, docs/methods.md). One fine-tune's delta is grafted onto the base where
 * its salience {@code d^2 v} ({@code v} its Adam second moment, {@code second_moment: DIR}) is
 * among the tensor's {@code k = max(1, round(density * n))} largest, round half to even in
 * double, ties by lower flat index; elsewhere the base. {@code density >= 1} gives the fine-tune,
 * {@code <= 0} the base. Statistics: the salience's exact order statistic at {@code n - k}.
 */
final class FisherGraftMethod extends DeclaredMethod {

    FisherGraftMethod() {
        super("ffg", "graft a fine-tune's most salient entries (delta squared times second moment) onto the base",
                Inputs.base(1, 1),
                List.of(Parameter.number("density", Parameter.Scope.GLOBAL, 0.1, Parameter.Range.ANY, true,
                        "fraction of each tensor's entries to graft, by salience")),
                Primitive.GRAFT, Primitive.DELTA_ORDER, Primitive.SCALE, Primitive.COMPANIONS);
    }

    @Override
    public List<String> companions() {
        return List.of(ModelSpec.SECOND_MOMENT);
    }

    /** Model 0's salience, its second moment in the companion slot after the base. */
    private static Operand.Salience salience(MethodTensor t) {
        return new Operand.Salience(0, t.modelCount() + 1);
    }

    /** How many entries to graft; only meaningful for {@code 0 < density < 1}. */
    static long keep(double density, long n) {
        return n == 0 ? 0 : Math.max(1L, (long) Math.rint(density * n));
    }

    private boolean selects(MethodTensor t) {
        double density = global(t, "density");
        return density > 0.0 && density < 1.0 && t.elements() > 0;
    }

    private StatisticRequest threshold(MethodTensor t) {
        return StatisticRequest.order(salience(t), t.elements() - keep(global(t, "density"), t.elements()));
    }

    @Override
    public List<StatisticRequest> statistics(MethodTensor tensor, int round, TensorStatistics known) {
        return round == 0 && selects(tensor) ? List.of(threshold(tensor)) : List.of();
    }

    @Override
    public void merge(ChunkKernels kernels, MethodTensor tensor, long chunkStart, int count, TensorStatistics stats,
                      MethodSettings settings, ChunkMetrics metrics) {
        if (global(tensor, "density") >= 1.0) {
            kernels.scale(null, count, metrics);
            return;
        }
        KeepRule.TopK keep = OrderStatistic.KEEP_NOTHING;
        if (selects(tensor)) {
            StatisticRequest r = threshold(tensor);
            keep = stats.order(r).keepFrom(r.position(), stats.equalsBefore(r));
        }
        kernels.graft(salience(tensor), keep, count, metrics);
    }
}
