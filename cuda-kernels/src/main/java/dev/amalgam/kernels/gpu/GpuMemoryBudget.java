package dev.amalgam.kernels.gpu;

import java.util.concurrent.atomic.AtomicLong;

/**
 * The device memory Amalgam's tasks may hold on one GPU at once. Tasks that share a GPU
 * (a fractional {@code spark.task.resource.gpu.amount}) reserve their working set here before
 * allocating, so going over the budget is a clear error naming the setting, not a CUDA
 * out-of-memory in the middle of a chunk.
 */
public final class GpuMemoryBudget {
    private final long limit;
    private final String setting;
    private final AtomicLong reserved = new AtomicLong();

    /**
     * @param limit   bytes
     * @param setting how a user changes the limit, for the error message
     */
    public GpuMemoryBudget(long limit, String setting) {
        this.limit = limit;
        this.setting = setting;
    }

    public long limit() {
        return limit;
    }

    public long reserved() {
        return reserved.get();
    }

    void reserve(long bytes, String task) {
        long now = reserved.addAndGet(bytes);
        if (now > limit) {
            reserved.addAndGet(-bytes);
            long others = now - bytes;
            throw new DeviceMemoryException(task + " needs " + mib(bytes) + " of GPU memory for its chunk buffers, over the "
                    + mib(limit) + " GPU budget (" + setting + ")" + (others > 0 ? " with " + mib(others)
                    + " held by other tasks on this GPU" : "") + "; lower --chunk-elements, give each task more of the"
                    + " GPU (spark.task.resource.gpu.amount), or raise the budget");
        }
    }

    void release(long bytes) {
        reserved.addAndGet(-bytes);
    }

    private static String mib(long bytes) {
        return String.format(java.util.Locale.ROOT, "%.1f MiB", bytes / 1048576.0);
    }
}
