package dev.amalgam.plan;

import dev.amalgam.method.MethodTensor;
import dev.amalgam.method.TensorParameters;

import dev.amalgam.format.StoredTensor;
import dev.amalgam.kernels.Dtype;

/**
 * One output tensor: its inputs, its parameters resolved for it, and where its bytes go.
 *
 * @param base the base model's tensor, or null for methods without one
 * @param index position in the plan's tensor array (the planner numbers tensors as it places them)
 * @param models the non-base inputs in config order (model index = position here)
 * @param cols row length (last dimension; 1 for scalars), which DELLA ranks within
 * @param shard index of the output shard
 * @param outOffset absolute byte offset of the tensor's data in the shard file
 */
public record TensorPlan(int index, String name, long[] shape, long elements, int cols, Dtype outDtype,
                         StoredTensor base, StoredTensor[] models, TensorParameters parameters,
                         int shard, long outOffset) implements MethodTensor {

    @Override
    public boolean hasBase() {
        return base != null;
    }

    @Override
    public String inputFile(int model) {
        return models[model].file();
    }

    public long outBytes() {
        return elements * outDtype.byteSize();
    }
}
