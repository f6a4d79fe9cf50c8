package dev.amalgam.kernels.gpu;

import dev.amalgam.kernels.BlockScales;
import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.CounterRandom;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.kernels.ExactDot;
import dev.amalgam.kernels.ExactSum;
import dev.amalgam.kernels.KeepRule;
import dev.amalgam.kernels.MagnitudeHistogram;
import dev.amalgam.kernels.Operand;
import dev.amalgam.kernels.TaskVectorKernel;
import org.apache.arrow.memory.ArrowBuf;
import org.apache.arrow.memory.BufferAllocator;

import java.util.ArrayList;
import java.util.List;

/**
 * A task's working set on a GPU: the host side of the CUDA kernels. Two buffer sets, each with
 * its own stream, page-locked host buffers and device buffers, so that while the kernels of one
 * chunk run, the next chunk is read from storage and copied up on the other stream.
 *
 * <p>Statistics calls wait for their stream (their results steer the driver); merges do not:
 * {@link #encodeOut} queues the encode and the copies back, and the chunk's {@link PendingChunk}
 * waits when the task needs the bytes.
 */
public final class DeviceChunkKernels implements ChunkKernels {
    private static final int SETS = 2;

    private final Device device;
    private final BufferAllocator allocator;
    private final GpuMemoryBudget budget;
    private final long reserved;
    private final int models;
    private final boolean hasBase;
    /** Input slots: the models, the base's (held only with a base), then companion inputs. */
    private final int slots;
    private final int maxCount;
    private final List<Long> deviceBuffers = new ArrayList<>();
    private final BufferSet[] sets = new BufferSet[SETS];
    private int current = -1;
    private boolean closed;

    /** Device bytes one working set takes (both buffer sets), for the memory budget. */
    public static long deviceBytes(int maxCount, int models, boolean hasBase) {
        return deviceBytes(maxCount, models, hasBase, 0);
    }

    /** The same with {@code companions} companion inputs, each buffered like a model. */
    public static long deviceBytes(int maxCount, int models, boolean hasBase, int companions) {
        int slots = models + (hasBase ? 1 : 0) + companions;
        long floats = (long) maxCount * 4;
        long tiles = (ceilDiv(maxCount, Kernel.RANK_TILE) * 2L + (long) figureRows(models) * ceilDiv(maxCount, Kernel.SUM_TILE)) * 8;
        long counters = ((long) (models + 1) * Kernel.LANES + (long) Kernel.LANES * 256 + 1) * 8
                + (long) MagnitudeHistogram.BINS * 8 + (long) (models + 1) * 16
                + (long) Kernel.DOT_BINS * Kernel.LANES * 8 + 16 + (long) Math.max(2 * models, 1) * Kernel.LANES * 8;
        return SETS * (slots * floats * 2 + 3 * floats + tiles + counters + slots * scaleCapacity(maxCount));
    }

    /** Rows of report tiles: each model's delta squares, then each pair's delta dot product. */
    private static int figureRows(int models) {
        return models + ChunkMetrics.pairs(models);
    }

    /**
     * Bytes of a slot's block-scale buffer: MXFP4 needs count / 32, FP8 at most count / 4096 plus
     * a grid row per 128 columns of the two partial block rows, which fits unless a row passes a
     * million columns (checked per chunk).
     */
    static long scaleCapacity(int maxCount) {
        return maxCount / 16 + (128L << 10);
    }

    /**
     * Page-locked host bytes one working set takes (both buffer sets), counted against the
     * executor's Arrow limit: a raw buffer per input and the encoded output, plus small readback
     * buffers (bounded above by one MiB a set).
     */
    public static long hostBytes(int maxCount, int models, boolean hasBase) {
        return hostBytes(maxCount, models, hasBase, 0);
    }

    /** The same with {@code companions} companion inputs. */
    public static long hostBytes(int maxCount, int models, boolean hasBase, int companions) {
        int slots = models + (hasBase ? 1 : 0) + companions;
        long floats = org.apache.arrow.memory.rounding.DefaultRoundingPolicy.DEFAULT_ROUNDING_POLICY
                .getRoundedSize((long) maxCount * 4);
        return SETS * ((slots + 1) * floats + slots * scaleCapacity(maxCount) + (1L << 20));
    }

    DeviceChunkKernels(Device device, GpuMemoryBudget budget, BufferAllocator parent, String name, int maxCount,
                       int models, boolean hasBase, int companions) {
        this.device = device;
        this.budget = budget;
        this.models = models;
        this.hasBase = hasBase;
        // Companions follow the base's slot (models + 1 + j) whether or not there is a base.
        this.slots = models + (hasBase || companions > 0 ? 1 : 0) + companions;
        this.maxCount = maxCount;
        this.reserved = deviceBytes(maxCount, models, hasBase, companions);
        budget.reserve(reserved, name);
        BufferAllocator child;
        try {
            child = parent.newChildAllocator(name, 0, parent.getLimit());
        } catch (RuntimeException e) {
            budget.release(reserved);
            throw e;
        }
        this.allocator = child;
        try {
            device.bindToThread();
            for (int s = 0; s < SETS; s++) {
                sets[s] = new BufferSet();
            }
        } catch (RuntimeException | Error e) {
            release();
            throw e;
        }
    }

    @Override
    public java.util.Set<dev.amalgam.kernels.Primitive> primitives() {
        return GpuBackend.PRIMITIVES;
    }

    @Override
    public String backend() {
        return device.description();
    }

    @Override
    public int inFlightLimit() {
        return SETS;
    }

    @Override
    public void beginChunk() {
        device.bindToThread();
        current = (current + 1) % SETS;
        if (set().pending) {
            throw new IllegalStateException("buffer set " + current + " is still in flight: await its chunk first");
        }
        set().held = null;
        set().selection = false;
    }

    private BufferSet set() {
        if (current < 0) {
            throw new IllegalStateException("beginChunk() was not called");
        }
        return sets[current];
    }

    @Override
    public ArrowBuf input(int slot) {
        return set().rawHost[slot];
    }

    @Override
    public void decode(int slot, Dtype dtype, int count) {
        BufferSet s = set();
        s.held = null;
        if (count == 0) {
            return;
        }
        long bytes = (long) count * dtype.byteSize();
        if (dtype == Dtype.F32) {
            device.upload(s.values[slot], s.rawHost[slot], bytes, s.stream);
            return;
        }
        device.upload(s.raw[slot], s.rawHost[slot], bytes, s.stream);
        device.launch(Kernel.DECODE, count, s.stream,
                new KernelArgs().pointer(s.raw[slot]).i32(dtypeCode(dtype)).pointer(s.values[slot]).i32(count));
    }

