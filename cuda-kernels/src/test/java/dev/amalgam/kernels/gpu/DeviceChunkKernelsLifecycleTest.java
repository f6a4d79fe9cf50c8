package dev.amalgam.kernels.gpu;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.Dtype;
import org.apache.arrow.memory.ArrowBuf;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The GPU working set frees every device and host buffer on every path, and says why it cannot start. */
class DeviceChunkKernelsLifecycleTest {
    private BufferAllocator allocator;
    private EmulatedDevice device;

    @BeforeEach
    void open() {
        allocator = new RootAllocator();
        device = new EmulatedDevice();
    }

    @AfterEach
    void nothingLeft() {
        assertEquals(0, device.allocatedBytes(), "device memory leaked");
        assertEquals(0, allocator.getAllocatedMemory(), "host memory leaked");
        allocator.close();
    }

    @Test
    void closingAWorkingSetFreesDeviceHostAndBudget() {
        GpuMemoryBudget budget = new GpuMemoryBudget(1L << 30, "test");
        try (ChunkKernels k = new GpuBackend(device, budget).open(allocator, "task", 1000, 3, true)) {
            assertTrue(device.allocatedBytes() > 0);
            assertTrue(allocator.getAllocatedMemory() > 0);
            assertEquals(DeviceChunkKernels.deviceBytes(1000, 3, true), budget.reserved());
        }
        assertEquals(0, budget.reserved());
    }

    @Test
    void closingWithAChunkStillInFlightFreesEverything() {
        GpuMemoryBudget budget = new GpuMemoryBudget(1L << 30, "test");
        ChunkKernels k = new GpuBackend(device, budget).open(allocator, "task", 300, 1, false);
        k.beginChunk();
        ArrowBuf in = k.input(0);
        in.setZero(0, 300 * 4);
        k.decode(0, Dtype.F32, 300);
        k.mergeLinear(300, new float[]{1.0f}, false, new ChunkMetrics(1));
        k.encodeOut(Dtype.BF16, 300);
        k.close();
        assertEquals(0, budget.reserved());
    }

    @Test
    void aThirdChunkCannotStartBeforeTheFirstIsAwaited() {
        try (ChunkKernels k = new GpuBackend(device, new GpuMemoryBudget(1L << 30, "test"))
                .open(allocator, "task", 10, 1, false)) {
            for (int chunk = 0; chunk < 2; chunk++) {
                k.beginChunk();
                k.input(0).setZero(0, 40);
                k.decode(0, Dtype.F32, 10);
                k.mergeLinear(10, new float[]{1.0f}, false, new ChunkMetrics(1));
                k.encodeOut(Dtype.F32, 10);
            }
            IllegalStateException e = assertThrows(IllegalStateException.class, k::beginChunk);
            assertEquals("buffer set 0 is still in flight: await its chunk first", e.getMessage());
        }
    }

    @Test
    void aTaskOverTheGpuBudgetFailsNamingTheSettingAndAllocatesNothing() {
        GpuMemoryBudget budget = new GpuMemoryBudget(1L << 20, "--gpu-memory-limit 1m");
        DeviceMemoryException e = assertThrows(DeviceMemoryException.class,
                () -> new GpuBackend(device, budget).open(allocator, "merge-task-7", 1 << 20, 2, true));
        assertTrue(e.getMessage().startsWith("merge-task-7 needs 75.1 MiB of GPU memory for its chunk buffers, over the 1.0 MiB GPU budget (--gpu-memory-limit 1m);"), e.getMessage());
        assertEquals(0, budget.reserved());
    }

    @Test
    void aDeviceAllocationFailingHalfwayFreesWhatWasAllocated() {
        GpuMemoryBudget budget = new GpuMemoryBudget(1L << 30, "test");
        Device failing = new FailingDevice(device, 9);
        assertThrows(DeviceMemoryException.class, () -> new GpuBackend(failing, budget).open(allocator, "task", 100, 2, true));
        assertEquals(0, budget.reserved());
    }

    /** Delegates to the emulated device, failing its n-th allocation as a full GPU would. */
    private static final class FailingDevice implements Device {
        private final Device delegate;
        private int left;

        FailingDevice(Device delegate, int failAt) {
            this.delegate = delegate;
            this.left = failAt;
        }

        @Override
        public long allocate(long bytes) {
            if (--left == 0) {
                throw new DeviceMemoryException("out of memory (test)");
            }
            return delegate.allocate(bytes);
        }

        @Override
        public String description() {
            return delegate.description();
        }

        @Override
        public long totalMemory() {
            return delegate.totalMemory();
        }

        @Override
        public void free(long address) {
            delegate.free(address);
        }

        @Override
        public long allocatedBytes() {
            return delegate.allocatedBytes();
        }

        @Override
        public ArrowBuf allocateHost(BufferAllocator a, long bytes) {
            return delegate.allocateHost(a, bytes);
        }

        @Override
        public Stream newStream() {
            return delegate.newStream();
        }

        @Override
        public void upload(long dst, ArrowBuf src, long bytes, Stream stream) {
            delegate.upload(dst, src, bytes, stream);
        }

        @Override
        public void download(ArrowBuf dst, long src, long bytes, Stream stream) {
            delegate.download(dst, src, bytes, stream);
        }

        @Override
        public void zero(long dst, long bytes, Stream stream) {
            delegate.zero(dst, bytes, stream);
        }

        @Override
        public void launch(Kernel kernel, long threads, Stream stream, KernelArgs args) {
            delegate.launch(kernel, threads, stream, args);
        }

        @Override
        public void bindToThread() {
            delegate.bindToThread();
        }
    }
}
