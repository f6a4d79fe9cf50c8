package dev.amalgam.method;

import dev.amalgam.kernels.Operand;

/**
 * What the TIES paper's whole-model trimming shares between its users (`ties` with
 * {@code trim_scope: model}, {@code consensus_ties}): the whole model's majority sign where a
 * total is 0, and the check that a model's density keeps something of the whole model.
 */
final class WholeModelTrim {
    /** The sum of sign(S) over the whole model, S the total of the weighted trimmed deltas. */
    static final StatisticRequest MAJORITY = StatisticRequest.signSum(new Operand.Consensus()).over(Scope.MODEL);

    private WholeModelTrim() {
    }

    /** The whole model's majority: -1, 0 or 1; fails if the tensor merges before it was reduced. */
    static int tieSign(MethodTensor tensor, TensorStatistics stats) {
        double majority = stats.value(MAJORITY);
        if (Double.isNaN(majority)) {
            throw new IllegalStateException("tensor '" + tensor.name() + "' merges before its whole-model sign sum");
        }
        return (int) Math.signum(majority);
    }

    /** A problem when model {@code i}'s density keeps no entry of the whole model, else null. */
    static String keepsNothing(MethodTensor tensor, int i, double density) {
        long n = tensor.extent().elements();
        if (density >= 1.0 || Sparsifier.keepCount(density, n) > 0) {
            return null;
        }
        return "models[" + i + "] (" + tensor.inputFile(i) + "): density " + density + " keeps floor(density x " + n
                + ") = 0 entries of the whole model; raise density";
    }
}