    @Override
    public void decodeScaled(int slot, Dtype dtype, int count, BlockScales scales) {
        BufferSet s = set();
        s.held = null;
        if (count == 0) {
            return;
        }
        if (scales instanceof BlockScales.Mxfp4 m) {
            byte[] exponents = m.exponents();
            checkScales(exponents.length, dtype);
            s.scalesHost[slot].setBytes(0, exponents);
            device.upload(s.raw[slot], s.rawHost[slot], (count + 1) / 2, s.stream);
            device.upload(s.scales[slot], s.scalesHost[slot], exponents.length, s.stream);
            device.launch(Kernel.DEQUANT_MXFP4, count, s.stream, new KernelArgs().pointer(s.raw[slot])
                    .pointer(s.scales[slot]).pointer(s.values[slot]).i32(count));
            return;
        }
        BlockScales.Fp8 f = (BlockScales.Fp8) scales;
        float[] values = f.scales();
        checkScales(4L * values.length, dtype);
        for (int i = 0; i < values.length; i++) {
            s.scalesHost[slot].setFloat(4L * i, values[i]);
        }
        device.upload(s.raw[slot], s.rawHost[slot], count, s.stream);
        device.upload(s.scales[slot], s.scalesHost[slot], 4L * values.length, s.stream);
        device.launch(Kernel.DEQUANT_FP8, count, s.stream, new KernelArgs().pointer(s.raw[slot])
                .i32(dtype == Dtype.F8_E4M3 ? 3 : 4).pointer(s.scales[slot]).i64(f.firstGridRow()).i32(f.gridCols())
                .i32(f.blockRows()).i32(f.blockCols()).i64(f.matrixRows()).i32(f.cols()).i64(f.chunkStart())
                .pointer(s.values[slot]).i32(count));
    }

    private void checkScales(long bytes, Dtype dtype) {
        if (bytes > scaleCapacity(maxCount)) {
            throw new IllegalStateException("a chunk of " + dtype.safetensorsName() + " needs " + bytes
                    + " bytes of scales, over the GPU working set's " + scaleCapacity(maxCount)
                    + "; run it with --gpu off");
        }
    }

    private static int dtypeCode(Dtype dtype) {
        return switch (dtype) {
            case F32 -> 0;
            case F16 -> 1;
            case BF16 -> 2;
            // Plans with quantized inputs need DEQUANTIZE, which this backend does not declare, so
            // their executors run on the CPU and never get here.
            case F8_E4M3, F8_E5M2, U8 -> throw new IllegalArgumentException("the GPU kernels do not decode "
                    + dtype.safetensorsName() + " yet");
        };
    }

    /** Model {@code model}'s delta against the base, in the set's delta buffer (kept for the chunk's next statistic). */
    private long deltaOf(BufferSet s, int model, int count) {
        return held(s, new Operand.Delta(model), count);
    }

    /** The delta buffer holding {@code o} for the chunk, computed unless it already does. */
    private long held(BufferSet s, Operand o, int count) {
        if (!hasBase) {
            throw new IllegalArgumentException(o + " needs a base, and this working set has none");
        }
        if (o.equals(s.held)) {
            return s.delta;
        }
        if (o instanceof Operand.Delta d) {
            device.launch(Kernel.DELTA, count, s.stream,
                    new KernelArgs().pointer(s.values[d.model()]).pointer(s.values[models]).pointer(s.delta).i32(count));
        } else if (o instanceof Operand.Variance) {
            uploadPointers(s, models);
            device.upload(s.params, s.paramsHost, (long) models * 8, s.stream);
            device.launch(Kernel.VARIANCE, count, s.stream, new KernelArgs().pointer(s.params).i32(models)
                    .pointer(s.values[models]).i32(count).pointer(s.delta));
        } else if (o instanceof Operand.Selected sel) {
            if (!s.selection) {
                throw new IllegalStateException(o + " before select() in this chunk");
            }
            device.launch(Kernel.SELECTED_DELTA, count, s.stream, new KernelArgs().pointer(s.values[sel.model()])
                    .pointer(s.values[models]).pointer(s.out).i32(count).pointer(s.delta));
        } else if (o instanceof Operand.Importance imp) {
            int rows = imp.cols() == 0 ? 0 : count / imp.cols();
            device.launch(Kernel.IMPORTANCE, rows, s.stream, new KernelArgs().pointer(s.values[0])
                    .pointer(s.values[models]).i32(rows).i32(imp.cols()).pointer(s.delta));
        } else if (o instanceof Operand.Salience sal) {
            device.launch(Kernel.SALIENCE, count, s.stream, new KernelArgs().pointer(s.values[sal.model()])
                    .pointer(s.values[models]).pointer(s.values[sal.slot()]).i32(count).pointer(s.delta));
        } else if (o instanceof Operand.Balance bal) {
            uploadPointers(s, models);
            device.upload(s.params, s.paramsHost, (long) models * 8, s.stream);
            device.launch(Kernel.PCB_BALANCE, count, s.stream, new KernelArgs().pointer(s.values[models])
                    .pointer(s.params).i32(models).i32(bal.model()).f32(bal.lo()).f32(bal.hi()).bool(bal.positive())
                    .i32(count).pointer(s.delta));
        } else {
            throw new IllegalArgumentException(o + " is not held in the delta buffer");
        }
        s.held = o;
        return s.delta;
    }

    @Override
    public void histogramHigh(Operand a, int count, long[] histogram) {
        histogram(a, count, -1, histogram);
    }

    @Override
    public void histogramLow(Operand a, int count, int highBucket, long[] histogram) {
        histogram(a, count, highBucket, histogram);
    }

    private void histogram(Operand a, int count, int highBucket, long[] histogram) {
        if (count == 0) {
            return;
        }
        BufferSet s = set();
        long d = held(s, a, count);
        long bytes = (long) MagnitudeHistogram.BINS * 8;
        device.zero(s.histogram, bytes, s.stream);
        if (highBucket < 0) {
            device.launch(Kernel.HISTOGRAM_HIGH, count, s.stream, new KernelArgs().pointer(d).i32(count).pointer(s.histogram));
        } else {
            device.launch(Kernel.HISTOGRAM_LOW, count, s.stream,
                    new KernelArgs().pointer(d).i32(count).u32(highBucket).pointer(s.histogram));
        }
        device.download(s.histogramHost, s.histogram, bytes, s.stream);
        s.stream.synchronize();
        for (int b = 0; b < MagnitudeHistogram.BINS; b++) {
            histogram[b] += s.histogramHost.getLong((long) b * 8);
        }
    }

    @Override
    public long countEqual(Operand a, int count, int valueBits) {
        if (count == 0) {
            return 0;
        }
        BufferSet s = set();
        long d = held(s, a, count);
        int tiles = ceilDiv(count, Kernel.RANK_TILE);
        device.zero(s.lowPrefix, (long) tiles * 8, s.stream);
        device.launch(Kernel.COUNT_EQUAL_TILES, count, s.stream,
                new KernelArgs().pointer(d).i32(count).u32(valueBits).pointer(s.lowPrefix));
        device.download(s.histogramHost, s.lowPrefix, (long) tiles * 8, s.stream);
        s.stream.synchronize();
        long equal = 0;
        for (int t = 0; t < tiles; t++) {
            equal += s.histogramHost.getLong((long) t * 8);
        }
        return equal;
    }

    @Override
    public void magnitudeSums(int model, int count, long chunkStart, KeepRule rule, ExactSum all, ExactSum kept) {
        if (count == 0) {
            return;
        }
        BufferSet s = set();
        long d = deltaOf(s, model, count);
        exactSum(s, d, count, all);
        long survivors = applyRule(s, rule, d, s.spare, count, chunkStart, s.kept);
        exactSum(s, survivors, count, kept);
    }

    @Override
    public void outputMagnitudes(boolean minusBase, int count, ExactSum into) {
        if (count == 0) {
            return;
        }
        BufferSet s = set();
        long values = s.out;
        if (minusBase) {
            device.launch(Kernel.DELTA, count, s.stream, new KernelArgs().pointer(s.out).pointer(s.values[models])
                    .pointer(s.delta).i32(count));
            s.held = null;
            values = s.delta;
        }
        exactSum(s, values, count, into);
    }

