package dev.amalgam.executor;

import dev.amalgam.format.FloatBytes;
import dev.amalgam.format.LowRank;
import dev.amalgam.format.Quantization;
import dev.amalgam.format.RangeReader;
import dev.amalgam.format.StoredTensor;
import dev.amalgam.kernels.BlockScales;
import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.kernels.LowRankFactors;
import dev.amalgam.kernels.KernelBackend;
import dev.amalgam.kernels.NonFinite;
import dev.amalgam.plan.ChunkPlan;
import dev.amalgam.plan.MergePlan;
import dev.amalgam.plan.TensorPlan;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.OutOfMemoryException;
import org.apache.hadoop.conf.Configuration;

/**
 * A task's input side: positioned reads of each input's byte range straight into the kernel
 * backend's input buffers (page-locked memory on a GPU), decoded there. The working set is
 * opened once per task and reused for every chunk, so memory is bounded by the largest chunk
 * times the number of inputs, never by tensor or model size. The working set goes back to
 * {@link WorkingSetPool} for the next task.
 */
public final class ChunkLoader implements AutoCloseable {
    private final RangeReader reader;
    private final ChunkKernels kernels;
    private final int modelCount;
    /** NaN and infinite values of the chunk being loaded, per slot (the models, then the base). */
    private final long[] nonFinite;

    public ChunkLoader(KernelBackend backend, BufferAllocator parent, Configuration hadoop, String taskName,
                       int maxCount, int modelCount, boolean hasBase) {
        this(backend, parent, hadoop, taskName, maxCount, modelCount, hasBase, 0);
    }

