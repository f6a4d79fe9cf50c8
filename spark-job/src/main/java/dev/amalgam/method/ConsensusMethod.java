package dev.amalgam.method;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.KeepRule;
import dev.amalgam.kernels.Operand;
import dev.amalgam.kernels.Primitive;
import dev.amalgam.kernels.TaskVectorKernel;

import java.util.ArrayList;
import java.util.List;

/**
 * Consensus merging with TALL masks (Wang et al., "Localizing Task Information for Improved
 * Model Merging and Compression", ICML 2024), as the authors' code computes it (docs/methods.md):
 * a multi-task vector {@code tv} (task arithmetic for {@code consensus_ta}, the TIES paper's merge
 * for {@code consensus_ties}), each task's mask {@code |x_t - b| > |(b + tv) - x_t| * lambda_t},
 * and {@code tv} kept only where at least {@code k} tasks' masks hold: {@code b + lambda * tv}.
 *
 * <p>Statistics: none for {@code consensus_ta}. {@code consensus_ties} trims each model over the
 * whole model (a {@link Scope#MODEL} order statistic per model whose density is below 1) and
 * needs the whole model's majority sign ({@link Operand.Consensus}'s sign sum) where a total is 0.
 */
final class ConsensusMethod extends DeclaredMethod {
    private final boolean ties;

    ConsensusMethod(boolean ties) {
        super(ties ? "consensus_ties" : "consensus_ta",
                "multi-task vector (" + (ties ? "TIES" : "task arithmetic") + ") kept where k tasks' TALL masks agree",
                Inputs.base(1, Integer.MAX_VALUE), parameters(ties),
                Primitive.CONSENSUS, Primitive.DELTA_ORDER);
        this.ties = ties;
    }

    private static List<Parameter> parameters(boolean ties) {
        List<Parameter> p = new ArrayList<>();
        p.add(Parameter.number("lambda", Parameter.Scope.GLOBAL, 1.0, Parameter.Range.ANY, false,
                "scaling coefficient of the masked multi-task vector"));
        p.add(Parameter.integer("k", 2.0, Parameter.Range.atLeast(0),
                "fewest tasks whose masks must hold for an entry to be kept (prun_thre_k)"));
        p.add(Parameter.number("weight", Parameter.Scope.MODEL, 1.0, Parameter.Range.ANY, false,
                "the task vector's weight in the multi-task vector"));
        p.add(Parameter.number("tall_mask_lambda", Parameter.Scope.MODEL, 0.4, Parameter.Range.atLeast(0), false,
                "the TALL mask's lambda for this task"));
        if (ties) {
            p.add(Parameter.number("density", Parameter.Scope.MODEL, 1.0, Parameter.Range.openClosed(0, 1), false,
                    "fraction of the task vector kept, over the whole model"));
        }
        return p;
    }

    @Override
    public boolean wideStatistics(MethodTensor tensor) {
        return ties;
    }

    private double density(MethodTensor t, int i) {
        return ties ? model(t, i, "density") : 1.0;
    }

    private StatisticRequest threshold(MethodTensor t, int i) {
        long n = t.extent().elements();
        long position = n - Sparsifier.keepCount(density(t, i), n);
        return StatisticRequest.order(new Operand.Delta(i), position).over(Scope.MODEL);
    }

    @Override
    public List<String> check(MethodTensor tensor) {
        List<String> problems = new ArrayList<>();
        for (int i = 0; i < tensor.modelCount(); i++) {
            String problem = WholeModelTrim.keepsNothing(tensor, i, density(tensor, i));
            if (problem != null) {
                problems.add(problem);
            }
        }
        return problems;
    }

    @Override
    public List<StatisticRequest> statistics(MethodTensor tensor, int round, TensorStatistics known) {
        if (!ties) {
            return List.of();
        }
        List<StatisticRequest> orders = new ArrayList<>();
        for (int i = 0; i < tensor.modelCount(); i++) {
            if (density(tensor, i) < 1.0) {
                orders.add(threshold(tensor, i));
            }
        }
        List<List<StatisticRequest>> rounds = new ArrayList<>();
        if (!orders.isEmpty()) {
            rounds.add(orders);
        }
        // The majority sign needs the keep rules, and so the thresholds, of the round before.
        rounds.add(List.of(WholeModelTrim.MAJORITY));
        return round < rounds.size() ? rounds.get(round) : List.of();
    }

    @Override
    public TaskVectorKernel.ModelTerm[] terms(MethodTensor tensor, long chunkStart, TensorStatistics stats, long seed) {
        TaskVectorKernel.ModelTerm[] terms = new TaskVectorKernel.ModelTerm[tensor.modelCount()];
        for (int i = 0; i < terms.length; i++) {
            KeepRule keep = new KeepRule.All();
            if (density(tensor, i) < 1.0) {
                StatisticRequest r = threshold(tensor, i);
                OrderStatistic at = stats.order(r);
                if (at == null) {
                    throw new IllegalStateException("tensor '" + tensor.name() + "' trims before its threshold");
                }
                keep = at.keepFrom(r.position(), stats.equalsBefore(r));
            }
            terms[i] = new TaskVectorKernel.ModelTerm((float) model(tensor, i, "weight"), keep, 1.0f);
        }
        return terms;
    }

    @Override
    public void merge(ChunkKernels kernels, MethodTensor tensor, long chunkStart, int count, TensorStatistics stats,
                      MethodSettings settings, ChunkMetrics metrics) {
        float[] lambdas = new float[tensor.modelCount()];
        for (int i = 0; i < lambdas.length; i++) {
            lambdas[i] = (float) model(tensor, i, "tall_mask_lambda");
        }
        int tieSign = ties ? WholeModelTrim.tieSign(tensor, stats) : 0;
        kernels.consensus(terms(tensor, chunkStart, stats, settings.seed()), ties, tieSign, lambdas,
                (int) global(tensor, "k"), (float) global(tensor, "lambda"), chunkStart, count, metrics);
    }
}
