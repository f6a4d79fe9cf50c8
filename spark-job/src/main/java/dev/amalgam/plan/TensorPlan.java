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
 * @param outQuantization null for plain floats; else an FP8 weight or the scales of one
 * @param copy            one input's values written as they are (a slice with one source), by
 *                        {@code passthrough} whatever the plan's method; its parameters are
 *                        passthrough's ({@code scale} 1)
 * @param part            null for a whole output tensor; else which expert of a fused tensor this
 *                        plan merges ({@code name} is then {@code tensor[e]})
 */
public record TensorPlan(int index, String name, long[] shape, long elements, int cols, Dtype outDtype,
                         StoredTensor base, StoredTensor[] models, TensorParameters parameters,
                         int shard, long outOffset, OutputQuantization outQuantization, boolean copy, Part part,
                         dev.amalgam.method.ModelExtent extent, StoredTensor[] companions)
        implements MethodTensor {

    public TensorPlan {
        if (extent == null) {
            extent = dev.amalgam.method.ModelExtent.UNKNOWN;
        }
        if (companions == null) {
            companions = new StoredTensor[0];
        }
    }

    public TensorPlan(int index, String name, long[] shape, long elements, int cols, Dtype outDtype,
                      StoredTensor base, StoredTensor[] models, TensorParameters parameters, int shard, long outOffset,
                      OutputQuantization outQuantization, boolean copy, Part part, dev.amalgam.method.ModelExtent extent) {
        this(index, name, shape, elements, cols, outDtype, base, models, parameters, shard, outOffset, outQuantization,
                copy, part, extent, null);
    }

    /** The same tensor reading {@code companions} too (slots after the base, kind by kind, model by model). */
    public TensorPlan withCompanions(StoredTensor[] companions) {
        return new TensorPlan(index, name, shape, elements, cols, outDtype, base, models, parameters, shard, outOffset,
                outQuantization, copy, part, extent, companions);
    }
    public TensorPlan(int index, String name, long[] shape, long elements, int cols, Dtype outDtype,
                      StoredTensor base, StoredTensor[] models, TensorParameters parameters, int shard, long outOffset,
                      OutputQuantization outQuantization, boolean copy, Part part) {
        this(index, name, shape, elements, cols, outDtype, base, models, parameters, shard, outOffset, outQuantization,
                copy, part, null);
    }

    /** The same tensor, seeing the whole merge as {@code extent}. */
    public TensorPlan withExtent(dev.amalgam.method.ModelExtent extent) {
        return new TensorPlan(index, name, shape, elements, cols, outDtype, base, models, parameters, shard, outOffset,
                outQuantization, copy, part, extent, companions);
    }

    /** One expert's slice of a fused {@code [experts, ...]} output tensor. */
    public record Part(String tensor, int index, int count, long[] wholeShape) {
    }

    public TensorPlan(int index, String name, long[] shape, long elements, int cols, Dtype outDtype,
                      StoredTensor base, StoredTensor[] models, TensorParameters parameters, int shard, long outOffset,
                      OutputQuantization outQuantization, boolean copy) {
        this(index, name, shape, elements, cols, outDtype, base, models, parameters, shard, outOffset, outQuantization,
                copy, null);
    }

    /** The name of the output tensor this plan writes (all or part of). */
    public String outputName() {
        return part == null ? name : part.tensor();
    }

    public TensorPlan(int index, String name, long[] shape, long elements, int cols, Dtype outDtype,
                      StoredTensor base, StoredTensor[] models, TensorParameters parameters, int shard, long outOffset) {
        this(index, name, shape, elements, cols, outDtype, base, models, parameters, shard, outOffset, null, false);
    }

    public TensorPlan(int index, String name, long[] shape, long elements, int cols, Dtype outDtype,
                      StoredTensor base, StoredTensor[] models, TensorParameters parameters, int shard, long outOffset,
                      OutputQuantization outQuantization) {
        this(index, name, shape, elements, cols, outDtype, base, models, parameters, shard, outOffset, outQuantization,
                false);
    }

    /** Whether this is another tensor's block scales, written by that tensor's chunks (no inputs, no work). */
    public boolean derived() {
        return outQuantization instanceof OutputQuantization.Scales;
    }

    /** The same tensor at another place in the plan and output, with {@code q}. */
    TensorPlan placed(int index, int shard, long outOffset, OutputQuantization q) {
        return new TensorPlan(index, name, shape, elements, cols, outDtype, base, models, parameters, shard, outOffset, q,
                copy, part, extent, companions);
    }

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
