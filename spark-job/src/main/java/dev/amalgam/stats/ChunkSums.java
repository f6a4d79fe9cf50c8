package dev.amalgam.stats;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ExactSum;
import dev.amalgam.kernels.KeepRule;
import dev.amalgam.kernels.Operand;
import dev.amalgam.method.MergeMethod;
import dev.amalgam.method.Reduction;
import dev.amalgam.method.StatisticRequest;
import dev.amalgam.method.TensorStatistics;
import dev.amalgam.plan.ChunkPlan;
import dev.amalgam.plan.MergePlan;
import dev.amalgam.plan.TensorPlan;

import java.util.List;
import java.util.Map;

/**
 * Adds one decoded chunk's part of a tensor's sum, dot-product and count requests into their
 * partials, on the chunk's backend. The distributed rounds and the in-task path of single-chunk
 * tensors both use it, so a statistic is computed the same way whichever path runs it.
 */
final class ChunkSums {
    private ChunkSums() {
    }

    static void add(ChunkKernels kernels, MergeMethod method, MergePlan plan, TensorPlan tensor, ChunkPlan chunk,
                    List<StatisticRequest> requests, TensorStatistics known, Map<StatisticRequest, Partial> into) {
        int count = chunk.count();
        if (requests.stream().anyMatch(r -> r.a() instanceof Operand.Selected || r.b() instanceof Operand.Selected)) {
            MergeMethod.Selection selection = method.selection(tensor, known);
            if (selection == null) {
                throw new IllegalStateException(method.name() + " asks for selected operands but has no selection");
            }
            kernels.select(selection.rankedBy(), selection.rule(), chunk.start(), count);
        }
        for (StatisticRequest r : requests) {
            if (r.reduction() == Reduction.ORDER || r.a() instanceof Operand.Output) {
                continue;
            }
            Partial partial = into.computeIfAbsent(r, k -> new Partial(k.reduction()));
            switch (r.reduction()) {
                case ABS_SUM -> absSum(kernels, method, plan, tensor, chunk, r, known, partial, requests, into);
                case DOT -> kernels.dot(r.a(), r.b(), count, partial.products());
                case SUM -> kernels.sum(r.a(), count, partial.products());
                case NONZERO -> partial.addCount(kernels.countNonzero(r.a(), count));
                case SIGN_SUM -> partial.addCount(signSum(kernels, method, plan, tensor, chunk, r, known));
                default -> throw new IllegalStateException(r.toString());
            }
        }
        addOutputs(kernels, method, plan, tensor, chunk, requests, known, into);
    }

    /**
     * Sums of the method's own output quantities, last: writing one may overwrite the decoded
     * inputs the other requests read.
     */
    static void addOutputs(ChunkKernels kernels, MergeMethod method, MergePlan plan, TensorPlan tensor, ChunkPlan chunk,
                           List<StatisticRequest> requests, TensorStatistics known, Map<StatisticRequest, Partial> into) {
        for (StatisticRequest r : requests) {
            if (r.a() instanceof Operand.Output o) {
                if (r.reduction() != Reduction.ABS_SUM) {
                    throw new IllegalArgumentException("only ABS_SUM reduces a method's output, not " + r.reduction());
                }
                boolean minusBase = method.output(o.which(), kernels, tensor, chunk.start(), chunk.count(), known,
                        plan.settings());
                kernels.outputMagnitudes(minusBase, chunk.count(),
                        into.computeIfAbsent(r, k -> new Partial(Reduction.ABS_SUM)).magnitudes());
            }
        }
    }

    /**
     * |delta| sums go through the backend's kept-sum primitive, which sums a delta before and
     * after a keep rule in one sweep: a request for both halves of one model is served by one call.
     */
    private static void absSum(ChunkKernels kernels, MergeMethod method, MergePlan plan, TensorPlan tensor,
                               ChunkPlan chunk, StatisticRequest r, TensorStatistics known, Partial partial,
                               List<StatisticRequest> requests, Map<StatisticRequest, Partial> into) {
        int model;
        boolean keptWanted;
        if (r.a() instanceof Operand.Delta d) {
            model = d.model();
            keptWanted = requests.contains(StatisticRequest.absSum(new Operand.KeptDelta(model)));
            if (keptWanted) {
                return; // summed together with the kept half below
            }
        } else if (r.a() instanceof Operand.KeptDelta k) {
            model = k.model();
            keptWanted = true;
        } else {
            throw new IllegalArgumentException("an ABS_SUM of " + r.a() + " is not supported; use a DOT");
        }
        ExactSum all = new ExactSum();
        ExactSum kept = new ExactSum();
        KeepRule rule = keptWanted ? method.keepRule(tensor, model, chunk.start(), known, plan.settings().seed())
                : new KeepRule.All();
        kernels.magnitudeSums(model, chunk.count(), chunk.start(), rule, all, kept);
        if (keptWanted) {
            partial.magnitudes().merge(kept);
            StatisticRequest whole = StatisticRequest.absSum(new Operand.Delta(model));
            if (requests.contains(whole)) {
                into.computeIfAbsent(whole, k -> new Partial(Reduction.ABS_SUM)).magnitudes().merge(all);
            }
        } else {
            partial.magnitudes().merge(all);
        }
    }

    private static long signSum(ChunkKernels kernels, MergeMethod method, MergePlan plan, TensorPlan tensor,
                                ChunkPlan chunk, StatisticRequest r, TensorStatistics known) {
        if (!(r.a() instanceof Operand.Consensus)) {
            throw new IllegalArgumentException("a SIGN_SUM of " + r.a() + " is not supported; sum the signs of a "
                    + "Consensus");
        }
        var terms = method.terms(tensor, chunk.start(), known, plan.settings().seed());
        if (terms == null) {
            throw new IllegalStateException(method.name() + " asks for a consensus but gives no terms");
        }
        return kernels.consensusSigns(terms, chunk.start(), chunk.count());
    }

    /**
     * Which inputs a chunk must load for {@code requests}: models, then (past the base's slot, which
     * is always loaded when present) the companion slots {@code models + 1 + j}.
     */
    static boolean[] modelsNeeded(int models, int companions, List<StatisticRequest> requests) {
        boolean[] needed = new boolean[models + 1 + companions];
        for (StatisticRequest r : requests) {
            mark(needed, r.a());
            if (r.b() != null) {
                mark(needed, r.b());
            }
        }
        return needed;
    }

    private static void mark(boolean[] needed, Operand o) {
        if (o instanceof Operand.Delta d) {
            needed[d.model()] = true;
        } else if (o instanceof Operand.KeptDelta k) {
            needed[k.model()] = true;
        } else if (o instanceof Operand.Value v && v.slot() < needed.length) {
            needed[v.slot()] = true;
        } else if (o instanceof Operand.Contribution || o instanceof Operand.Variance || o instanceof Operand.Selected
                || o instanceof Operand.Consensus || o instanceof Operand.Output || o instanceof Operand.Balance) {
            for (int i = 0; i < needed.length; i++) {
                needed[i] = true;
            }
        } else if (o instanceof Operand.Importance && needed.length > 0) {
            needed[0] = true;
        } else if (o instanceof Operand.Salience sal) {
            needed[sal.model()] = true;
            needed[sal.slot()] = true;
        }
    }
}
