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
    /** The signed PCB balance the raw buffer holds for this chunk (as its positive part's key), or null. */
    private Operand.Balance balance;
    private int balanceCount;
    private final ArrowBuf[] values;
    private final ArrowBuf out;
    private final ArrowBuf encoded;
    private final ArrowBuf delta;
    private final KernelScratch scratch = new KernelScratch();
    /**
     * The operand the delta buffer holds (null: none), so the statistics of one chunk share it;
     * a model's delta, a derived quantity, or a selected delta.
     */
    private Operand held;
    private int heldCount;
    /** Whether {@link #out} holds the chunk's selection ({@link #select}). */
    private boolean selection;

    /**
     * Host (Arrow) bytes one working set takes: a float32 buffer per input, three for raw bytes,
     * output and encoding, and one for the delta when there is a base; each rounded as Arrow does.
     */
    public static long hostBytes(int maxCount, int models, boolean hasBase) {
        long buffer = org.apache.arrow.memory.rounding.DefaultRoundingPolicy.DEFAULT_ROUNDING_POLICY
                .getRoundedSize((long) maxCount * 4);
        return buffer * (models + 3 + (hasBase ? 2 : 0));
    }

    CpuChunkKernels(BufferAllocator parent, String name, int maxCount, int models, boolean hasBase, int companions) {
        this.allocator = parent.newChildAllocator(name, 0, parent.getLimit());
        this.models = models;
        long floats = (long) maxCount * 4;
        // Models, the base, then companion inputs (Fisher diagonals, second moments).
        this.values = new ArrowBuf[models + 1 + companions];
        try {
            for (int i = 0; i < models; i++) {
                values[i] = allocator.buffer(floats);
            }
            for (int j = 0; j < companions; j++) {
                values[models + 1 + j] = allocator.buffer(floats);
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
        held = null;
        selection = false;
        balance = null;
    }

    @Override
    public ArrowBuf input(int slot) {
        balance = null;
        return raw;
    }

    @Override
    public void decode(int slot, Dtype dtype, int count) {
        held = null;
        balance = null;
        ElementCodec.decode(raw, dtype, values[slot], count);
    }

    @Override
    public void decodeScaled(int slot, Dtype dtype, int count, BlockScales scales) {
        held = null;
        balance = null;
        BlockScales.decode(scales, raw, dtype, values[slot], count);
    }

    private ArrowBuf deltaOf(int model, int count) {
        return held(new Operand.Delta(model), count);
    }

    /** The delta buffer holding {@code o} for the chunk, computed unless it already does. */
    private ArrowBuf held(Operand o, int count) {
        if (delta == null) {
            throw new IllegalArgumentException(o + " needs a base, and this working set has none");
        }
        if (o.equals(held) && heldCount == count) {
            return delta;
        }
        ArrowBuf base = values[models];
        if (o instanceof Operand.Delta d) {
            Deltas.compute(values[d.model()], base, delta, count);
        } else if (o instanceof Operand.Variance) {
            ComposedKernels.variance(base, java.util.Arrays.copyOf(values, models), count, delta);
        } else if (o instanceof Operand.Selected sel) {
            if (!selection) {
                throw new IllegalStateException(o + " before select() in this chunk");
            }
            ComposedKernels.selectedDelta(values[sel.model()], base, out, count, delta);
        } else if (o instanceof Operand.Importance imp) {
            ComposedKernels.importance(values[0], base, imp.cols(), count, delta);
        } else if (o instanceof Operand.Balance bal) {
            // Both parts of a model's balance come from one computation of it, kept in the raw
            // buffer (free once the chunk is decoded): its exp and tanh are the costly part.
            Operand.Balance signed = new Operand.Balance(bal.model(), bal.lo(), bal.hi(), true);
            if (!signed.equals(balance) || balanceCount != count) {
                ComposedKernels.signedBalance(base, java.util.Arrays.copyOf(values, models), bal.model(), bal.lo(),
                        bal.hi(), count, raw);
                balance = signed;
                balanceCount = count;
            }
            ComposedKernels.balancePart(raw, bal.positive(), count, delta);
        } else if (o instanceof Operand.Salience sal) {
            ComposedKernels.salience(values[sal.model()], base, values[sal.slot()], count, delta);
        } else {
            throw new IllegalArgumentException(o + " is not held in the delta buffer");
        }
        held = o;
        heldCount = count;
        return delta;
    }

    @Override
    public void histogramHigh(Operand a, int count, long[] histogram) {
        MagnitudeHistogram.addHigh(held(a, count), count, histogram);
    }

    @Override
    public void histogramLow(Operand a, int count, int highBucket, long[] histogram) {
        MagnitudeHistogram.addLow(held(a, count), count, highBucket, histogram);
    }

    @Override
    public void histogramBand(Operand a, int count, int[] buckets, int[] slotOf, int[] band) {
        MagnitudeHistogram.addBand(held(a, count), count, slotOf, band);
    }

    @Override
    public long countEqual(Operand a, int count, int valueBits) {
        return MagnitudeHistogram.countEqual(held(a, count), count, valueBits);
    }

    @Override
    public void magnitudeSums(int model, int count, long chunkStart, KeepRule rule, ExactSum all, ExactSum kept) {
        ArrowBuf d = deltaOf(model, count);
        all.addMagnitudes(d, count);
        held = null;
        rule.apply(d, count, chunkStart, scratch);
        kept.addMagnitudes(d, count);
    }

    @Override
    public void mergeTaskVector(int count, long chunkStart, TaskVectorKernel.ModelTerm[] terms,
                                TaskVectorKernel.Consensus consensus, boolean normalize, float lambda,
                                ChunkMetrics metrics) {
        held = null;
        selection = false;
        ArrowBuf[] deltas = java.util.Arrays.copyOf(values, models);
        TaskVectorKernel.merge(values[models], deltas, count, chunkStart, terms, consensus, normalize, lambda,
                out, metrics, scratch);
    }

    @Override
    public void mergeLinear(int count, float[] weights, boolean normalize, ChunkMetrics metrics) {
        selection = false;
        LinearKernel.merge(java.util.Arrays.copyOf(values, models), weights, count, normalize, out);
        metrics.elements += count;
    }

    @Override
    public java.util.Set<Primitive> primitives() {
        return CpuBackend.INSTANCE.primitives();
    }

    /**
     * Operands as buffers: inputs as they are, deltas computed inline, and at most one derived
     * operand (a variance, a selected delta, an importance) held in the delta buffer.
     */
    private ComposedKernels.Terms terms(int count, Operand... operands) {
        ArrowBuf[] buffers = new ArrowBuf[operands.length];
        boolean[] delta = new boolean[operands.length];
        Operand derived = null;
        for (int k = 0; k < operands.length; k++) {
            if (operands[k] instanceof Operand.Delta d) {
                buffers[k] = values[d.model()];
                delta[k] = true;
            } else if (operands[k] instanceof Operand.Value v) {
                buffers[k] = values[v.slot()];
            } else if (operands[k] instanceof Operand.Variance || operands[k] instanceof Operand.Selected
                    || operands[k] instanceof Operand.Importance || operands[k] instanceof Operand.Salience
                    || operands[k] instanceof Operand.Balance) {
                if (derived != null && !derived.equals(operands[k])) {
                    throw new IllegalArgumentException("two derived operands in one primitive: " + derived + ", "
                            + operands[k]);
                }
                derived = operands[k];
                buffers[k] = held(operands[k], count);
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
        ComposedKernels.dot(terms(count, a, b), 0, 1, count, into);
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
        return ComposedKernels.countNonzero(terms(count, a), 0, count);
    }

    @Override
    public void rowDots(Operand a, Operand b, int count, int cols, float[] into) {
        ComposedKernels.rowDots(terms(count, a, b), 0, 1, count, cols, into);
    }

    @Override
    public void combine(Operand[] operands, float[] coefficients, boolean plusBase, int count, ChunkMetrics metrics) {
        ComposedKernels.Terms terms = terms(count, operands);
        held = null;
        selection = false;
        ComposedKernels.combine(terms, coefficients, plusBase, count, out);
        observe(count, metrics);
    }

    @Override
    public void combineRows(Operand[] operands, float[][] coefficients, int cols, boolean plusBase, int count,
                            ChunkMetrics metrics) {
        combineVectors(operands, coefficients, cols, false, plusBase, count, metrics);
    }

    @Override
    public void columnDots(Operand a, Operand b, int count, int columns, float[] into) {
        ComposedKernels.columnDots(terms(count, a, b), 0, 1, count, columns, into);
    }

    @Override
    public void combineColumns(Operand[] operands, float[][] coefficients, int columns, boolean plusBase, int count,
                               ChunkMetrics metrics) {
        combineVectors(operands, coefficients, columns, true, plusBase, count, metrics);
    }

    private void combineVectors(Operand[] operands, float[][] coefficients, int cols, boolean perColumn,
                                boolean plusBase, int count, ChunkMetrics metrics) {
        ComposedKernels.Terms terms = terms(count, operands);
        held = null;
        selection = false;
        ComposedKernels.combineVectors(terms, coefficients, cols, perColumn, plusBase, count, out);
        observe(count, metrics);
    }

    @Override
    public void addLowRank(int slot, LowRankFactors factors, int count, long chunkStart) {
        held = null;
        balance = null;
        LowRankKernel.apply(values[slot], factors, count, chunkStart);
    }

    @Override
    public void scale(Float factor, int count, ChunkMetrics metrics) {
        held = null;
        selection = false;
        ComposedKernels.scale(values[0], factor, count, out);
        metrics.elements += count;
        metrics.kept[0] += count;
    }

    @Override
    public void nearswap(float t, int count, ChunkMetrics metrics) {
        held = null;
        selection = false;
        ComposedKernels.nearswap(values[0], values[models], t, count, out);
        observe(count, metrics);
    }

    @Override
    public void ram(float epsilon, float[] uniqueScales, int count, ChunkMetrics metrics) {
        held = null;
        selection = false;
        ComposedKernels.ram(values[models], java.util.Arrays.copyOf(values, models), epsilon, uniqueScales, count, out);
        observe(count, metrics);
    }

    @Override
    public void select(Operand rankedBy, KeepRule rule, long chunkStart, int count) {
        ArrowBuf ranked = held(rankedBy, count);
        out.setBytes(0, ranked, 0, (long) count << 2);
        rule.apply(out, count, chunkStart, scratch);
        selection = true;
        if (held instanceof Operand.Selected) {
            held = null;
        }
    }

    @Override
    public void sce(float[] weights, boolean selected, int count, ChunkMetrics metrics) {
        if (selected && !selection) {
            throw new IllegalStateException("sce over a selection before select() in this chunk");
        }
        held = null;
        selection = false;
        ComposedKernels.sce(values[models], java.util.Arrays.copyOf(values, models), weights, selected ? out : null,
                count, out);
        observe(count, metrics);
    }

    @Override
    public void outputMagnitudes(boolean minusBase, int count, ExactSum into) {
        ArrowBuf base = values[models];
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            into.addMagnitude(minusBase ? out.getFloat(at) - base.getFloat(at) : out.getFloat(at));
        }
    }

    @Override
    public void sum(Operand a, int count, ExactDot into) {
        ComposedKernels.sum(terms(count, a), 0, count, into);
    }

    @Override
    public void varmElement(int variation, boolean softmax, float temperature, int count, ChunkMetrics metrics) {
        held = null;
        selection = false;
        ComposedKernels.varmElement(values[models], java.util.Arrays.copyOf(values, models), variation, softmax,
                temperature, count, out);
        observe(count, metrics);
    }

    @Override
    public void fisher(float[] coefficients, float floor, boolean favorTarget, int count, ChunkMetrics metrics) {
        held = null;
        selection = false;
        ArrowBuf[] fishers = java.util.Arrays.copyOfRange(values, models + 1, models + 1 + models);
        ComposedKernels.fisher(java.util.Arrays.copyOf(values, models), fishers, coefficients, floor, favorTarget, count,
                out);
        metrics.elements += count;
        for (int i = 0; i < models; i++) {
            metrics.kept[i] += count;
        }
    }

    @Override
    public void ota(float epsilon, int count, ChunkMetrics metrics) {
        held = null;
        selection = false;
        ArrowBuf[] moments = java.util.Arrays.copyOfRange(values, models + 1, models + 1 + models);
        ComposedKernels.ota(java.util.Arrays.copyOf(values, models), moments, epsilon, count, out);
        metrics.elements += count;
        for (int i = 0; i < models; i++) {
            metrics.kept[i] += count;
        }
    }

    @Override
    public void graft(Operand.Salience salience, KeepRule.TopK keep, int count, ChunkMetrics metrics) {
        ArrowBuf scores = held(salience, count);
        metrics.kept[salience.model()] += ComposedKernels.graft(values[salience.model()], values[models], scores, keep,
                count, out);
        held = null;
        selection = false;
        metrics.elements += count;
        ComposedKernels.deltaFigures(values[models], java.util.Arrays.copyOf(values, models), count,
                metrics.deltaSquares, metrics.deltaDots);
    }

    @Override
    public void widenElements(float[] thresholds, float calibration, int count, ChunkMetrics metrics) {
        held = null;
        selection = false;
        ComposedKernels.widenElements(values[models], java.util.Arrays.copyOf(values, models), thresholds, calibration,
                count, out);
        observe(count, metrics);
    }

    @Override
    public void pcb(float[] lo, float[] hi, float[] low, float[] high, float lambda, int count, ChunkMetrics metrics) {
        held = null;
        selection = false;
        ComposedKernels.pcb(values[models], java.util.Arrays.copyOf(values, models), lo, hi, low, high, lambda, count,
                out);
        observe(count, metrics);
    }

    @Override
    public void consensus(TaskVectorKernel.ModelTerm[] terms, boolean ties, int tieSign, float[] tallLambdas,
                          int minTasks, float alpha, long chunkStart, int count, ChunkMetrics metrics) {
        float[] weights = new float[models];
        long[][] kept = new long[models][];
        for (int i = 0; i < models; i++) {
            weights[i] = terms[i].weight();
            if (!(terms[i].keep() instanceof KeepRule.All)) {
                // Which entries the rule keeps, as bits: the inputs stay as decoded for the masks.
                Deltas.compute(values[i], values[models], delta, count);
                metrics.kept[i] += terms[i].keep().apply(delta, count, chunkStart, scratch);
                kept[i] = new long[(count + 63) >>> 6];
                for (int j = 0; j < count; j++) {
                    if (delta.getFloat((long) j << 2) != 0.0f) {
                        kept[i][j >>> 6] |= 1L << j;
                    }
                }
            } else {
                metrics.kept[i] += count;
            }
        }
        held = null;
        selection = false;
        ComposedKernels.deltaFigures(values[models], java.util.Arrays.copyOf(values, models), count,
                metrics.deltaSquares, metrics.deltaDots);
        ComposedKernels.consensus(values[models], java.util.Arrays.copyOf(values, models), weights, kept, ties, tieSign,
                tallLambdas, minTasks, alpha, count, out);
        metrics.elements += count;
    }

    @Override
    public long consensusSigns(TaskVectorKernel.ModelTerm[] terms, long chunkStart, int count) {
        // S is built in the output buffer, each model's trimmed delta in the delta buffer.
        for (int i = 0; i < models; i++) {
            Deltas.compute(values[i], values[models], delta, count);
            terms[i].keep().apply(delta, count, chunkStart, scratch);
            ComposedKernels.addWeighted(delta, terms[i].weight(), i == 0, count, out);
        }
        held = null;
        selection = false;
        return ComposedKernels.signSum(out, count);
    }

    @Override
    public void mergeTiesModel(TaskVectorKernel.ModelTerm[] terms, int tieSign, float lambda, long chunkStart,
                               int count, ChunkMetrics metrics) {
        held = null;
        selection = false;
        ArrowBuf base = values[models];
        ComposedKernels.deltaFigures(base, java.util.Arrays.copyOf(values, models), count, metrics.deltaSquares,
                metrics.deltaDots);
        for (int i = 0; i < models; i++) {
            // The inputs become v_i = w_i t_i in place: nothing reads them after the merge.
            Deltas.compute(values[i], base, values[i], count);
            metrics.kept[i] += terms[i].keep().apply(values[i], count, chunkStart, scratch);
            ComposedKernels.scale(values[i], terms[i].weight(), count, values[i]);
        }
        ComposedKernels.tiesModel(base, java.util.Arrays.copyOf(values, models), tieSign, lambda, count, out);
        metrics.elements += count;
    }

    @Override
    public void fuse(float threshold, int cols, int count, ChunkMetrics metrics) {
        ArrowBuf importance = held(new Operand.Importance(cols), count);
        selection = false;
        ComposedKernels.fuse(values[0], values[models], importance, threshold, count, out);
        held = null;
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
            ComposedKernels.deltaFigures(values[models], java.util.Arrays.copyOf(values, models), count,
                    metrics.deltaSquares, metrics.deltaDots);
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
