package dev.amalgam.method;

import dev.amalgam.config.ModelSpec;
import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.Operand;
import dev.amalgam.kernels.Primitive;

import java.util.ArrayList;
import java.util.List;

/**
 * Fisher-weighted averaging (Matena and Raffel, "Merging Models with Fisher-Weighted
 * Averaging", NeurIPS 2022), as the authors' code merges (docs/methods.md): each model entry names
 * a checkpoint of its diagonal Fisher ({@code fisher: DIR}); with {@code normalize_fishers} each
 * model's coefficient is its weight over the L2 norm of its whole Fisher; per element
 * {@code sum_i c_i F_i x_i / sum_i c_i F_i}, the first model's (the target's) Fisher floored at
 * {@code fisher_floor} (every model's without {@code favor_target_model}).
 *
 * <p>Statistics: with {@code normalize_fishers}, one whole-model sum of squares per Fisher
 * ({@link Scope#MODEL}), one read of the inputs before the merge.
 */
final class FisherMethod extends DeclaredMethod {

    FisherMethod() {
        super("fisher", "Fisher-weighted averaging with supplied diagonal Fishers",
                Inputs.noBase(1),
                List.of(Parameter.number("weight", Parameter.Scope.MODEL, 1.0, Parameter.Range.atLeast(0), false,
                                "the model's merging coefficient"),
                        Parameter.number("fisher_floor", Parameter.Scope.GLOBAL, 1e-6, Parameter.Range.atLeast(0),
                                false, "smallest Fisher value of the floored models"),
                        Parameter.flag("favor_target_model", true,
                                "floor only the first model's Fisher (the target), as the paper's code does"),
                        Parameter.flag("normalize_fishers", true,
                                "divide each weight by the L2 norm of the model's whole Fisher")),
                Primitive.FISHER, Primitive.DOT, Primitive.COMPANIONS);
    }

    @Override
    public List<String> companions() {
        return List.of(ModelSpec.FISHER);
    }

    /** The slot model {@code i}'s Fisher is read into: after the models and the base. */
    private static Operand fisherOf(MethodTensor t, int i) {
        return new Operand.Value(t.modelCount() + 1 + i);
    }

    private static StatisticRequest squares(MethodTensor t, int i) {
        return StatisticRequest.dot(fisherOf(t, i), fisherOf(t, i)).over(Scope.MODEL);
    }

    @Override
    public boolean wideStatistics(MethodTensor tensor) {
        return flag(tensor, "normalize_fishers");
    }

    @Override
    public List<StatisticRequest> statistics(MethodTensor tensor, int round, TensorStatistics known) {
        if (round > 0 || !flag(tensor, "normalize_fishers")) {
            return List.of();
        }
        List<StatisticRequest> requests = new ArrayList<>();
        for (int i = 0; i < tensor.modelCount(); i++) {
            requests.add(squares(tensor, i));
        }
        return requests;
    }

    @Override
    public void merge(ChunkKernels kernels, MethodTensor tensor, long chunkStart, int count, TensorStatistics stats,
                      MethodSettings settings, ChunkMetrics metrics) {
        float[] coefficients = new float[tensor.modelCount()];
        boolean normalize = flag(tensor, "normalize_fishers");
        for (int i = 0; i < coefficients.length; i++) {
            double weight = model(tensor, i, "weight");
            if (normalize) {
                double norm = Math.sqrt(stats.value(squares(tensor, i)));
                if (!(norm > 0.0) || Double.isInfinite(norm)) {
                    throw new IllegalArgumentException("the Fisher checkpoint given for models[" + i + "] ("
                            + tensor.inputFile(i) + ") has L2 norm " + norm + " over the whole model; give a Fisher with non-zero finite "
                            + "values, or set normalize_fishers: false");
                }
                weight /= norm;
            }
            coefficients[i] = (float) weight;
        }
        kernels.fisher(coefficients, (float) global(tensor, "fisher_floor"), flag(tensor, "favor_target_model"),
                count, metrics);
    }
}