    private void exactSum(BufferSet s, long values, int count, ExactSum into) {
        long binBytes = (long) Kernel.LANES * 256 * 8;
        device.zero(s.bins, binBytes + 8, s.stream);
        device.launch(Kernel.EXACT_SUM, count, s.stream,
                new KernelArgs().pointer(values).i32(count).pointer(s.bins).pointer(s.bins + binBytes));
        device.download(s.histogramHost, s.bins, binBytes + 8, s.stream);
        s.stream.synchronize();
        long[] bins = new long[256];
        for (int lane = 0; lane < Kernel.LANES; lane++) {
            for (int e = 0; e < 256; e++) {
                bins[e] += s.histogramHost.getLong(((long) lane * 256 + e) * 8);
            }
        }
        into.addBins(bins, s.histogramHost.getInt(binBytes) != 0, s.histogramHost.getInt(binBytes + 4) != 0);
    }

    /**
     * Queues {@code rule} from {@code src} into {@code dst} (never in place: the top-k, band and
     * DELLA kernels read their neighbours); returns the buffer holding the survivors, which is
     * {@code src} for {@link KeepRule.All}. Kept entries are counted into {@code keptLanes}.
     */
    private long applyRule(BufferSet s, KeepRule rule, long src, long dst, int count, long chunkStart, long keptLanes) {
        if (rule instanceof KeepRule.All) {
            return src;
        }
        if (rule instanceof KeepRule.TopK topK) {
            prefix(s, src, count, topK.thresholdBits(), topK.equalsBefore(), s.lowPrefix);
            device.launch(Kernel.KEEP_TOP_K, count, s.stream, new KernelArgs().pointer(src).pointer(dst).i32(count)
                    .u32(topK.thresholdBits()).i64(topK.equalsToKeep()).pointer(s.lowPrefix).pointer(keptLanes));
        } else if (rule instanceof KeepRule.Band band) {
            if (band.hasLow()) {
                prefix(s, src, count, band.lowBits(), band.lowEqualsBefore(), s.lowPrefix);
            }
            if (band.hasHigh()) {
                prefix(s, src, count, band.highBits(), band.highEqualsBefore(), s.highPrefix);
            }
            device.launch(Kernel.KEEP_BAND, count, s.stream, new KernelArgs().pointer(src).pointer(dst).i32(count)
                    .bool(band.hasLow()).u32(band.lowBits()).i64(band.lowEqualsDropped()).pointer(s.lowPrefix)
                    .bool(band.hasHigh()).u32(band.highBits()).i64(band.highEqualsKept()).pointer(s.highPrefix)
                    .pointer(keptLanes));
        } else if (rule instanceof KeepRule.Random random) {
            device.launch(Kernel.KEEP_RANDOM, count, s.stream, new KernelArgs().pointer(src).pointer(dst).i32(count)
                    .u64(random.streamKey()).i64(chunkStart).u64(CounterRandom.keepLimit(random.density()))
                    .pointer(keptLanes));
        } else if (rule instanceof KeepRule.DellaRows della) {
            if (count % della.cols() != 0 || chunkStart % della.cols() != 0) {
                throw new IllegalArgumentException("DELLA chunk [" + chunkStart + ", +" + count
                        + ") does not fall on rows of " + della.cols() + " elements");
            }
            device.launch(Kernel.KEEP_DELLA, count, s.stream, new KernelArgs().pointer(src).pointer(dst).i32(count)
                    .i32(della.cols()).f32(della.low()).f32(della.twoEpsilon()).u64(della.streamKey()).i64(chunkStart)
                    .pointer(keptLanes));
        } else {
            throw new IllegalArgumentException("no GPU kernel for keep rule " + rule);
        }
        return dst;
    }

    /** Per-tile exclusive prefixes of the entries equal to {@code valueBits}, starting at {@code before}. */
    private void prefix(BufferSet s, long values, int count, int valueBits, long before, long tilesBuffer) {
        int tiles = ceilDiv(count, Kernel.RANK_TILE);
        device.zero(tilesBuffer, (long) tiles * 8, s.stream);
        device.launch(Kernel.COUNT_EQUAL_TILES, count, s.stream,
                new KernelArgs().pointer(values).i32(count).u32(valueBits).pointer(tilesBuffer));
        device.launch(Kernel.EXCLUSIVE_PREFIX, 1, s.stream, new KernelArgs().pointer(tilesBuffer).i32(tiles).u64(before));
    }

    @Override
    public void mergeTaskVector(int count, long chunkStart, TaskVectorKernel.ModelTerm[] terms,
                                TaskVectorKernel.Consensus consensus, boolean normalize, float lambda,
                                ChunkMetrics metrics) {
        BufferSet s = set();
        s.held = null;
        s.expect(metrics, count, terms);
        if (count == 0) {
            return;
        }
        int sumTiles = sparsifiedDeltas(s, terms, count, chunkStart);
        float plainDiv = 0.0f;
        for (int i = 0; i < models; i++) {
            s.paramsHost.setFloat((long) models * 12 + i * 4L, terms[i].rescale());
            plainDiv += terms[i].weight();
        }
        if (Math.abs(plainDiv) < 1e-8f) {
            plainDiv = 1.0f;
        }
        device.upload(s.params, s.paramsHost, (long) models * 16, s.stream);
        device.launch(Kernel.MERGE_TASK_VECTOR, count, s.stream, new KernelArgs()
                .pointer(s.values[models]).pointer(s.params).pointer(s.params + (long) models * 8)
                .pointer(s.params + (long) models * 12).i32(models).i32(count)
                .bool(consensus == TaskVectorKernel.Consensus.SUM).bool(normalize).f32(lambda).f32(plainDiv)
                .pointer(s.out).pointer(s.kept + (long) models * Kernel.LANES * 8));
        s.squareTiles = sumTiles;
    }

    /**
     * Turns each model's input into its delta after its keep rule (the report's squares and
     * agreement taken on the way, kept counts into the kept lanes), and writes each model's
     * pointer and weight into the parameter block; returns the square tiles per model.
     */
    private int sparsifiedDeltas(BufferSet s, TaskVectorKernel.ModelTerm[] terms, int count, long chunkStart) {
        int sumTiles = ceilDiv(count, Kernel.SUM_TILE);
        device.zero(s.kept, (long) (models + 1) * Kernel.LANES * 8, s.stream);
        // From the inputs, before the loop below turns them into sparsified deltas.
        launchDeltaDots(s, count, sumTiles);
        for (int i = 0; i < models; i++) {
            long values = s.values[i];
            device.launch(Kernel.DELTA, count, s.stream,
                    new KernelArgs().pointer(values).pointer(s.values[models]).pointer(values).i32(count));
            device.launch(Kernel.SQUARE_TILES, sumTiles, s.stream,
                    new KernelArgs().pointer(values).i32(count).pointer(s.squares + (long) i * sumTiles * 8));
            long survivors = applyRule(s, terms[i].keep(), values, s.spare, count, chunkStart,
                    s.kept + (long) i * Kernel.LANES * 8);
            if (survivors != values) {
                // The survivors now live in the spare buffer: swap, so the next model has a free one.
                s.values[i] = survivors;
                s.spare = values;
            }
            s.paramsHost.setLong((long) i * 8, s.values[i]);
            s.paramsHost.setFloat((long) models * 8 + i * 4L, terms[i].weight());
        }
        return sumTiles;
    }

