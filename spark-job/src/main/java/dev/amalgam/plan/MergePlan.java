package dev.amalgam.plan;

/**
 * Everything decided before data moves: per-tensor inputs and parameters, the chunks, and
 * the output layout (shards, headers, offsets). Broadcast to executors as it is.
 */
public record MergePlan(MethodSettings settings, int modelCount, TensorPlan[] tensors, ChunkPlan[] chunks,
                        ShardPlan[] shards) {

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
