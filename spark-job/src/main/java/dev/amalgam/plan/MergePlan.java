package dev.amalgam.plan;

import dev.amalgam.method.MergeMethods;
import dev.amalgam.method.MethodSettings;

/**
 * Everything decided before data moves: per-tensor inputs and parameters, the chunks, and
 * the output layout (shards, headers, offsets). Broadcast to executors as it is.
 */
public record MergePlan(MethodSettings settings, int modelCount, TensorPlan[] tensors, ChunkPlan[] chunks,
                        ShardPlan[] shards) {

    public MergePlan {
        for (int i = 0; i < tensors.length; i++) {
            if (tensors[i].index() != i) {
                throw new IllegalStateException("tensor '" + tensors[i].name() + "' has index " + tensors[i].index()
                        + " but sits at position " + i + " of the plan");
            }
        }
    }

    /** The kernel primitives the plan's method needs (a backend without them is not used). */
    public java.util.Set<dev.amalgam.kernels.Primitive> primitives() {
        java.util.Set<dev.amalgam.kernels.Primitive> needed = java.util.EnumSet.copyOf(
                MergeMethods.byName(settings.method()).orElseThrow().primitives());
        if (quantized()) {
            needed.add(dev.amalgam.kernels.Primitive.DEQUANTIZE);
        }
        return needed;
    }

    /** Whether any input tensor is block-quantized (FP8 with scales, MXFP4). */
    public boolean quantized() {
        for (TensorPlan t : tensors) {
            if (t.base() != null && t.base().quantization() != null) {
                return true;
            }
            for (dev.amalgam.format.StoredTensor m : t.models()) {
                if (m.quantization() != null) {
                    return true;
                }
            }
        }
        return false;
    }

    public long inputBytes() {
        long total = 0;
        for (TensorPlan t : tensors) {
            if (t.base() != null) {
                total += t.base().byteLength();
            }
            for (var m : t.models()) {
                total += m.byteLength();
            }
        }
        return total;
    }

    public long outputBytes() {
        long total = 0;
        for (TensorPlan t : tensors) {
            total += t.outBytes();
        }
        return total;
    }
}