    @Override
    public void varmElement(int variation, boolean softmax, float temperature, int count, ChunkMetrics metrics) {
        BufferSet s = set();
        s.expectObserved(metrics, count);
        if (count == 0) {
            return;
        }
        uploadPointers(s, models);
        device.upload(s.params, s.paramsHost, (long) models * 8, s.stream);
        device.launch(Kernel.VARM_ELEMENT, count, s.stream, new KernelArgs().pointer(s.values[models])
                .pointer(s.params).i32(models).i32(variation).bool(softmax).f32(temperature).i32(count)
                .pointer(s.out));
        observeModels(s, count);
    }

    @Override
    public void widenElements(float[] thresholds, float calibration, int count, ChunkMetrics metrics) {
        BufferSet s = set();
        s.held = null;
        s.expectObserved(metrics, count);
        if (count == 0) {
            return;
        }
        uploadPointersAndFloats(s, thresholds);
        device.launch(Kernel.WIDEN_ELEMENTS, count, s.stream, new KernelArgs().pointer(s.values[models])
                .pointer(s.params).i32(models).pointer(s.params + (long) models * 8).f32(calibration).i32(count)
                .pointer(s.out));
        observeModels(s, count);
    }

    /** Each model's companion slot of kind {@code kind} (0 the first), after the base's slot. */
    private long companion(BufferSet s, int kind, int model) {
        return s.values[models + 1 + kind * models + model];
    }

    /**
     * Uploads the models' pointers, then their first companions' (at {@code params + models * 8}),
     * and {@code extra} bytes the caller wrote after them.
     */
    private void uploadModelsAndCompanions(BufferSet s, long extra) {
        for (int i = 0; i < models; i++) {
            s.paramsHost.setLong((long) i * 8, s.values[i]);
            s.paramsHost.setLong((long) (models + i) * 8, companion(s, 0, i));
        }
        device.upload(s.params, s.paramsHost, (long) models * 16 + extra, s.stream);
    }

    @Override
    public void fisher(float[] coefficients, float floor, boolean favorTarget, int count, ChunkMetrics metrics) {
        BufferSet s = set();
        s.held = null;
        s.expectObserved(metrics, count);
        if (count == 0) {
            return;
        }
        for (int i = 0; i < models; i++) {
            s.paramsHost.setFloat((long) models * 16 + i * 4L, coefficients[i]);
        }
        uploadModelsAndCompanions(s, (long) models * 4);
        device.launch(Kernel.FISHER, count, s.stream, new KernelArgs().pointer(s.params)
                .pointer(s.params + (long) models * 8).pointer(s.params + (long) models * 16).i32(models).f32(floor)
                .bool(favorTarget).i32(count).pointer(s.out));
        observeModels(s, count);
    }

    @Override
    public void ota(float epsilon, int count, ChunkMetrics metrics) {
        BufferSet s = set();
        s.held = null;
        s.expectObserved(metrics, count);
        if (count == 0) {
            return;
        }
        uploadModelsAndCompanions(s, 0);
        device.launch(Kernel.OTA, count, s.stream, new KernelArgs().pointer(s.params)
                .pointer(s.params + (long) models * 8).i32(models).f32(epsilon).i32(count).pointer(s.out));
        observeModels(s, count);
    }

    @Override
    public void graft(Operand.Salience salience, KeepRule.TopK keep, int count, ChunkMetrics metrics) {
        BufferSet s = set();
        long scores = held(s, salience, count);
        // Kept counts come from the kept lanes (a ruled model's, as in a task-vector merge).
        TaskVectorKernel.ModelTerm[] terms = new TaskVectorKernel.ModelTerm[models];
        for (int i = 0; i < models; i++) {
            terms[i] = new TaskVectorKernel.ModelTerm(1.0f, i == salience.model() ? keep : new KeepRule.All(), 1.0f);
        }
        s.expect(metrics, count, terms);
        if (count == 0) {
            return;
        }
        device.zero(s.kept, (long) (models + 1) * Kernel.LANES * 8, s.stream);
        prefix(s, scores, count, keep.thresholdBits(), keep.equalsBefore(), s.lowPrefix);
        device.launch(Kernel.GRAFT, count, s.stream, new KernelArgs().pointer(s.values[salience.model()])
                .pointer(s.values[models]).pointer(scores).i32(count).u32(keep.thresholdBits())
                .i64(keep.equalsToKeep()).pointer(s.lowPrefix)
                .pointer(s.kept + (long) salience.model() * Kernel.LANES * 8).pointer(s.out));
        // The report's delta squares, after the graft has read the scores from the delta buffer.
        observeModels(s, count);
    }

    @Override
    public void pcb(float[] lo, float[] hi, float[] low, float[] high, float lambda, int count, ChunkMetrics metrics) {
        BufferSet s = set();
        s.held = null;
        s.expectObserved(metrics, count);
        if (count == 0) {
            return;
        }
        uploadPointers(s, models);
        float[][] bounds = {lo, hi, low, high};
        for (int b = 0; b < bounds.length; b++) {
            for (int i = 0; i < models; i++) {
                s.paramsHost.setFloat((long) models * 8 + ((long) b * models + i) * 4, bounds[b][i]);
            }
        }
        device.upload(s.params, s.paramsHost, (long) models * 24, s.stream);
        device.launch(Kernel.PCB, count, s.stream, new KernelArgs().pointer(s.values[models]).pointer(s.params)
                .i32(models).pointer(s.params + (long) models * 8).f32(lambda).i32(count).pointer(s.out));
        observeModels(s, count);
    }

    @Override
    public void consensus(TaskVectorKernel.ModelTerm[] terms, boolean ties, int tieSign, float[] tallLambdas,
                          int minTasks, float alpha, long chunkStart, int count, ChunkMetrics metrics) {
        if (models > 32) {
            throw new IllegalArgumentException("consensus merging on the device takes at most 32 models, not " + models);
        }
        BufferSet s = set();
        s.held = null;
        s.expect(metrics, count, terms);
        if (count == 0) {
            return;
        }
        int sumTiles = ceilDiv(count, Kernel.SUM_TILE);
        device.zero(s.kept, (long) (models + 1) * Kernel.LANES * 8, s.stream);
        launchDeltaDots(s, count, sumTiles);
        // The inputs stay as decoded (the masks read them); each ruled model's kept entries become
        // one bit of a word per element, in the output buffer, which the merge then overwrites.
        int ruled = 0;
        for (int i = 0; i < models; i++) {
            device.launch(Kernel.DELTA, count, s.stream, new KernelArgs().pointer(s.values[i])
                    .pointer(s.values[models]).pointer(s.delta).i32(count));
            device.launch(Kernel.SQUARE_TILES, sumTiles, s.stream,
                    new KernelArgs().pointer(s.delta).i32(count).pointer(s.squares + (long) i * sumTiles * 8));
            if (!(terms[i].keep() instanceof KeepRule.All)) {
                long kept = applyRule(s, terms[i].keep(), s.delta, s.spare, count, chunkStart,
                        s.kept + (long) i * Kernel.LANES * 8);
                device.launch(Kernel.KEPT_BITS, count, s.stream, new KernelArgs().pointer(kept).i32(i)
                        .bool(ruled == 0).i32(count).pointer(s.out));
                ruled |= 1 << i;
            }
            s.paramsHost.setLong((long) i * 8, s.values[i]);
            s.paramsHost.setFloat((long) models * 8 + i * 4L, terms[i].weight());
            s.paramsHost.setFloat((long) models * 12 + i * 4L, tallLambdas[i]);
        }
        device.upload(s.params, s.paramsHost, (long) models * 16, s.stream);
        device.launch(Kernel.CONSENSUS, count, s.stream, new KernelArgs().pointer(s.values[models])
                .pointer(s.params).pointer(s.params + (long) models * 8).pointer(s.params + (long) models * 12)
                .i32(models).bool(ties).i32(tieSign).i32(minTasks).f32(alpha).u32(ruled).i32(count).pointer(s.out));
        s.squareTiles = sumTiles;
    }

