package dev.amalgam.kernels;

import org.apache.arrow.memory.BufferAllocator;

/** Where merge kernels run: opens one {@link ChunkKernels} working set per task. */
public interface KernelBackend {

    /** The backend's name and device, for the executor's log line ("cpu", "cuda:0 NVIDIA H100 ..."). */
    String description();

    /** The primitives this backend's working sets run; a plan needing others runs on another backend. */
    java.util.Set<Primitive> primitives();

    /**
     * Opens a working set for chunks of up to {@code maxCount} elements.
     *
     * @param host   the allocator that accounts the task's host memory (the executor's limit)
     * @param name   the task, for allocator names and errors
     * @param models how many models a chunk has (config order)
     * @param hasBase whether a base model is a further input
     */
    ChunkKernels open(BufferAllocator host, String name, int maxCount, int models, boolean hasBase);

    /**
     * The same with {@code companions} further input slots after the base (slot
     * {@code models + 1 + j}) for companion checkpoints; only backends declaring
     * {@link Primitive#COMPANIONS} hold them.
     */
    default ChunkKernels open(BufferAllocator host, String name, int maxCount, int models, boolean hasBase,
                              int companions) {
        if (companions > 0) {
            throw new IllegalArgumentException(description() + " holds no companion inputs");
        }
        return open(host, name, maxCount, models, hasBase);
    }
}
