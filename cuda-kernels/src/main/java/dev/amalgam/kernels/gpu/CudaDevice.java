package dev.amalgam.kernels.gpu;

import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.CUresult;
import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;
import jcuda.driver.JCudaDriver;
import org.apache.arrow.memory.ArrowBuf;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.ForeignAllocation;

import java.nio.charset.StandardCharsets;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A GPU through the JCuda driver API: the device's primary context (one per executor JVM,
 * shared by its task threads), the kernels' module loaded from the packaged PTX, device memory,
 * page-locked host memory handed to Arrow, and non-blocking streams.
 */
public final class CudaDevice implements Device {
    private static final Map<Integer, CudaDevice> OPEN = new HashMap<>();

    private final int ordinal;
    private final CUcontext context = new CUcontext();
    private final Map<Kernel, CUfunction> functions = new EnumMap<>(Kernel.class);
    private final TreeMap<Long, DevicePointer> allocations = new TreeMap<>();
    private final AtomicLong allocated = new AtomicLong();
    private final String description;
    private final long totalMemory;
    private final double peakBandwidth;

    /** The device with this ordinal, opened once per JVM on first use. */
    public static synchronized CudaDevice open(int ordinal) {
        CudaDriver.Availability driver = CudaDriver.probe();
        if (!driver.usable()) {
            throw new IllegalStateException(driver.reason());
        }
        if (ordinal < 0 || ordinal >= driver.devices()) {
            throw new IllegalStateException("GPU " + ordinal + " does not exist: the CUDA driver sees "
                    + driver.devices() + " device(s)");
        }
        return OPEN.computeIfAbsent(ordinal, o -> new CudaDevice(o, driver.driverVersion()));
    }

    private CudaDevice(int ordinal, String driverVersion) {
        this.ordinal = ordinal;
        CUdevice device = new CUdevice();
        JCudaDriver.cuDeviceGet(device, ordinal);
        JCudaDriver.cuDevicePrimaryCtxRetain(context, device);
        JCudaDriver.cuCtxSetCurrent(context);
        CUmodule module = new CUmodule();
        try {
            JCudaDriver.cuModuleLoadData(module, CudaDriver.ptx());
        } catch (CudaException e) {
            JCudaDriver.cuDevicePrimaryCtxRelease(device);
            throw new IllegalStateException("GPU " + ordinal + " cannot load Amalgam's kernels (" + e.getMessage()
                    + "); the PTX needs a driver for CUDA 13.0 or newer (docs/gpu.md)", e);
        }
        for (Kernel k : Kernel.values()) {
            CUfunction f = new CUfunction();
            JCudaDriver.cuModuleGetFunction(f, module, k.symbol());
            functions.put(k, f);
        }
        byte[] name = new byte[256];
        JCudaDriver.cuDeviceGetName(name, name.length, device);
        long[] total = new long[1];
        JCudaDriver.cuDeviceTotalMem(total, device);
        this.totalMemory = total[0];
        int[] clockKhz = new int[1];
        int[] busBits = new int[1];
        JCudaDriver.cuDeviceGetAttribute(clockKhz, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE, device);
        JCudaDriver.cuDeviceGetAttribute(busBits, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH, device);
        // Two transfers per clock (double data rate), bus width in bits.
        this.peakBandwidth = 2.0 * clockKhz[0] * 1000.0 * busBits[0] / 8.0;
        String deviceName = new String(name, StandardCharsets.US_ASCII).trim().replace("\0", "");
        this.description = String.format(Locale.ROOT, "cuda:%d %s, %.1f GiB, driver %s", ordinal, deviceName,
                totalMemory / 1073741824.0, driverVersion);
    }

    public int ordinal() {
        return ordinal;
    }

    /** The device's theoretical memory bandwidth in bytes per second, from its clock and bus width. */
    public double peakBandwidth() {
        return peakBandwidth;
    }

    @Override
    public String description() {
        return description;
    }

    @Override
    public long totalMemory() {
        return totalMemory;
    }

    @Override
    public void bindToThread() {
        JCudaDriver.cuCtxSetCurrent(context);
    }

    @Override
    public long allocate(long bytes) {
        DevicePointer p = new DevicePointer();
        try {
            JCudaDriver.cuMemAlloc(p, bytes);
        } catch (CudaException e) {
            if (e.getMessage() != null && e.getMessage().contains(CUresult.stringFor(CUresult.CUDA_ERROR_OUT_OF_MEMORY))) {
                throw new DeviceMemoryException("GPU " + ordinal + " is out of memory allocating " + bytes
                        + " bytes (" + allocated.get() + " bytes held by Amalgam on it); lower --chunk-elements or"
                        + " --gpu-memory-limit so that other users of the GPU fit");
            }
            throw e;
        }
        synchronized (allocations) {
            allocations.put(p.address(), p);
        }
        allocated.addAndGet(bytes);
        p.bytes = bytes;
        return p.address();
    }