    /** @param companions input slots after the base for companion checkpoints ({@link MergePlan#companionSlots()}) */
    public ChunkLoader(KernelBackend backend, BufferAllocator parent, Configuration hadoop, String taskName,
                       int maxCount, int modelCount, boolean hasBase, int companions) {
        this.reader = new RangeReader(hadoop);
        this.modelCount = modelCount;
        this.nonFinite = new long[modelCount + 1 + companions];
        try {
            this.kernels = WorkingSetPool.acquire(backend, parent, taskName, maxCount, modelCount, hasBase, companions);
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

    /**
     * Starts a chunk and reads and decodes the base, the models flagged in {@code needed} (null:
     * all) and the companion inputs flagged there (slot {@code models + 1 + j}; null: all).
     */
    public void load(TensorPlan tensor, ChunkPlan chunk, boolean[] needed) {
        kernels.beginChunk();
        java.util.Arrays.fill(nonFinite, 0);
        if (tensor.base() != null) {
            readDecoded(tensor.base(), chunk, modelCount);
        }
        // A copied tensor reads one slot whatever the plan's model count.
        for (int i = 0; i < tensor.models().length; i++) {
            if (needed == null || needed[i]) {
                readDecoded(tensor.models()[i], chunk, i);
            }
        }
        for (int j = 0; j < tensor.companions().length; j++) {
            int slot = modelCount + 1 + j;
            if (needed == null || (slot < needed.length && needed[slot])) {
                readDecoded(tensor.companions()[j], chunk, slot);
            }
        }
    }

    private void readDecoded(StoredTensor input, ChunkPlan chunk, int slot) {
        if (input.quantization() != null) {
            readDequantized(input, chunk, slot);
            return;
        }
        Dtype dtype = input.dtype();
        long length = (long) chunk.count() * dtype.byteSize();
        if (input.rowMap() != null) {
            input.rowMap().write(chunk.start(), chunk.count(), dtype, reader::readBytes,
                    (at, src, from, n) -> kernels.input(slot).setBytes(at, src, from, n));
        } else if (input.isGenerated()) {
            kernels.input(slot).setBytes(0, input.values(), Math.toIntExact(chunk.start() * dtype.byteSize()),
                    length);
        } else {
            reader.read(input.file(), input.offset() + chunk.start() * dtype.byteSize(), length, kernels.input(slot));
        }
        nonFinite[slot] = NonFinite.count(kernels.input(slot), dtype, chunk.count());
        kernels.decode(slot, dtype, chunk.count());
        if (input.lowRank() != null && chunk.count() > 0) {
            applyLowRank(input, chunk, slot);
        }
    }

    /**
     * A LoRA-adapted weight: the chunk's rows of {@code B} (all of it when the weight is stored
     * transposed) and all of {@code A}, kept for the task's next chunk of the same weight.
     */
    private void applyLowRank(StoredTensor w, ChunkPlan chunk, int slot) {
        LowRank lr = w.lowRank();
        int cols = (int) w.shape()[1];
        int rank = lr.rank();
        float[] a = whole(lr.a());
        float[] b;
        long bFirst = 0;
        if (lr.fanInFanOut()) {
            b = whole(lr.b());
        } else {
            long first = chunk.start() / cols;
            long last = (chunk.start() + chunk.count() - 1) / cols;
            int bytes = lr.b().dtype().byteSize();
            b = FloatBytes.decode(reader.readBytes(lr.b().file(), lr.b().offset() + first * rank * bytes,
                    (int) ((last - first + 1) * rank * bytes)), lr.b().dtype());
            bFirst = first;
        }
        kernels.addLowRank(slot, new LowRankFactors(a, rank, (int) lr.a().shape()[1], b, bFirst, lr.scale(),
                lr.fanInFanOut(), cols, w.dtype()), chunk.count(), chunk.start());
    }

    private String factorKey;
    private float[] factor;
    private String otherFactorKey;
    private float[] otherFactor;

    /** A factor whole: the last two read are kept (A, and B when transposed). */
    private float[] whole(StoredTensor t) {
        String key = t.file() + "@" + t.offset();
        if (key.equals(factorKey)) {
            return factor;
        }
        if (key.equals(otherFactorKey)) {
            return otherFactor;
        }
        float[] values = FloatBytes.decode(reader.readBytes(t.file(), t.offset(), Math.toIntExact(t.dataBytes())),
                t.dtype());
        otherFactorKey = factorKey;
        otherFactor = factor;
        factorKey = key;
        factor = values;
        return values;
    }

    /**
     * A block-quantized chunk: its stored bytes, then the scales of the blocks its rows touch
     * (a few hundred bytes for an FP8 chunk, one byte per 32 values for MXFP4), decoded together.
     */
    private void readDequantized(StoredTensor input, ChunkPlan chunk, int slot) {
        int count = chunk.count();
        if (input.quantization() instanceof Quantization.Mxfp4 m) {
            // The planner starts MXFP4 chunks on 32-value blocks.
            long firstBlock = chunk.start() / BlockScales.Mxfp4.BLOCK;
            int blocks = (count + BlockScales.Mxfp4.BLOCK - 1) / BlockScales.Mxfp4.BLOCK;
            reader.read(input.file(), input.offset() + chunk.start() / 2, (count + 1) / 2, kernels.input(slot));
            byte[] exponents = reader.readBytes(m.scales().file(), m.scales().offset() + firstBlock, blocks);
            BlockScales.Mxfp4 scales = new BlockScales.Mxfp4(exponents);
            nonFinite[slot] = NonFinite.countScaled(scales, kernels.input(slot), input.dtype(), count);
            kernels.decodeScaled(slot, input.dtype(), count, scales);
            return;
        }
        Quantization.BlockScaled q = (Quantization.BlockScaled) input.quantization();
        long[] shape = input.shape();
        int cols = shape.length == 0 ? 1 : (int) shape[shape.length - 1];
        long allRows = input.elements() / Math.max(1, cols);
        long matrixRows = q.blockRows() >= allRows ? allRows : shape.length < 2 ? 1 : shape[shape.length - 2];
        int gridCols = (cols + q.blockCols() - 1) / q.blockCols();
        BlockScales.Fp8 grid = new BlockScales.Fp8(null, 0, gridCols, q.blockRows(), q.blockCols(), matrixRows, cols,
                chunk.start());
        long firstGridRow = grid.gridRow(chunk.start() / cols);
        long lastGridRow = grid.gridRow((chunk.start() + count - 1) / cols);
        StoredTensor scales = q.scales();
        int n = (int) ((lastGridRow - firstGridRow + 1) * gridCols);
        int width = scales.dtype().byteSize();
        byte[] raw = reader.readBytes(scales.file(), scales.offset() + firstGridRow * gridCols * width, n * width);
        float[] values = FloatBytes.decode(raw, scales.dtype());
        reader.read(input.file(), input.offset() + chunk.start(), count, kernels.input(slot));
        BlockScales.Fp8 blockScales = new BlockScales.Fp8(values, firstGridRow, gridCols, q.blockRows(), q.blockCols(),
                matrixRows, cols, chunk.start());
        nonFinite[slot] = NonFinite.countScaled(blockScales, kernels.input(slot), input.dtype(), count);
        kernels.decodeScaled(slot, input.dtype(), count, blockScales);
    }

    /** NaN and infinite values the last loaded chunk's inputs held, per model, the base last. */
    public long[] nonFinite() {
        return nonFinite.clone();
    }

    public long bytesRead() {
        return reader.bytesRead();
    }

    @Override
    public void close() {
        try {
            WorkingSetPool.release(kernels);
        } finally {
            reader.close();
        }
    }
}
