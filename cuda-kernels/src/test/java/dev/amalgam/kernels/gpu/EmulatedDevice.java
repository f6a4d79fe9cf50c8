package dev.amalgam.kernels.gpu;

import org.apache.arrow.memory.ArrowBuf;
import org.apache.arrow.memory.BufferAllocator;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;

/**
 * A {@link Device} that runs the CUDA sources on the CPU (src/test/cpp/emulated_device.cpp,
 * built by scripts/build-emulation.sh): device memory is host memory, a launch runs every
 * thread in order. Everything {@link DeviceChunkKernels} does is exercised exactly as on a GPU
 * except concurrency. Copies are checked against the allocations they touch.
 */
public final class EmulatedDevice implements Device {
    /** The system property naming the library; Maven's surefire configuration sets it. */
    public static final String LIBRARY_PROPERTY = "amalgam.emulation.library";

    private static boolean loaded;

    /** The order in which a launch runs its threads; a GPU promises none. */
    public enum ThreadOrder {
        FORWARD, REVERSED, SHUFFLED
    }

    private final ThreadOrder order;
    private final TreeMap<Long, Long> allocations = new TreeMap<>();
    private long allocated;
    private long launches;

    public EmulatedDevice() {
        this(ThreadOrder.FORWARD);
    }

    public EmulatedDevice(ThreadOrder order) {
        this.order = order;
        load();
    }

    private static synchronized void load() {
        if (loaded) {
            return;
        }
        String library = System.getProperty(LIBRARY_PROPERTY);
        if (library == null || !Files.isRegularFile(Path.of(library))) {
            throw new IllegalStateException("the emulation library is missing (" + LIBRARY_PROPERTY + "=" + library
                    + "); build it with `mvn -pl cuda-kernels test-compile` (needs g++)");
        }
        System.load(Path.of(library).toAbsolutePath().toString());
        loaded = true;
    }

    static native long allocate0(long bytes);

    static native void free0(long address);

    static native void copy0(long dst, long src, long bytes);

    static native void zero0(long dst, long bytes);

    static native void launch0(String symbol, String signature, int blocks, int block, long[] args, int order);

    @Override
    public String description() {
        return "emulated (CUDA sources on the CPU, threads " + order.name().toLowerCase(java.util.Locale.ROOT) + ")";
    }

    @Override
    public long totalMemory() {
        return 1L << 30;
    }

    @Override
    public synchronized long allocate(long bytes) {
        long address = allocate0(bytes);
        if (address == 0) {
            throw new DeviceMemoryException("emulated device: malloc of " + bytes + " bytes failed");
        }
        allocations.put(address, bytes);
        allocated += bytes;
        return address;
    }

    @Override
    public synchronized void free(long address) {
        Long bytes = allocations.remove(address);
        if (bytes == null) {
            throw new IllegalArgumentException("0x" + Long.toHexString(address) + " is not a device allocation");
        }
        allocated -= bytes;
        free0(address);
    }

    @Override
    public synchronized long allocatedBytes() {
        return allocated;
    }

    /** How many kernels were launched, so tests can tell the device path really ran. */
    public synchronized long launches() {
        return launches;
    }

    @Override
    public ArrowBuf allocateHost(BufferAllocator allocator, long bytes) {
        return allocator.buffer(bytes);
    }

    @Override
    public Stream newStream() {
        return new Stream() {
            @Override
            public void synchronize() {
            }

            @Override
            public void close() {
            }
        };
    }

    @Override
    public void upload(long dst, ArrowBuf src, long bytes, Stream stream) {
        checkRange(dst, bytes);
        if (bytes > src.capacity()) {
            throw new IllegalArgumentException("upload of " + bytes + " bytes from a " + src.capacity() + "-byte buffer");
        }
        copy0(dst, src.memoryAddress(), bytes);
    }

    @Override
    public void download(ArrowBuf dst, long src, long bytes, Stream stream) {
        checkRange(src, bytes);
        if (bytes > dst.capacity()) {
            throw new IllegalArgumentException("download of " + bytes + " bytes into a " + dst.capacity() + "-byte buffer");
        }
        copy0(dst.memoryAddress(), src, bytes);
    }

    @Override
    public void zero(long dst, long bytes, Stream stream) {
        checkRange(dst, bytes);
        zero0(dst, bytes);
    }

    @Override
    public void launch(Kernel kernel, long threads, Stream stream, KernelArgs args) {
        kernel.check(args);
        int blocks = kernel.blocksFor(threads);
        if (blocks == 0) {
            return;
        }
        for (int i = 0; i < args.size(); i++) {
            if (args.type(i) == KernelArgs.POINTER) {
                checkRange(args.slot(i), 1);
            }
        }
        synchronized (this) {
            launches++;
        }
        launch0(kernel.symbol(), args.signature(), blocks, Kernel.BLOCK, args.slots(), order.ordinal());
    }

    @Override
    public void bindToThread() {
    }

    private synchronized void checkRange(long address, long bytes) {
        Map.Entry<Long, Long> e = allocations.floorEntry(address);
        if (e == null || address + bytes > e.getKey() + e.getValue()) {
            throw new IllegalArgumentException("[0x" + Long.toHexString(address) + ", +" + bytes
                    + ") is outside every device allocation");
        }
    }
}