    @Override
    public long consensusSigns(TaskVectorKernel.ModelTerm[] terms, long chunkStart, int count) {
        if (count == 0) {
            return 0;
        }
        BufferSet s = set();
        s.held = null;
        s.selection = false;
        // Each model's trimmed delta in the delta (or spare) buffer, added into the total in the output buffer.
        for (int i = 0; i < models; i++) {
            device.launch(Kernel.DELTA, count, s.stream, new KernelArgs().pointer(s.values[i])
                    .pointer(s.values[models]).pointer(s.delta).i32(count));
            long kept = applyRule(s, terms[i].keep(), s.delta, s.spare, count, chunkStart,
                    s.kept + (long) i * Kernel.LANES * 8);
            device.launch(Kernel.ADD_WEIGHTED, count, s.stream, new KernelArgs().pointer(kept)
                    .f32(terms[i].weight()).bool(i == 0).i32(count).pointer(s.out));
        }
        device.zero(s.counts, 2L * Kernel.LANES * 8, s.stream);
        device.launch(Kernel.SIGN_COUNTS, count, s.stream, new KernelArgs().pointer(s.out).i32(count)
                .pointer(s.counts));
        long[] counts = downloadCounters(s, 2);
        return counts[0] - counts[1];
    }

    @Override
    public void mergeTiesModel(TaskVectorKernel.ModelTerm[] terms, int tieSign, float lambda, long chunkStart,
                               int count, ChunkMetrics metrics) {
        BufferSet s = set();
        s.held = null;
        s.expect(metrics, count, terms);
        if (count == 0) {
            return;
        }
        int sumTiles = sparsifiedDeltas(s, terms, count, chunkStart);
        device.upload(s.params, s.paramsHost, (long) models * 12, s.stream);
        device.launch(Kernel.MERGE_TIES_MODEL, count, s.stream, new KernelArgs().pointer(s.values[models])
                .pointer(s.params).pointer(s.params + (long) models * 8).i32(models).i32(count).i32(tieSign)
                .f32(lambda).pointer(s.out));
        s.squareTiles = sumTiles;
    }

    @Override
    public void mergeLinear(int count, float[] weights, boolean normalize, ChunkMetrics metrics) {
        BufferSet s = set();
        s.expect(metrics, count, null);
        if (count == 0) {
            return;
        }
        float div = 0.0f;
        for (int i = 0; i < models; i++) {
            s.paramsHost.setLong((long) i * 8, s.values[i]);
            s.paramsHost.setFloat((long) models * 8 + i * 4L, weights[i]);
            div += weights[i];
        }
        device.upload(s.params, s.paramsHost, (long) models * 12, s.stream);
        device.launch(Kernel.MERGE_LINEAR, count, s.stream, new KernelArgs().pointer(s.params)
                .pointer(s.params + (long) models * 8).i32(models).i32(count).bool(normalize).f32(div).pointer(s.out));
    }

    /**
     * A device buffer holding {@code o} for the chunk: an input's values, or a delta computed into
     * {@code scratch} (the delta buffer, which caches one model's delta, or the spare buffer).
     */
    private long operand(BufferSet s, Operand o, int count, boolean spare) {
        if (o instanceof Operand.Value v) {
            return s.values[v.slot()];
        }
        if (o instanceof Operand.Delta d) {
            if (!hasBase) {
                throw new IllegalArgumentException(o + " needs a base, and this working set has none");
            }
            if (!spare) {
                return deltaOf(s, d.model(), count);
            }
            device.launch(Kernel.DELTA, count, s.stream, new KernelArgs().pointer(s.values[d.model()])
                    .pointer(s.values[models]).pointer(s.spare).i32(count));
            return s.spare;
        }
        if (derived(o)) {
            if (spare) {
                throw new IllegalArgumentException("two computed operands in one primitive, " + o + " being the second");
            }
            return held(s, o, count);
        }
        throw new IllegalArgumentException(o + " is not an elementwise operand");
    }

    private static boolean derived(Operand o) {
        return o instanceof Operand.Variance || o instanceof Operand.Selected || o instanceof Operand.Importance
                || o instanceof Operand.Balance || o instanceof Operand.Salience;
    }

    /** Both operands of a product: the second in the spare buffer where both need the delta buffer. */
    private long[] operands(BufferSet s, Operand a, Operand b, int count) {
        boolean aComputed = a instanceof Operand.Delta || derived(a);
        boolean bComputed = b instanceof Operand.Delta || derived(b);
        if (derived(b) && aComputed && !b.equals(a)) {
            // The derived operand takes the delta buffer; the delta goes to the spare one.
            long pb = operand(s, b, count, false);
            return new long[]{operand(s, a, count, true), pb};
        }
        long pa = operand(s, a, count, false);
        long pb = b.equals(a) ? pa : operand(s, b, count, aComputed && bComputed);
        return new long[]{pa, pb};
    }

    @Override
    public void dot(Operand a, Operand b, int count, ExactDot into) {
        if (count == 0) {
            return;
        }
        BufferSet s = set();
        long[] p = operands(s, a, b, count);
        exactSum(s, count, into, Kernel.EXACT_DOT, new KernelArgs().pointer(p[0]).pointer(p[1]).i32(count));
    }

    @Override
    public void sum(Operand a, int count, ExactDot into) {
        if (count == 0) {
            return;
        }
        BufferSet s = set();
        long p = operand(s, a, count, false);
        exactSum(s, count, into, Kernel.EXACT_SIGNED_SUM, new KernelArgs().pointer(p).i32(count));
    }

    /** Runs an exact-product kernel ({@code args} then its bins and flags) and adds its lanes into {@code into}. */
    private void exactSum(BufferSet s, int count, ExactDot into, Kernel kernel, KernelArgs args) {
        long binBytes = (long) Kernel.DOT_BINS * Kernel.LANES * 8;
        device.zero(s.dotBins, binBytes + 16, s.stream);
        device.launch(kernel, count, s.stream, args.pointer(s.dotBins).pointer(s.dotBins + binBytes));
        device.download(s.histogramHost, s.dotBins, binBytes + 16, s.stream);
        s.stream.synchronize();
        long[] bins = new long[Kernel.DOT_BINS];
        for (int lane = 0; lane < Kernel.LANES; lane++) {
            for (int e = 0; e < Kernel.DOT_BINS; e++) {
                bins[e] += s.histogramHost.getLong(((long) lane * Kernel.DOT_BINS + e) * 8);
            }
        }
        into.addBins(bins, s.histogramHost.getInt(binBytes) != 0, s.histogramHost.getInt(binBytes + 4) != 0,
                s.histogramHost.getInt(binBytes + 8) != 0);
    }

