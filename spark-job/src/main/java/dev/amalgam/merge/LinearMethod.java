package dev.amalgam.merge;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.KeepRule;
import dev.amalgam.plan.MethodSettings;
import dev.amalgam.plan.TensorPlan;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** {@code linear}: a weighted average of the listed models; a base_model not listed is no input. */
public final class LinearMethod implements MergeMethod {

    @Override
    public String name() {
        return "linear";
    }

    @Override
    public boolean requiresBase() {
        return false;
    }

    @Override
    public Map<String, Object> globalParameters() {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("normalize", true);
        return p;
    }

    @Override
    public Map<String, Object> modelParameters() {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("weight", null);
        return p;
    }

    @Override
    public List<String> check(TensorPlan tensor) {
        float sum = 0.0f;
        for (var p : tensor.parameters()) {
            sum += p.weight();
        }
        return sum == 0.0f ? List.of("tensor '" + tensor.name() + "': the weights sum to 0, so normalizing divides "
                + "by zero; change a weight or set parameters.normalize: false") : List.of();
    }

    @Override
    public void merge(ChunkKernels kernels, TensorPlan tensor, long chunkStart, int count, KeepRule[] rules,
                      float[] scales, MethodSettings settings, ChunkMetrics metrics) {
        float[] weights = new float[tensor.parameters().length];
        for (int i = 0; i < weights.length; i++) {
            weights[i] = tensor.parameters()[i].weight();
        }
        kernels.mergeLinear(count, weights, settings.normalize(), metrics);
    }
}
