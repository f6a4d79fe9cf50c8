package dev.amalgam.kernels.gpu;

import org.apache.arrow.memory.ArrowBuf;
import org.apache.arrow.memory.BufferAllocator;

/**
 * What {@link DeviceChunkKernels} needs of a GPU: memory, asynchronous copies and kernel launches
 * on streams. {@link CudaDevice} is the real one (JCuda driver API); the tests run the same
 * kernel sources on an emulated device, so the host code that drives the kernels is checked
 * without a GPU too. Addresses are raw device addresses (what a kernel parameter holds).
 */
public interface Device {

    /** "cuda:0 NVIDIA H100 80GB HBM3, 79.1 GiB, driver 13.0". */
    String description();

    /** Total device memory in bytes. */
    long totalMemory();

    /** Allocates device memory; throws {@link DeviceMemoryException} when the device has too little. */
    long allocate(long bytes);

    void free(long address);

    /** Bytes this device currently has allocated through {@link #allocate} (leak checks). */
    long allocatedBytes();

    /**
     * Host memory the device copies from and to asynchronously (page-locked on a GPU), accounted
     * by {@code allocator} like any other chunk buffer.
     */
    ArrowBuf allocateHost(BufferAllocator allocator, long bytes);

    Stream newStream();

    void upload(long dst, ArrowBuf src, long bytes, Stream stream);

    void download(ArrowBuf dst, long src, long bytes, Stream stream);

    /** Sets {@code bytes} bytes at {@code dst} to zero. */
    void zero(long dst, long bytes, Stream stream);

    /** Launches {@code kernel} with at least {@code threads} threads in one dimension. */
    void launch(Kernel kernel, long threads, Stream stream, KernelArgs args);

    /** Makes this device current on the calling thread (task threads are pooled and reused). */
    void bindToThread();

    /** An in-order queue of copies and launches. */
    interface Stream extends AutoCloseable {
        /** Waits until everything queued so far has finished. */
        void synchronize();

        @Override
        void close();
    }
}
