package dev.amalgam.kernels;

import org.apache.arrow.memory.BufferAllocator;

/** The Java kernels, on the executor's cores; always available. */
public final class CpuBackend implements KernelBackend {
    /** Arrow bytes a task's working set takes on this backend (the executor limit must hold them). */
    public static long hostBytes(int maxCount, int models, boolean hasBase) {
        return CpuChunkKernels.hostBytes(maxCount, models, hasBase);
    }

    public static final CpuBackend INSTANCE = new CpuBackend();

    private CpuBackend() {
    }

    @Override
    public java.util.Set<Primitive> primitives() {
        return java.util.EnumSet.allOf(Primitive.class);
    }

    @Override
    public String description() {
        return "cpu (Java kernels" + (Simd.ENABLED ? ", Vector API" : ", scalar") + ")";
    }

    @Override
    public ChunkKernels open(BufferAllocator host, String name, int maxCount, int models, boolean hasBase) {
        return new CpuChunkKernels(host, name, maxCount, models, hasBase, 0);
    }

    @Override
    public ChunkKernels open(BufferAllocator host, String name, int maxCount, int models, boolean hasBase,
                             int companions) {
        return new CpuChunkKernels(host, name, maxCount, models, hasBase, companions);
    }
}