    @Override
    public long countNonzero(Operand a, int count) {
        if (count == 0) {
            return 0;
        }
        BufferSet s = set();
        if (a instanceof Operand.Contribution c) {
            long[] counts = ramCounts(s, c.epsilon(), count);
            return counts[2 * c.model() + (c.shared() ? 0 : 1)];
        }
        long p = operand(s, a, count, false);
        device.zero(s.counts, (long) Kernel.LANES * 8, s.stream);
        device.launch(Kernel.COUNT_NONZERO, count, s.stream, new KernelArgs().pointer(p).i32(count).pointer(s.counts));
        return downloadCounters(s, 1)[0];
    }

    private long[] ramCounts(BufferSet s, float epsilon, int count) {
        device.zero(s.counts, 2L * models * Kernel.LANES * 8, s.stream);
        uploadPointers(s, models);
        device.upload(s.params, s.paramsHost, (long) models * 8, s.stream);
        device.launch(Kernel.RAM_COUNTS, count, s.stream, new KernelArgs().pointer(s.params).i32(models)
                .pointer(s.values[models]).f32(epsilon).i32(count).pointer(s.counts));
        return downloadCounters(s, 2 * models);
    }

    /** Sums the lanes of the first {@code counters} counters of the counts buffer. */
    private long[] downloadCounters(BufferSet s, int counters) {
        device.download(s.histogramHost, s.counts, (long) counters * Kernel.LANES * 8, s.stream);
        s.stream.synchronize();
        long[] totals = new long[counters];
        for (int c = 0; c < counters; c++) {
            for (int lane = 0; lane < Kernel.LANES; lane++) {
                totals[c] += s.histogramHost.getLong(((long) c * Kernel.LANES + lane) * 8);
            }
        }
        return totals;
    }

    /** The models' value pointers at the start of the params buffer. */
    /** The models' pointers, then one float per model at {@code params + models * 8}, uploaded. */
    private void uploadPointersAndFloats(BufferSet s, float[] perModel) {
        uploadPointers(s, models);
        for (int i = 0; i < models; i++) {
            s.paramsHost.setFloat((long) models * 8 + i * 4L, perModel[i]);
        }
        device.upload(s.params, s.paramsHost, (long) models * 12, s.stream);
    }

    private void uploadPointers(BufferSet s, int m) {
        for (int i = 0; i < m; i++) {
            s.paramsHost.setLong((long) i * 8, s.values[i]);
        }
    }

    @Override
    public void rowDots(Operand a, Operand b, int count, int cols, float[] into) {
        int rows = count / cols;
        vectorDots(Kernel.ROW_DOTS, a, b, count, rows, rows, cols, into);
    }

    @Override
    public void columnDots(Operand a, Operand b, int count, int columns, float[] into) {
        vectorDots(Kernel.COLUMN_DOTS, a, b, count, columns, count / columns, columns, into);
    }

    /** One dot product per vector (a row or a column of rows {@code cols} wide), one thread each. */
    private void vectorDots(Kernel kernel, Operand a, Operand b, int count, int vectors, int rows, int cols,
                            float[] into) {
        if (rows == 0) {
            return;
        }
        BufferSet s = set();
        long[] p = operands(s, a, b, count);
        // The output buffer is free until the merge writes it, so the results pass through it.
        s.selection = false;
        device.launch(kernel, vectors, s.stream, new KernelArgs().pointer(p[0]).pointer(p[1]).i32(rows).i32(cols)
                .pointer(s.out));
        device.download(s.encodedHost, s.out, (long) vectors * 4, s.stream);
        s.stream.synchronize();
        for (int v = 0; v < vectors; v++) {
            into[v] = s.encodedHost.getFloat((long) v * 4);
        }
    }

    @Override
    public void combine(Operand[] terms, float[] coefficients, boolean plusBase, int count, ChunkMetrics metrics) {
        combine(terms, coefficients, null, 0, false, plusBase, count, metrics);
    }

    @Override
    public void combineRows(Operand[] terms, float[][] coefficients, int cols, boolean plusBase, int count,
                            ChunkMetrics metrics) {
        combine(terms, null, coefficients, cols, false, plusBase, count, metrics);
    }

    @Override
    public void combineColumns(Operand[] terms, float[][] coefficients, int columns, boolean plusBase, int count,
                               ChunkMetrics metrics) {
        combine(terms, null, coefficients, columns, true, plusBase, count, metrics);
    }

    /** {@code rowCoefficients[k]} has one value per row of {@code cols}, or per column where {@code perColumn}. */
    private void combine(Operand[] terms, float[] coefficients, float[][] rowCoefficients, int cols, boolean perColumn,
                         boolean plusBase, int count, ChunkMetrics metrics) {
        BufferSet s = set();
        s.expectObserved(metrics, count);
        if (count == 0) {
            return;
        }
        int m = terms.length;
        if (m > slots) {
            throw new IllegalArgumentException(m + " terms, more than the " + slots + " inputs of this working set");
        }
        // Per-row coefficients travel in the raw buffers, free once the chunk is decoded; their
        // host side may still feed an upload, so wait for the stream before writing it.
        s.stream.synchronize();
        for (int k = 0; k < m; k++) {
            boolean delta;
            int slot;
            if (terms[k] instanceof Operand.Delta d) {
                delta = true;
                slot = d.model();
            } else if (terms[k] instanceof Operand.Value v) {
                delta = false;
                slot = v.slot();
            } else {
                throw new IllegalArgumentException(terms[k] + " is not an elementwise operand");
            }
            s.paramsHost.setLong((long) k * 8, s.values[slot]);
            s.paramsHost.setInt((long) m * 8 + k * 4L, delta ? 1 : 0);
            s.paramsHost.setFloat((long) m * 12 + k * 4L, coefficients == null ? 0.0f : coefficients[k]);
            if (rowCoefficients != null) {
                int rows = perColumn ? cols : count / cols;
                for (int r = 0; r < rows; r++) {
                    s.rawHost[k].setFloat((long) r * 4, rowCoefficients[k][r]);
                }
                device.upload(s.raw[k], s.rawHost[k], (long) rows * 4, s.stream);
                s.paramsHost.setLong((long) m * 16 + k * 8L, s.raw[k]);
            }
        }
        device.upload(s.params, s.paramsHost, (long) m * (rowCoefficients == null ? 16 : 24), s.stream);
        // Delta terms subtract the base whether or not the result adds it back (without a base,
        // no term is a delta and the pointer is never read).
        long rowPointers = rowCoefficients == null ? s.params : s.params + (long) m * 16;
        device.launch(Kernel.COMBINE, count, s.stream, new KernelArgs().pointer(s.params).pointer(s.params + (long) m * 8)
                .pointer(s.params + (long) m * 12).pointer(rowPointers).i32(m).pointer(hasBase ? s.values[models] : s.out)
                .bool(plusBase).i32(rowCoefficients == null ? 0 : cols).bool(perColumn).i32(count).pointer(s.out));
        observeModels(s, count);
    }

