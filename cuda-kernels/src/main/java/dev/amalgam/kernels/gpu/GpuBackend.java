package dev.amalgam.kernels.gpu;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.KernelBackend;
import org.apache.arrow.memory.BufferAllocator;

/** The CUDA kernels on one device, under one memory budget shared by the tasks that use it. */
public final class GpuBackend implements KernelBackend {
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
    public String description() {
        return device.description();
    }

    @Override
    public ChunkKernels open(BufferAllocator host, String name, int maxCount, int models, boolean hasBase) {
        return new DeviceChunkKernels(device, budget, host, name, maxCount, models, hasBase);
    }
}
