package dev.amalgam.kernels.gpu;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.KernelBackend;
import dev.amalgam.kernels.Primitive;
import org.apache.arrow.memory.BufferAllocator;

/** The CUDA kernels on one device, under one memory budget shared by the tasks that use it. */
public final class GpuBackend implements KernelBackend {
    /** What {@code amalgam_kernels.cu} implements. */
    public static final java.util.Set<Primitive> PRIMITIVES = java.util.Collections.unmodifiableSet(java.util.EnumSet.of(
            Primitive.CODEC, Primitive.DELTA_ORDER, Primitive.KEPT_ABS_SUM, Primitive.TASK_VECTOR, Primitive.LINEAR,
            Primitive.DOT, Primitive.COUNT, Primitive.ROW_DOT, Primitive.COMBINE, Primitive.COMBINE_ROWS,
            Primitive.NEARSWAP, Primitive.RAM, Primitive.VARIANCE, Primitive.SELECT, Primitive.SCE, Primitive.IMPORTANCE,
            Primitive.FUSE, Primitive.COLUMN_DOT, Primitive.COMBINE_COLUMNS, Primitive.DEQUANTIZE, Primitive.SCALE,
            Primitive.LOW_RANK, Primitive.TIES_MODEL, Primitive.SUM, Primitive.VARM,
            Primitive.CONSENSUS, Primitive.WIDEN, Primitive.PCB, Primitive.COMPANIONS, Primitive.FISHER, Primitive.OTA,
            Primitive.GRAFT, Primitive.OUTPUT_SUM));

    private final Device device;
    private final GpuMemoryBudget budget;

    public GpuBackend(Device device, GpuMemoryBudget budget) {
        this.device = device;
        this.budget = budget;
    }

    public Device device() {
        return device;
    }

    public GpuMemoryBudget budget() {
        return budget;
    }

    @Override
    public java.util.Set<Primitive> primitives() {
        return PRIMITIVES;
    }

    @Override
    public String description() {
        return device.description();
    }

    @Override
    public ChunkKernels open(BufferAllocator host, String name, int maxCount, int models, boolean hasBase) {
        return new DeviceChunkKernels(device, budget, host, name, maxCount, models, hasBase, 0);
    }

    @Override
    public ChunkKernels open(BufferAllocator host, String name, int maxCount, int models, boolean hasBase,
                             int companions) {
        return new DeviceChunkKernels(device, budget, host, name, maxCount, models, hasBase, companions);
    }
}