    @Override
    public void addLowRank(int slot, dev.amalgam.kernels.LowRankFactors f, int count, long chunkStart) {
        BufferSet s = set();
        s.held = null;
        if (count == 0) {
            return;
        }
        long aBytes = (long) f.a().length * 4;
        long bytes = aBytes + (long) f.b().length * 4;
        // The host buffer may still feed an upload queued for another slot of this chunk.
        s.stream.synchronize();
        s.ensureFactors(bytes);
        s.factorsHost.nioBuffer(0, (int) bytes).order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer()
                .put(f.a()).put(f.b());
        device.upload(s.factors, s.factorsHost, bytes, s.stream);
        device.launch(Kernel.LOW_RANK, count, s.stream, new KernelArgs().pointer(s.values[slot]).pointer(s.factors)
                .pointer(s.factors + aBytes).i64(chunkStart).i32(f.cols()).i64(f.bFirst()).f32(f.scale())
                .i32(f.rank()).i32(f.aCols()).bool(f.transposed()).i32(dtypeCode(f.roundTo())).i32(count));
    }

    @Override
    public void scale(Float factor, int count, ChunkMetrics metrics) {
        BufferSet s = set();
        s.held = null;
        s.expect(metrics, count, null);
        if (count == 0) {
            return;
        }
        device.launch(Kernel.SCALE, count, s.stream, new KernelArgs().pointer(s.values[0])
                .f32(factor == null ? 1.0f : factor).bool(factor != null).i32(count).pointer(s.out));
        metrics.kept[0] += count;
    }

    @Override
    public void nearswap(float t, int count, ChunkMetrics metrics) {
        BufferSet s = set();
        s.expectObserved(metrics, count);
        if (count == 0) {
            return;
        }
        device.launch(Kernel.NEARSWAP, count, s.stream, new KernelArgs().pointer(s.values[0]).pointer(s.values[models])
                .f32(t).i32(count).pointer(s.out));
        observeModels(s, count);
    }

    @Override
    public void ram(float epsilon, float[] uniqueScales, int count, ChunkMetrics metrics) {
        BufferSet s = set();
        s.expectObserved(metrics, count);
        if (count == 0) {
            return;
        }
        uploadPointers(s, models);
        for (int i = 0; uniqueScales != null && i < models; i++) {
            s.paramsHost.setFloat((long) models * 8 + i * 4L, uniqueScales[i]);
        }
        device.upload(s.params, s.paramsHost, (long) models * 12, s.stream);
        device.launch(Kernel.RAM, count, s.stream, new KernelArgs().pointer(s.params).i32(models).pointer(s.values[models])
                .f32(epsilon).pointer(s.params + (long) models * 8).bool(uniqueScales != null).i32(count).pointer(s.out));
        observeModels(s, count);
    }

    @Override
    public void select(Operand rankedBy, KeepRule rule, long chunkStart, int count) {
        BufferSet s = set();
        if (count > 0) {
            long ranked = held(s, rankedBy, count);
            // Keeping everything is a top-k whose threshold every magnitude reaches.
            KeepRule r = rule instanceof KeepRule.All ? new KeepRule.TopK(0, Long.MAX_VALUE, 0) : rule;
            applyRule(s, r, ranked, s.out, count, chunkStart, s.kept);
        }
        s.selection = true;
        if (s.held instanceof Operand.Selected) {
            s.held = null;
        }
    }

    @Override
    public void sce(float[] weights, boolean selected, int count, ChunkMetrics metrics) {
        BufferSet s = set();
        if (selected && !s.selection) {
            throw new IllegalStateException("sce over a selection before select() in this chunk");
        }
        s.expectObserved(metrics, count);
        if (count == 0) {
            return;
        }
        uploadPointersAndFloats(s, weights);
        device.launch(Kernel.SCE, count, s.stream, new KernelArgs().pointer(s.params).pointer(s.params + (long) models * 8)
                .i32(models).pointer(s.values[models]).pointer(s.out).bool(selected).i32(count).pointer(s.out));
        observeModels(s, count);
    }

    @Override
    public void fuse(float threshold, int cols, int count, ChunkMetrics metrics) {
        BufferSet s = set();
        s.expectObserved(metrics, count);
        if (count == 0) {
            return;
        }
        long importance = held(s, new Operand.Importance(cols), count);
        device.launch(Kernel.FUSE, count, s.stream, new KernelArgs().pointer(s.values[0]).pointer(s.values[models])
                .pointer(importance).f32(threshold).i32(count).pointer(s.out));
        observeModels(s, count);
    }

    /** The report's delta norms of every model (where there is a base): squares per tile, summed at finish. */
    private void observeModels(BufferSet s, int count) {
        s.held = null;
        if (!hasBase) {
            return;
        }
        int sumTiles = ceilDiv(count, Kernel.SUM_TILE);
        for (int i = 0; i < models; i++) {
            device.launch(Kernel.DELTA, count, s.stream, new KernelArgs().pointer(s.values[i]).pointer(s.values[models])
                    .pointer(s.delta).i32(count));
            device.launch(Kernel.SQUARE_TILES, sumTiles, s.stream,
                    new KernelArgs().pointer(s.delta).i32(count).pointer(s.squares + (long) i * sumTiles * 8));
        }
        launchDeltaDots(s, count, sumTiles);
        s.squareTiles = sumTiles;
    }

    /** Each pair's delta dot product per tile, in the rows after the models' squares. */
    private void launchDeltaDots(BufferSet s, int count, int sumTiles) {
        for (int i = 0; i < models; i++) {
            for (int j = i + 1; j < models; j++) {
                long row = models + ChunkMetrics.pair(i, j, models);
                device.launch(Kernel.DELTA_DOT_TILES, sumTiles, s.stream, new KernelArgs().pointer(s.values[i])
                        .pointer(s.values[j]).pointer(s.values[models]).i32(count)
                        .pointer(s.squares + row * sumTiles * 8));
            }
        }
    }

    @Override
    public PendingChunk encodeOut(Dtype dtype, int count) {
        BufferSet s = set();
        if (s.metrics == null) {
            throw new IllegalStateException("encodeOut() before a merge in this chunk");
        }
        long bytes = (long) count * dtype.byteSize();
        if (count > 0) {
            // The spare buffer holds no model's values once the merge is queued.
            device.launch(Kernel.ENCODE, count, s.stream,
                    new KernelArgs().pointer(s.out).i32(dtypeCode(dtype)).pointer(s.spare).i32(count));
            device.download(s.encodedHost, s.spare, bytes, s.stream);
            if (s.terms != null) {
                device.download(s.countersHost, s.kept, (long) (models + 1) * Kernel.LANES * 8, s.stream);
                device.download(s.squaresHost, s.squares, (long) figureRows(models) * s.squareTiles * 8, s.stream);
            } else if (s.observed && hasBase) {
                device.download(s.squaresHost, s.squares, (long) figureRows(models) * s.squareTiles * 8, s.stream);
            }
        }
        s.pending = true;
        return s::finish;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        release();
    }

    private void release() {
        RuntimeException failure = null;
        for (BufferSet s : sets) {
            if (s != null && s.stream != null) {
                try {
                    s.stream.synchronize();
                } catch (RuntimeException e) {
                    failure = failure == null ? e : failure;
                }
            }
        }
        for (Long address : deviceBuffers) {
            try {
                device.free(address);
            } catch (RuntimeException e) {
                failure = failure == null ? e : failure;
            }
        }
        deviceBuffers.clear();
        for (BufferSet s : sets) {
            if (s != null) {
                s.closeHost();
            }
        }
        budget.release(reserved);
        allocator.close();
        if (failure != null) {
            throw failure;
        }
    }

