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

    /** The method that merges {@code tensor}: the plan's, or passthrough for a copied tensor. */
    public dev.amalgam.method.MergeMethod methodOf(TensorPlan tensor) {
        return MergeMethods.byName(tensor.copy() ? "passthrough" : settings.method()).orElseThrow();
    }

    /** The kernel primitives the plan's methods need (a backend without them is not used). */
    public java.util.Set<dev.amalgam.kernels.Primitive> primitives() {
        dev.amalgam.method.MergeMethod method = MergeMethods.byName(settings.method()).orElseThrow();
        java.util.Set<dev.amalgam.kernels.Primitive> needed = java.util.EnumSet.noneOf(dev.amalgam.kernels.Primitive.class);
        boolean copies = false;
        for (TensorPlan t : tensors) {
            if (t.copy()) {
                copies = true;
            } else if (!t.derived()) {
                needed.addAll(method.primitives(t));
            }
        }
        if (copies) {
            needed.addAll(MergeMethods.byName("passthrough").orElseThrow().primitives());
        }
        if (needed.isEmpty()) {
            needed.addAll(method.primitives());
        }
        if (quantized()) {
            needed.add(dev.amalgam.kernels.Primitive.DEQUANTIZE);
        }
        if (companionSlots() > 0) {
            needed.add(dev.amalgam.kernels.Primitive.COMPANIONS);
        }
        for (TensorPlan t : tensors) {
            for (dev.amalgam.format.StoredTensor m : t.models()) {
                if (m.lowRank() != null) {
                    needed.add(dev.amalgam.kernels.Primitive.LOW_RANK);
                }
            }
            if (t.base() != null && t.base().lowRank() != null) {
                needed.add(dev.amalgam.kernels.Primitive.LOW_RANK);
            }
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

    /**
     * A digest of how the tensors are cut into chunks: a staging directory's chunks are reused
     * only by a run that cuts the same way (the cut depends on the chunk size and, for tensors
     * kept whole for their statistics, on the executors' memory).
     */
    public String chunkLayout() {
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        java.nio.ByteBuffer entry = java.nio.ByteBuffer.allocate(16);
        for (ChunkPlan c : chunks) {
            entry.clear();
            crc.update(entry.putInt(c.tensor()).putLong(c.start()).putInt(c.count()).flip());
        }
        return chunks.length + "/" + Long.toHexString(crc.getValue());
    }

    /** Index of each tensor's first chunk (a tensor's chunks are consecutive, in ordinal order). */
    public int[] firstChunks() {
        int[] first = new int[tensors.length];
        java.util.Arrays.fill(first, -1);
        for (ChunkPlan c : chunks) {
            if (first[c.tensor()] < 0) {
                first[c.tensor()] = c.index();
            }
        }
        return first;
    }

    /** Whether some output tensor is written in FP8 with block scales. */
    public boolean quantizedOutput() {
        for (TensorPlan t : tensors) {
            if (t.outQuantization() != null) {
                return true;
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
            for (var c : t.companions()) {
                total += c.byteLength();
            }
        }
        return total;
    }

    /** Input slots after the base for companion checkpoints (Fisher diagonals, second moments), 0 for none. */
    public int companionSlots() {
        int slots = 0;
        for (TensorPlan t : tensors) {
            slots = Math.max(slots, t.companions().length);
        }
        return slots;
    }

    public long outputBytes() {
        long total = 0;
        for (TensorPlan t : tensors) {
            total += t.outBytes();
        }
        return total;
    }
}
