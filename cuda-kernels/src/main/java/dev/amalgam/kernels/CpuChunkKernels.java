package dev.amalgam.kernels;

import org.apache.arrow.memory.ArrowBuf;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.OutOfMemoryException;

/**
 * The CPU working set: float32 chunk buffers in Arrow off-heap memory, reused for every chunk
 * of a task. One chunk at a time, so one stored-bytes buffer serves every input slot.
 */
final class CpuChunkKernels implements ChunkKernels {
    private final BufferAllocator allocator;
    private final int models;
    private final ArrowBuf raw;
    private final ArrowBuf[] values;
    private final ArrowBuf out;
    private final ArrowBuf encoded;
    private final ArrowBuf delta;
    private final KernelScratch scratch = new KernelScratch();
    /** The model whose delta the delta buffer holds (-1: none), so statistics rounds on one chunk share it. */
    private int deltaModel = -1;
    private int deltaCount;

    CpuChunkKernels(BufferAllocator parent, String name, int maxCount, int models, boolean hasBase) {
        this.allocator = parent.newChildAllocator(name, 0, parent.getLimit());
        this.models = models;
        long floats = (long) maxCount * 4;
        this.values = new ArrowBuf[models + 1];
        try {
            for (int i = 0; i < models; i++) {
                values[i] = allocator.buffer(floats);
            }
            if (hasBase) {
                values[models] = allocator.buffer(floats);
            }
            raw = allocator.buffer(floats);
            out = allocator.buffer(floats);
            encoded = allocator.buffer(floats);
            delta = hasBase ? allocator.buffer(floats) : null;
        } catch (OutOfMemoryException e) {
            closeQuietly();
            allocator.close();
            throw e;
        }
    }

    @Override
    public String backend() {
        return "cpu";
    }

    @Override
    public int inFlightLimit() {
        return 1;
    }

    @Override
    public void beginChunk() {
        deltaModel = -1;
    }

    @Override
    public ArrowBuf input(int slot) {
        return raw;
    }

    @Override
    public void decode(int slot, Dtype dtype, int count) {
        deltaModel = -1;
        ElementCodec.decode(raw, dtype, values[slot], count);
    }

    private ArrowBuf deltaOf(int model, int count) {
        if (deltaModel != model || deltaCount != count) {
            Deltas.compute(values[model], values[models], delta, count);
            deltaModel = model;
            deltaCount = count;
        }
        return delta;
    }

    @Override
    public void histogramHigh(int model, int count, long[] histogram) {
        MagnitudeHistogram.addHigh(deltaOf(model, count), count, histogram);
    }

    @Override
    public void histogramLow(int model, int count, int highBucket, long[] histogram) {
        MagnitudeHistogram.addLow(deltaOf(model, count), count, highBucket, histogram);
    }

    @Override
    public long countEqual(int model, int count, int valueBits) {
        return MagnitudeHistogram.countEqual(deltaOf(model, count), count, valueBits);
    }

    @Override
    public void magnitudeSums(int model, int count, long chunkStart, KeepRule rule, ExactSum all, ExactSum kept) {
        ArrowBuf d = deltaOf(model, count);
        all.addMagnitudes(d, count);
        deltaModel = -1;
        rule.apply(d, count, chunkStart, scratch);
        kept.addMagnitudes(d, count);
    }

    @Override
    public void mergeTaskVector(int count, long chunkStart, TaskVectorKernel.ModelTerm[] terms,
                                TaskVectorKernel.Consensus consensus, boolean normalize, float lambda,
                                ChunkMetrics metrics) {
        deltaModel = -1;
        ArrowBuf[] deltas = java.util.Arrays.copyOf(values, models);
        TaskVectorKernel.merge(values[models], deltas, count, chunkStart, terms, consensus, normalize, lambda,
                out, metrics, scratch);
    }

    @Override
    public void mergeLinear(int count, float[] weights, boolean normalize, ChunkMetrics metrics) {
        LinearKernel.merge(java.util.Arrays.copyOf(values, models), weights, count, normalize, out);
        metrics.elements += count;
    }