    private long deviceBuffer(long bytes) {
        long address = device.allocate(Math.max(bytes, 8));
        deviceBuffers.add(address);
        return address;
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }

    /** One chunk's buffers, stream and in-flight state. */
    private final class BufferSet {
        final Device.Stream stream;
        final ArrowBuf[] rawHost = new ArrowBuf[slots];
        final long[] raw = new long[slots];
        final long[] values = new long[slots];
        final ArrowBuf[] scalesHost = new ArrowBuf[slots];
        final long[] scales = new long[slots];
        final List<ArrowBuf> host = new ArrayList<>();
        /** A LoRA adapter's factors for the chunk (A, then B's rows), grown as adapters need. */
        ArrowBuf factorsHost;
        long factors;
        long factorsCapacity;
        ArrowBuf encodedHost;
        ArrowBuf histogramHost;
        ArrowBuf countersHost;
        ArrowBuf squaresHost;
        ArrowBuf paramsHost;
        long spare;
        long delta;
        long out;
        long lowPrefix;
        long highPrefix;
        long squares;
        long kept;
        long bins;
        long dotBins;
        long counts;
        long histogram;
        long params;
        int squareTiles;
        /** Whether the chunk's merge keeps every entry of every model (the composed methods). */
        boolean observed;
        /** The model whose delta {@link #delta} holds for this chunk, -1 for none. */
        /** The operand the delta buffer holds (null: none): a model's delta or a derived quantity. */
        Operand held;
        /** Whether the output buffer holds the chunk's selection. */
        boolean selection;
        boolean pending;
        ChunkMetrics metrics;
        TaskVectorKernel.ModelTerm[] terms;
        int count;

        BufferSet() {
            stream = device.newStream();
            try {
                allocate();
            } catch (RuntimeException | Error e) {
                closeHost();
                throw e;
            }
        }

        /** Room for {@code bytes} of factors, on the host and the device; the stream is idle. */
        void ensureFactors(long bytes) {
            if (bytes <= factorsCapacity) {
                return;
            }
            long capacity = Math.max(bytes, 2 * factorsCapacity);
            if (factorsHost != null) {
                host.remove(factorsHost);
                factorsHost.close();
                deviceBuffers.remove((Long) factors);
                device.free(factors);
            }
            factorsHost = hostBuffer(capacity);
            factors = deviceBuffer(capacity);
            factorsCapacity = capacity;
        }

        private void allocate() {
            long floats = (long) maxCount * 4;
            for (int slot = 0; slot < slots; slot++) {
                if (slot == models && !hasBase) {
                    continue;
                }
                rawHost[slot] = hostBuffer(floats);
                raw[slot] = deviceBuffer(floats);
                values[slot] = deviceBuffer(floats);
                scalesHost[slot] = hostBuffer(scaleCapacity(maxCount));
                scales[slot] = deviceBuffer(scaleCapacity(maxCount));
            }
            spare = deviceBuffer(floats);
            delta = deviceBuffer(floats);
            out = deviceBuffer(floats);
            int rankTiles = ceilDiv(maxCount, Kernel.RANK_TILE);
            int sumTiles = ceilDiv(maxCount, Kernel.SUM_TILE);
            lowPrefix = deviceBuffer((long) rankTiles * 8);
            highPrefix = deviceBuffer((long) rankTiles * 8);
            squares = deviceBuffer((long) figureRows(models) * sumTiles * 8);
            kept = deviceBuffer((long) (models + 1) * Kernel.LANES * 8);
            bins = deviceBuffer((long) Kernel.LANES * 256 * 8 + 8);
            histogram = deviceBuffer((long) MagnitudeHistogram.BINS * 8);
            params = deviceBuffer((long) (models + 1) * 24);
            dotBins = deviceBuffer((long) Kernel.DOT_BINS * Kernel.LANES * 8 + 16);
            counts = deviceBuffer((long) Math.max(2 * models, 1) * Kernel.LANES * 8);
            encodedHost = hostBuffer(floats);
            histogramHost = hostBuffer(Math.max((long) MagnitudeHistogram.BINS * 8,
                    Math.max((long) rankTiles * 8, (long) Kernel.LANES * 256 * 8 + 8)));
            countersHost = hostBuffer((long) (models + 1) * Kernel.LANES * 8);
            squaresHost = hostBuffer(Math.max(8, (long) figureRows(models) * sumTiles * 8));
            paramsHost = hostBuffer((long) (models + 1) * 24);
        }

        private ArrowBuf hostBuffer(long bytes) {
            ArrowBuf b = device.allocateHost(allocator, Math.max(bytes, 8));
            host.add(b);
            return b;
        }

        void expect(ChunkMetrics chunkMetrics, int chunkCount, TaskVectorKernel.ModelTerm[] chunkTerms) {
            metrics = chunkMetrics;
            count = chunkCount;
            terms = chunkTerms;
            observed = false;
            // The merge writes the output buffer, where a selection would live.
            selection = false;
        }

        void expectObserved(ChunkMetrics chunkMetrics, int chunkCount) {
            expect(chunkMetrics, chunkCount, null);
            observed = true;
        }

        ArrowBuf finish() {
            if (!pending) {
                throw new IllegalStateException("this chunk was already awaited");
            }
            stream.synchronize();
            pending = false;
            if (count > 0 && terms != null) {
                for (int i = 0; i < models; i++) {
                    if (terms[i].keep() instanceof KeepRule.All) {
                        metrics.kept[i] += count;
                    } else {
                        metrics.kept[i] += lanes(i);
                    }
                    double squaresSum = 0;
                    for (int t = 0; t < squareTiles; t++) {
                        squaresSum += squaresHost.getDouble(((long) i * squareTiles + t) * 8);
                    }
                    metrics.deltaSquares[i] += squaresSum;
                }
                addDots();
                metrics.signConflicts += lanes(models);
            } else if (count > 0 && observed) {
                for (int i = 0; i < models; i++) {
                    metrics.kept[i] += count;
                    double squaresSum = 0;
                    for (int t = 0; hasBase && t < squareTiles; t++) {
                        squaresSum += squaresHost.getDouble(((long) i * squareTiles + t) * 8);
                    }
                    metrics.deltaSquares[i] += squaresSum;
                }
                if (hasBase) {
                    addDots();
                }
            }
            metrics.elements += count;
            metrics = null;
            terms = null;
            return encodedHost;
        }

        private void addDots() {
            for (int p = 0; p < metrics.deltaDots.length; p++) {
                double sum = 0;
                for (int t = 0; t < squareTiles; t++) {
                    sum += squaresHost.getDouble(((long) (models + p) * squareTiles + t) * 8);
                }
                metrics.deltaDots[p] += sum;
            }
        }

        private long lanes(int counter) {
            long total = 0;
            for (int lane = 0; lane < Kernel.LANES; lane++) {
                total += countersHost.getLong(((long) counter * Kernel.LANES + lane) * 8);
            }
            return total;
        }

        void closeHost() {
            if (stream != null) {
                stream.close();
            }
            for (ArrowBuf b : host) {
                b.close();
            }
            host.clear();
        }
    }
}
