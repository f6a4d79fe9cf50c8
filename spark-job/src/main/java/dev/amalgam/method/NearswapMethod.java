package dev.amalgam.method;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.Primitive;

import java.util.List;

/**
 * {@code nearswap}: moves the base towards the model only where the two are close: per element
 * {@code w = clamp(t / max(|b - x|, 1e-6), 0, 1)}, result {@code w x + (1 - w) b}.
 */
final class NearswapMethod extends DeclaredMethod {

    NearswapMethod() {
        super("nearswap", "per-element interpolation towards the model where it is near the base",
                Inputs.baseAmong(1),
                List.of(Parameter.number("t", Parameter.Scope.GLOBAL, null, Parameter.Range.atLeast(0), true,
                        "distance below which the model's value is taken").withExample(0.001)),
                Primitive.NEARSWAP);
    }

    @Override
    public void merge(ChunkKernels kernels, MethodTensor tensor, long chunkStart, int count, TensorStatistics stats,
                      MethodSettings settings, ChunkMetrics metrics) {
        kernels.nearswap((float) global(tensor, "t"), count, metrics);
    }
}