    @Override
    public java.util.Set<Primitive> primitives() {
        return CpuBackend.INSTANCE.primitives();
    }

    private ComposedKernels.Terms terms(Operand... operands) {
        ArrowBuf[] buffers = new ArrowBuf[operands.length];
        boolean[] delta = new boolean[operands.length];
        for (int k = 0; k < operands.length; k++) {
            if (operands[k] instanceof Operand.Delta d) {
                buffers[k] = values[d.model()];
                delta[k] = true;
            } else if (operands[k] instanceof Operand.Value v) {
                buffers[k] = values[v.slot()];
            } else {
                throw new IllegalArgumentException(operands[k] + " is not an elementwise operand");
            }
            if (buffers[k] == null || (delta[k] && values[models] == null)) {
                throw new IllegalArgumentException(operands[k] + " needs an input this working set does not hold");
            }
        }
        return new ComposedKernels.Terms(buffers, delta, values[models]);
    }

    @Override
    public void dot(Operand a, Operand b, int count, ExactDot into) {
        ComposedKernels.dot(terms(a, b), 0, 1, count, into);
    }

    @Override
    public long countNonzero(Operand a, int count) {
        if (a instanceof Operand.Contribution c) {
            long[] shared = new long[models];
            long[] unique = new long[models];
            ComposedKernels.ramCounts(values[models], java.util.Arrays.copyOf(values, models), c.epsilon(), count,
                    shared, unique);
            return c.shared() ? shared[c.model()] : unique[c.model()];
        }
        return ComposedKernels.countNonzero(terms(a), 0, count);
    }

    @Override
    public void rowDots(Operand a, Operand b, int count, int cols, float[] into) {
        ComposedKernels.rowDots(terms(a, b), 0, 1, count, cols, into);
    }

    @Override
    public void combine(Operand[] operands, float[] coefficients, boolean plusBase, int count, ChunkMetrics metrics) {
        deltaModel = -1;
        ComposedKernels.combine(terms(operands), coefficients, plusBase, count, out);
        observe(count, metrics);
    }

    @Override
    public void combineRows(Operand[] operands, float[][] coefficients, int cols, boolean plusBase, int count,
                            ChunkMetrics metrics) {
        deltaModel = -1;
        ComposedKernels.combineRows(terms(operands), coefficients, cols, plusBase, count, out);
        observe(count, metrics);
    }

    @Override
    public void nearswap(float t, int count, ChunkMetrics metrics) {
        deltaModel = -1;
        ComposedKernels.nearswap(values[0], values[models], t, count, out);
        observe(count, metrics);
    }

    @Override
    public void ram(float epsilon, float[] uniqueScales, int count, ChunkMetrics metrics) {
        deltaModel = -1;
        ComposedKernels.ram(values[models], java.util.Arrays.copyOf(values, models), epsilon, uniqueScales, count, out);
        observe(count, metrics);
    }

    /** Report figures for methods that keep every entry: the elements and each model's delta norm. */
    private void observe(int count, ChunkMetrics metrics) {
        metrics.elements += count;
        for (int i = 0; i < models; i++) {
            if (values[i] != null) {
                metrics.kept[i] += count;
            }
        }
        if (values[models] != null) {
            ComposedKernels.deltaSquares(values[models], java.util.Arrays.copyOf(values, models), count,
                    metrics.deltaSquares);
        }
    }

    @Override
    public PendingChunk encodeOut(Dtype dtype, int count) {
        ElementCodec.encode(out, dtype, encoded, count);
        return () -> encoded;
    }

    @Override
    public void close() {
        closeQuietly();
        allocator.close();
    }

    private void closeQuietly() {
        for (ArrowBuf b : values) {
            if (b != null) {
                b.close();
            }
        }
        for (ArrowBuf b : new ArrowBuf[]{raw, out, encoded, delta}) {
            if (b != null) {
                b.close();
            }
        }
    }
}
