package dev.amalgam.merge;

import dev.amalgam.format.RangeReader;
import dev.amalgam.format.StoredTensor;
import dev.amalgam.kernels.Deltas;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.kernels.ElementCodec;
import dev.amalgam.plan.ChunkPlan;
import dev.amalgam.plan.TensorPlan;
import org.apache.arrow.memory.ArrowBuf;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.OutOfMemoryException;
import org.apache.hadoop.conf.Configuration;

/**
 * A task's chunk memory and input side: positioned reads of each input's byte range, decoded
 * into float32 off-heap buffers that are reused for every chunk of the task. Memory is bounded
 * by the largest chunk times the number of inputs, never by tensor or model size.
 */
public final class ChunkLoader implements AutoCloseable {
    private final BufferAllocator allocator;
    private final RangeReader reader;
    private final ArrowBuf raw;
    private final ArrowBuf base;
    private final ArrowBuf[] models;
    private final ArrowBuf out;
    private final ArrowBuf encoded;
    private final ArrowBuf delta;

    public ChunkLoader(BufferAllocator parent, Configuration hadoop, String taskName, int maxCount, int modelCount,
                       boolean hasBase) {
        this.allocator = parent.newChildAllocator(taskName, 0, parent.getLimit());
        this.reader = new RangeReader(hadoop);
        long floats = (long) maxCount * 4;
        ArrowBuf[] made = new ArrowBuf[modelCount];
        try {
            this.raw = allocator.buffer(floats);
            this.base = hasBase ? allocator.buffer(floats) : null;
            for (int i = 0; i < modelCount; i++) {
                made[i] = allocator.buffer(floats);
            }
            this.out = allocator.buffer(floats);
            this.encoded = allocator.buffer(floats);
            this.delta = hasBase ? allocator.buffer(floats) : null;
        } catch (OutOfMemoryException e) {
            for (ArrowBuf b : made) {
                if (b != null) {
                    b.close();
                }
            }
            closeAll();
            throw new IllegalStateException("a task needs " + (floats * (modelCount + 3 + (hasBase ? 2 : 0)))
                    + " bytes of chunk memory for chunks of " + maxCount + " elements and " + modelCount
                    + " models, over the executor limit of " + parent.getLimit() + " bytes (" + ExecutorMemory.LIMIT_KEY
                    + "); lower --chunk-elements or raise --executor-memory-limit", e);
        }
        this.models = made;
    }

    /** Reads and decodes the chunk for the base and for the models flagged in {@code needed} (null: all). */
    public ChunkBuffers load(TensorPlan tensor, ChunkPlan chunk, boolean[] needed) {
        if (tensor.base() != null) {
            readDecoded(tensor.base(), chunk, base);
        }
        for (int i = 0; i < models.length; i++) {
            if (needed == null || needed[i]) {
                readDecoded(tensor.models()[i], chunk, models[i]);
            }
        }
        return new ChunkBuffers(base, models, out);
    }

    private void readDecoded(StoredTensor input, ChunkPlan chunk, ArrowBuf dst) {
        Dtype dtype = input.dtype();
        long length = (long) chunk.count() * dtype.byteSize();
        reader.read(input.file(), input.offset() + chunk.start() * dtype.byteSize(), length, raw);
        ElementCodec.decode(raw, dtype, dst, chunk.count());
    }

    /**
     * Model {@code i}'s delta against the base in a separate buffer, leaving the model's values
     * for the merge; for statistics computed inside a merge task.
     */
    public ArrowBuf deltaCopy(int i, int count) {
        Deltas.compute(models[i], base, delta, count);
        return delta;
    }

    /** Turns model buffer {@code i} into the delta against the base, in place. */
    public void toDelta(int i, int count) {
        Deltas.compute(models[i], base, models[i], count);
    }

    /** Encodes the output buffer to the tensor's output dtype; returns the encoded bytes. */
    public ArrowBuf encodeOut(TensorPlan tensor, int count) {
        ElementCodec.encode(out, tensor.outDtype(), encoded, count);
        return encoded;
    }

    public long bytesRead() {
        return reader.bytesRead();
    }

    @Override
    public void close() {
        reader.close();
        for (ArrowBuf b : models) {
            if (b != null) {
                b.close();
            }
        }
        closeAll();
    }

    private void closeAll() {
        for (ArrowBuf b : new ArrowBuf[]{raw, base, out, encoded, delta}) {
            if (b != null) {
                b.close();
            }
        }
        allocator.close();
    }
}
