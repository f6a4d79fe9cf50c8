package dev.amalgam.method;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.Primitive;

import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/** {@code linear}: a weighted average of the listed models; a base_model not listed is no input. */
public final class LinearMethod implements MergeMethod {

    @Override
    public String name() {
        return "linear";
    }

    @Override
    public String summary() {
        return "weighted average of the models";
    }

    @Override
    public Inputs inputs() {
        return Inputs.noBase(1);
    }

    @Override
    public List<Parameter> parameters() {
        return List.of(
                Parameter.flag("normalize", true, "divide by the sum of weights"),
                Parameter.number("weight", Parameter.Scope.MODEL, null, Parameter.Range.ANY, true, "the model's weight")
                        .withExample(0.5));
    }

    @Override
    public Set<Primitive> primitives() {
        return EnumSet.of(Primitive.CODEC, Primitive.LINEAR);
    }

    @Override
    public List<String> check(MethodTensor tensor) {
        if (!flag(tensor, "normalize")) {
            return List.of();
        }
        float sum = 0.0f;
        for (int i = 0; i < tensor.modelCount(); i++) {
            sum += (float) model(tensor, i, "weight");
        }
        return sum == 0.0f ? List.of("tensor '" + tensor.name() + "': the weights sum to 0, so normalizing divides "
                + "by zero; change a weight or set parameters.normalize: false") : List.of();
    }

    @Override
    public void merge(ChunkKernels kernels, MethodTensor tensor, long chunkStart, int count, TensorStatistics stats,
                      MethodSettings settings, ChunkMetrics metrics) {
        float[] weights = new float[tensor.modelCount()];
        for (int i = 0; i < weights.length; i++) {
            weights[i] = (float) model(tensor, i, "weight");
        }
        kernels.mergeLinear(count, weights, flag(tensor, "normalize"), metrics);
    }
}
