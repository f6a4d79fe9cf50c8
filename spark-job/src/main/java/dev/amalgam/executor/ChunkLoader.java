package dev.amalgam.executor;

import dev.amalgam.format.RangeReader;
import dev.amalgam.format.StoredTensor;
import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.kernels.KernelBackend;
import dev.amalgam.plan.ChunkPlan;
import dev.amalgam.plan.TensorPlan;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.OutOfMemoryException;
import org.apache.hadoop.conf.Configuration;

/**
 * A task's input side: positioned reads of each input's byte range straight into the kernel
 * backend's input buffers (page-locked memory on a GPU), decoded there. The working set is
 * opened once per task and reused for every chunk, so memory is bounded by the largest chunk
 * times the number of inputs, never by tensor or model size.
 */
public final class ChunkLoader implements AutoCloseable {
    private final RangeReader reader;
    private final ChunkKernels kernels;
    private final int modelCount;

    public ChunkLoader(KernelBackend backend, BufferAllocator parent, Configuration hadoop, String taskName,
                       int maxCount, int modelCount, boolean hasBase) {
        this.reader = new RangeReader(hadoop);
        this.modelCount = modelCount;
        try {
            this.kernels = backend.open(parent, taskName, maxCount, modelCount, hasBase);
        } catch (OutOfMemoryException e) {
            reader.close();
            throw new IllegalStateException("a task's chunk buffers for chunks of " + maxCount + " elements and "
                    + modelCount + " models" + (hasBase ? " plus the base" : "") + " do not fit the executor limit of "
                    + parent.getLimit() + " bytes (" + ExecutorMemory.LIMIT_KEY
                    + "); lower --chunk-elements or raise --executor-memory-limit (a method that merges whole "
                    + "tensors, such as nuslerp with nuslerp_row_wise, needs the limit to hold the largest tensor)", e);
        } catch (RuntimeException | Error e) {
            reader.close();
            throw e;
        }
    }

    /** The working set the chunks are decoded into; statistics and merges run on it. */
    public ChunkKernels kernels() {
        return kernels;
    }

    /** Starts a chunk and reads and decodes the base and the models flagged in {@code needed} (null: all). */
    public void load(TensorPlan tensor, ChunkPlan chunk, boolean[] needed) {
        kernels.beginChunk();
        if (tensor.base() != null) {
            readDecoded(tensor.base(), chunk, modelCount);
        }
        for (int i = 0; i < modelCount; i++) {
            if (needed == null || needed[i]) {
                readDecoded(tensor.models()[i], chunk, i);
            }
        }
    }

    private void readDecoded(StoredTensor input, ChunkPlan chunk, int slot) {
        Dtype dtype = input.dtype();
        long length = (long) chunk.count() * dtype.byteSize();
        reader.read(input.file(), input.offset() + chunk.start() * dtype.byteSize(), length, kernels.input(slot));
        kernels.decode(slot, dtype, chunk.count());
    }

    public long bytesRead() {
        return reader.bytesRead();
    }

    @Override
    public void close() {
        try {
            kernels.close();
        } finally {
            reader.close();
        }
    }
}
