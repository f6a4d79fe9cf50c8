package dev.amalgam.method;

import dev.amalgam.config.ModelSpec;
import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.Primitive;

import java.util.List;

/**
 * OTA (Mahdavi et al. 2025, "Harnessing Optimization Dynamics for Curvature-Informed Model
 * Merging"), as the authors' merge method in their fork of the widely used tool defines it
 * (docs/methods.md): each model entry names a checkpoint of its Adam second moments
 * ({@code second_moment: DIR}, the optimizer's {@code exp_avg_sq} saved under the weights'
 * names); per element the models are averaged with weights {@code sqrt(v_i + epsilon) + epsilon}.
 * No statistics: one read of the models and their second moments.
 */
final class OtaMethod extends DeclaredMethod {

    OtaMethod() {
        super("ota", "curvature-weighted average by the models' Adam second moments",
                Inputs.noBase(1),
                List.of(Parameter.number("epsilon", Parameter.Scope.GLOBAL, 1e-8, Parameter.Range.atLeast(0), false,
                        "added to each second moment before its root, and to the root")),
                Primitive.OTA, Primitive.COMPANIONS);
    }

    @Override
    public List<String> companions() {
        return List.of(ModelSpec.SECOND_MOMENT);
    }

    @Override
    public void merge(ChunkKernels kernels, MethodTensor tensor, long chunkStart, int count, TensorStatistics stats,
                      MethodSettings settings, ChunkMetrics metrics) {
        kernels.ota((float) global(tensor, "epsilon"), count, metrics);
    }
}
