package dev.amalgam.method;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.Primitive;

import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * {@code passthrough}: each output tensor is one input's tensor as it is, or times the source's
 * {@code scale}; with {@code slices}, how layers of several models are stacked into one.
 */
public final class PassthroughMethod implements MergeMethod {

    @Override
    public String name() {
        return "passthrough";
    }

    @Override
    public String summary() {
        return "one model's tensors as they are (or scaled); stacks layers with slices";
    }

    @Override
    public Inputs inputs() {
        return new Inputs(Inputs.Base.NONE, 1, 1, false, null)
                .describedAs("exactly 1 model (per slice, with slices)");
    }

    @Override
    public List<Parameter> parameters() {
        return List.of(Parameter.number("scale", Parameter.Scope.MODEL, 1.0, Parameter.Range.ANY, true,
                "factor the tensor is multiplied by (1: copied unchanged)").withExample(1.0));
    }

    @Override
    public Set<Primitive> primitives() {
        return EnumSet.of(Primitive.CODEC, Primitive.SCALE);
    }

    @Override
    public void merge(ChunkKernels kernels, MethodTensor tensor, long chunkStart, int count, TensorStatistics stats,
                      MethodSettings settings, ChunkMetrics metrics) {
        double scale = model(tensor, 0, "scale");
        // Without a factor the output holds the input's very values (signed zeros, NaN payloads).
        kernels.scale(scale == 1.0 ? null : (float) scale, count, metrics);
    }
}
