package dev.amalgam.method;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.Operand;
import dev.amalgam.kernels.Primitive;

import java.util.ArrayList;
import java.util.List;

/**
 * {@code ramplus_tl}: RAM where a model's unique contributions are scaled up by how much it
 * shares with the others. Per model over the tensor, {@code shared_i} and {@code unique_i} count
 * its contributing entries where several or only it contribute (one statistics round of
 * counts); {@code rho_i = shared_i / max(unique_i, epsilon)}, {@code lambda_i = 1 + r clamp(rho_i,
 * 0, alpha)} (double, rounded to float32); result {@code b + sum of (c == 1 ? lambda_i d_i : d_i / c)}.
 */
final class RamPlusMethod extends DeclaredMethod {

    RamPlusMethod() {
        super("ramplus_tl", "RAM with unique contributions scaled up by the model's shared fraction",
                Inputs.base(1, Integer.MAX_VALUE),
                List.of(Parameter.number("epsilon", Parameter.Scope.GLOBAL, 1e-5, Parameter.Range.atLeast(0), true,
                                "smallest |delta| that contributes"),
                        Parameter.number("r", Parameter.Scope.GLOBAL, 0.1, Parameter.Range.atLeast(0), true,
                                "strength of the unique-entry boost"),
                        Parameter.number("alpha", Parameter.Scope.GLOBAL, 0.2, Parameter.Range.atLeast(0), true,
                                "cap on the shared-to-unique ratio")),
                Primitive.RAM, Primitive.COUNT);
    }

    private Operand contribution(MethodTensor t, int model, boolean shared) {
        return new Operand.Contribution(model, (float) global(t, "epsilon"), shared);
    }

    @Override
    public List<StatisticRequest> statistics(MethodTensor tensor, int round, TensorStatistics known) {
        if (round > 0) {
            return List.of();
        }
        List<StatisticRequest> requests = new ArrayList<>();
        for (int i = 0; i < tensor.modelCount(); i++) {
            requests.add(StatisticRequest.nonzero(contribution(tensor, i, true)));
            requests.add(StatisticRequest.nonzero(contribution(tensor, i, false)));
        }
        return requests;
    }

    @Override
    public void merge(ChunkKernels kernels, MethodTensor tensor, long chunkStart, int count, TensorStatistics stats,
                      MethodSettings settings, ChunkMetrics metrics) {
        float epsilon = (float) global(tensor, "epsilon");
        double r = global(tensor, "r");
        double alpha = global(tensor, "alpha");
        float[] lambdas = new float[tensor.modelCount()];
        for (int i = 0; i < lambdas.length; i++) {
            double shared = stats.value(StatisticRequest.nonzero(contribution(tensor, i, true)));
            double unique = stats.value(StatisticRequest.nonzero(contribution(tensor, i, false)));
            double rho = shared / Math.max(unique, epsilon);
            lambdas[i] = (float) (1.0 + r * Math.min(Math.max(rho, 0.0), alpha));
        }
        kernels.ram(epsilon, lambdas, count, metrics);
    }
}