    @Override
    public void free(long address) {
        DevicePointer p;
        synchronized (allocations) {
            p = allocations.remove(address);
        }
        if (p == null) {
            throw new IllegalArgumentException("0x" + Long.toHexString(address) + " is not a device allocation");
        }
        JCudaDriver.cuMemFree(p);
        allocated.addAndGet(-p.bytes);
    }

    @Override
    public long allocatedBytes() {
        return allocated.get();
    }

    @Override
    public ArrowBuf allocateHost(BufferAllocator allocator, long bytes) {
        HostPointer p = new HostPointer(0);
        JCudaDriver.cuMemAllocHost(p, bytes);
        try {
            return allocator.wrapForeignAllocation(new PinnedAllocation(bytes, p));
        } catch (RuntimeException e) {
            JCudaDriver.cuMemFreeHost(p);
            throw e;
        }
    }

    @Override
    public Stream newStream() {
        CUstream stream = new CUstream();
        JCudaDriver.cuStreamCreate(stream, CUstream_flags.CU_STREAM_NON_BLOCKING);
        return new CudaStream(stream);
    }

    @Override
    public void upload(long dst, ArrowBuf src, long bytes, Stream stream) {
        JCudaDriver.cuMemcpyHtoDAsync(pointer(dst), new HostPointer(src.memoryAddress()), bytes, cu(stream));
    }

    @Override
    public void download(ArrowBuf dst, long src, long bytes, Stream stream) {
        JCudaDriver.cuMemcpyDtoHAsync(new HostPointer(dst.memoryAddress()), pointer(src), bytes, cu(stream));
    }

    @Override
    public void zero(long dst, long bytes, Stream stream) {
        JCudaDriver.cuMemsetD8Async(pointer(dst), (byte) 0, bytes, cu(stream));
    }

    @Override
    public void launch(Kernel kernel, long threads, Stream stream, KernelArgs args) {
        kernel.check(args);
        int blocks = kernel.blocksFor(threads);
        if (blocks == 0) {
            return;
        }
        Pointer[] params = new Pointer[args.size()];
        for (int i = 0; i < params.length; i++) {
            long slot = args.slot(i);
            params[i] = switch (args.type(i)) {
                case KernelArgs.INT, KernelArgs.UINT -> Pointer.to(new int[]{(int) slot});
                case KernelArgs.FLOAT -> Pointer.to(new float[]{Float.intBitsToFloat((int) slot)});
                default -> Pointer.to(new long[]{slot});
            };
        }
        JCudaDriver.cuLaunchKernel(functions.get(kernel), blocks, 1, 1, Kernel.BLOCK, 1, 1, 0, cu(stream),
                Pointer.to(params), null);
    }

    /** The allocation holding {@code address}, offset to it. */
    private CUdeviceptr pointer(long address) {
        synchronized (allocations) {
            Map.Entry<Long, DevicePointer> e = allocations.floorEntry(address);
            if (e == null || address >= e.getKey() + e.getValue().bytes) {
                throw new IllegalArgumentException("0x" + Long.toHexString(address) + " is not in a device allocation");
            }
            return address == e.getKey() ? e.getValue() : e.getValue().withByteOffset(address - e.getKey());
        }
    }

    private static CUstream cu(Stream stream) {
        return ((CudaStream) stream).stream;
    }

    /** A device pointer whose raw address kernels can take as a parameter. */
    private static final class DevicePointer extends CUdeviceptr {
        long bytes;

        long address() {
            return getNativePointer();
        }
    }

    /** A raw host address (Arrow's memory, or what cuMemAllocHost returned). */
    private static final class HostPointer extends Pointer {
        HostPointer(long address) {
            super(address);
        }

        long address() {
            return getNativePointer();
        }
    }

    /** Page-locked host memory, owned by an Arrow buffer: closing the buffer frees it. */
    private static final class PinnedAllocation extends ForeignAllocation {
        private final HostPointer pointer;

        PinnedAllocation(long bytes, HostPointer pointer) {
            super(bytes, pointer.address());
            this.pointer = pointer;
        }

        @Override
        protected void release0() {
            JCudaDriver.cuMemFreeHost(pointer);
        }
    }

    private record CudaStream(CUstream stream) implements Stream {
        @Override
        public void synchronize() {
            JCudaDriver.cuStreamSynchronize(stream);
        }

        @Override
        public void close() {
            JCudaDriver.cuStreamDestroy(stream);
        }
    }
}
