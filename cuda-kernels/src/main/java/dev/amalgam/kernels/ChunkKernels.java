package dev.amalgam.kernels;

import org.apache.arrow.memory.ArrowBuf;

/**
 * One task's kernel working set on one backend: the float32 values of a chunk's inputs and
 * output live here (in off-heap memory for the CPU, in device memory for a GPU), and every
 * statistic and merge a method needs runs here. The Spark side only reads stored bytes into
 * {@link #input} and writes the bytes {@link #encodeOut} returns.
 *
 * <p>Slots: models {@code 0..models-1} in config order, then the base (slot {@code models}).
 * Statistics operations work on a model's delta against the base and leave the model's values
 * for the merge. A chunk's work starts with {@link #beginChunk}; up to {@link #inFlightLimit}
 * chunks may be between {@code beginChunk} and {@link PendingChunk#await} at once (a GPU
 * overlaps the copies of one chunk with the kernels of the other).
 */
public interface ChunkKernels extends AutoCloseable {

    /** Which backend runs the kernels, for logs and run reports ("cpu", "cuda:0"). */
    String backend();

    /** How many chunks may be in flight; 1 means every chunk finishes before the next begins. */
    int inFlightLimit();

    /** Starts a chunk: the following calls fill and use a free set of buffers. */
    void beginChunk();

    /**
     * Host memory to read one input's stored bytes into (at least {@code count * 4} bytes);
     * its contents are consumed by {@link #decode} for the same slot.
     */
    ArrowBuf input(int slot);

    /** Decodes {@code count} stored elements of {@code dtype} from {@link #input}{@code (slot)}. */
    void decode(int slot, Dtype dtype, int count);

    /**
     * Decodes the raw bytes read into {@link #input} for {@code slot}, a block-quantized layout
     * (FP8 with block scales, MXFP4), with the chunk's {@code scales} ({@link Primitive#DEQUANTIZE}).
     */
    default void decodeScaled(int slot, Dtype dtype, int count, BlockScales scales) {
        throw new UnsupportedOperationException(backend() + " kernels do not dequantize " + dtype.safetensorsName());
    }

    /**
     * Adds the high-16-bit histogram of |a| into {@code histogram}: {@code a} is a model's
     * {@link Operand.Delta} or a derived quantity ({@link Operand.Variance}, {@link Operand.Importance}).
     */
    void histogramHigh(Operand a, int count, long[] histogram);

    /** Adds the low-16-bit histogram of the |a| entries inside {@code highBucket}. */
    void histogramLow(Operand a, int count, int highBucket, long[] histogram);

    /** How many |a| entries have exactly the bit pattern {@code valueBits}. */
    long countEqual(Operand a, int count, int valueBits);

    /**
     * Adds the exact bit patterns of the |a| entries whose high bucket is one of {@code buckets}
     * (ascending; {@code slotOf[bucket]} is its index there, -1 for the others) into
     * {@code band[slot << 16 | low 16 bits]}. By default one low histogram per bucket; a backend
     * may do it in one sweep.
     */
    default void histogramBand(Operand a, int count, int[] buckets, int[] slotOf, int[] band) {
        long[] low = new long[MagnitudeHistogram.BINS];
        for (int slot = 0; slot < buckets.length; slot++) {
            java.util.Arrays.fill(low, 0);
            histogramLow(a, count, buckets[slot], low);
            for (int i = 0; i < low.length; i++) {
                band[(slot << 16) | i] += (int) low[i];
            }
        }
    }

    /** Adds the exact L1 sums of model {@code model}'s delta before and after {@code rule}. */
    void magnitudeSums(int model, int count, long chunkStart, KeepRule rule, ExactSum all, ExactSum kept);

    /** The task-vector family's merge of the decoded chunk (see {@link TaskVectorKernel}). */
    void mergeTaskVector(int count, long chunkStart, TaskVectorKernel.ModelTerm[] terms,
                         TaskVectorKernel.Consensus consensus, boolean normalize, float lambda, ChunkMetrics metrics);

    /** {@code linear}: the weighted sum of the models (see {@link LinearKernel}). */
    void mergeLinear(int count, float[] weights, boolean normalize, ChunkMetrics metrics);

    /** The primitives this working set runs (see {@link Primitive}); the others throw. */
    java.util.Set<Primitive> primitives();

    /** Adds the exact {@code sum a*b} over the chunk into {@code into} ({@link Primitive#DOT}). */
    default void dot(Operand a, Operand b, int count, ExactDot into) {
        throw unsupported(Primitive.DOT);
    }

    /** How many entries of {@code a} are not zero ({@link Primitive#COUNT}). */
    default long countNonzero(Operand a, int count) {
        throw unsupported(Primitive.COUNT);
    }

    /** Per row of {@code cols}: {@code sum a*b}, each row whole in index order ({@link Primitive#ROW_DOT}). */
    default void rowDots(Operand a, Operand b, int count, int cols, float[] into) {
        throw unsupported(Primitive.ROW_DOT);
    }

    /** {@code out = [base +] sum_k c_k term_k}, left to right ({@link Primitive#COMBINE}). */
    default void combine(Operand[] terms, float[] coefficients, boolean plusBase, int count, ChunkMetrics metrics) {
        throw unsupported(Primitive.COMBINE);
    }

    /** As {@link #combine} with {@code coefficients[term][row]} ({@link Primitive#COMBINE_ROWS}). */
    default void combineRows(Operand[] terms, float[][] coefficients, int cols, boolean plusBase, int count,
                             ChunkMetrics metrics) {
        throw unsupported(Primitive.COMBINE_ROWS);
    }

    /**
     * Per column of a chunk of {@code columns}-wide rows: {@code sum a*b} down the column, in
     * double in row order, rounded once ({@link Primitive#COLUMN_DOT}).
     */
    default void columnDots(Operand a, Operand b, int count, int columns, float[] into) {
        throw unsupported(Primitive.COLUMN_DOT);
    }

    /** As {@link #combine} with {@code coefficients[term][column]} ({@link Primitive#COMBINE_COLUMNS}). */
    default void combineColumns(Operand[] terms, float[][] coefficients, int columns, boolean plusBase, int count,
                                ChunkMetrics metrics) {
        throw unsupported(Primitive.COMBINE_COLUMNS);
    }

    /**
     * Applies a LoRA adapter to the decoded values of {@code slot} ({@link Primitive#LOW_RANK}; see
     * {@link LowRankKernel}), before any merge reads them.
     */
    default void addLowRank(int slot, LowRankFactors factors, int count, long chunkStart) {
        throw unsupported(Primitive.LOW_RANK);
    }

    /**
     * Model 0's values as they are ({@code factor} null: the output is the input, signed zeros
     * and NaN payloads included) or each times {@code factor} ({@link Primitive#SCALE}).
     */
    default void scale(Float factor, int count, ChunkMetrics metrics) {
        throw unsupported(Primitive.SCALE);
    }

    /** nearswap of model 0 towards the base ({@link Primitive#NEARSWAP}). */
    default void nearswap(float t, int count, ChunkMetrics metrics) {
        throw unsupported(Primitive.NEARSWAP);
    }

    /** RAM (uniqueScales null) or RAM+ ({@link Primitive#RAM}). */
    default void ram(float epsilon, float[] uniqueScales, int count, ChunkMetrics metrics) {
        throw unsupported(Primitive.RAM);
    }

    /**
     * Sets the chunk's selection: the positions of {@code rankedBy} that {@code rule} keeps
     * (a top-k of a derived quantity, say), read by {@link Operand.Selected} operands and by
     * {@link #sce} until the chunk's merge writes its output ({@link Primitive#SELECT}).
     */
    default void select(Operand rankedBy, KeepRule rule, long chunkStart, int count) {
        throw unsupported(Primitive.SELECT);
    }

    /**
     * SCE's weighted consensus of the models' deltas, restricted to the chunk's selection when
     * {@code selected} ({@link Primitive#SCE}; see {@link ComposedKernels#sce}).
     */
    default void sce(float[] weights, boolean selected, int count, ChunkMetrics metrics) {
        throw unsupported(Primitive.SCE);
    }

    /** arcee_fusion: the model's values where its importance reaches {@code threshold} ({@link Primitive#FUSE}). */
    /**
     * The chunk's sum of {@code sign(S)}, {@code S = sum_i w_i t_i} the models' weighted deltas
     * after their keep rules ({@code terms}' rescale is not applied): paper TIES' majority sign
     * where {@code S} is 0 is the sign of this sum over the whole model. Inputs are left as decoded.
     */
    default long consensusSigns(TaskVectorKernel.ModelTerm[] terms, long chunkStart, int count) {
        throw unsupported(Primitive.TIES_MODEL);
    }

    /**
     * Paper TIES: {@code v_i = w_i t_i}, {@code S = sum_i v_i}, {@code m = sign(S)} or
     * {@code tieSign} where {@code S == 0}; {@code out = b + lambda * (sum of v_i != 0 with sign m)
     * / max(their count, 1)}, float32, models in config order.
     */
    default void mergeTiesModel(TaskVectorKernel.ModelTerm[] terms, int tieSign, float lambda, long chunkStart,
                                int count, ChunkMetrics metrics) {
        throw unsupported(Primitive.TIES_MODEL);
    }

    /**
     * Fisher-weighted averaging: with {@code F_i} in companion slot {@code models + 1 + i},
     * {@code c_i F_i} per element ({@code F_i} floored at {@code floor} for model 0, or for every
     * model without {@code favorTarget}), {@code out = sum c_i F_i x_i / sum c_i F_i}.
     */
    default void fisher(float[] coefficients, float floor, boolean favorTarget, int count, ChunkMetrics metrics) {
        throw unsupported(Primitive.FISHER);
    }

    /**
     * OTA: with second moments {@code v_i} in companion slot {@code models + 1 + i}, per element
     * {@code p_i = sqrt(v_i + epsilon) + epsilon} and {@code out = (sum p_i x_i) / (sum p_i)},
     * float32, models in config order, sums from +0.
     */
    default void ota(float epsilon, int count, ChunkMetrics metrics) {
        throw unsupported(Primitive.OTA);
    }

    /**
     * Fast Fisher Grafting of model 0: {@code out = b + d} where {@code keep} keeps the position of
     * {@code salience} (its top k, zero scores included), else {@code b}.
     */
    default void graft(Operand.Salience salience, KeepRule.TopK keep, int count, ChunkMetrics metrics) {
        throw unsupported(Primitive.GRAFT);
    }

    /**
     * WIDEN on a tensor without rows and columns to disentangle: per element the models' {@code |d_i|}
     * scored by {@link ComposedKernels#widenScores} against {@code thresholds[i]}, and
     * {@code out = b + sum_i d_i s_i} (the sum from the first term, models in config order).
     */
    default void widenElements(float[] thresholds, float calibration, int count, ChunkMetrics metrics) {
        throw unsupported(Primitive.WIDEN);
    }

    /**
     * PCB-merging: per model {@code i} the balance {@code pcb_i} against {@code lo[i], hi[i]}
     * (its |delta| clamp), the scale {@code (max(pcb_i, low[i]) - low[i]) / (high[i] - low[i])}
     * (0 when {@code high[i] <= low[i]}) and the clamped delta {@code sign(d_i) clamp(|d_i|)};
     * {@code out = b + lambda * (sum scale_i t_i) / max(sum scale_i, 1e-12)}
     * ({@link ComposedKernels#pcb}).
     */
    default void pcb(float[] lo, float[] hi, float[] low, float[] high, float lambda, int count, ChunkMetrics metrics) {
        throw unsupported(Primitive.PCB);
    }

    /**
     * Consensus merging: the multi-task vector {@code tv} (task arithmetic {@code sum w_i t_i}, or
     * with {@code ties} paper TIES over {@code v_i = w_i t_i} with {@code tieSign} where the total
     * is 0; {@code t_i} the delta after the term's keep rule), each task's TALL mask
     * {@code |x_i - b| > |(b + tv) - x_i| * lambda_i}, and {@code out = b + alpha * (tv where at
     * least minTasks masks hold, else 0)}.
     */
    default void consensus(TaskVectorKernel.ModelTerm[] terms, boolean ties, int tieSign, float[] tallLambdas,
                           int minTasks, float alpha, long chunkStart, int count, ChunkMetrics metrics) {
        throw unsupported(Primitive.CONSENSUS);
    }

    /**
     * Adds {@code |out|} (or {@code |out - b|} with {@code minusBase}, the difference in float32)
     * over the chunk's output buffer, as the last primitive left it, into {@code into}.
     */
    default void outputMagnitudes(boolean minusBase, int count, ExactSum into) {
        throw unsupported(Primitive.OUTPUT_SUM);
    }

    /** Exact signed {@code sum a} over the chunk, added into {@code into}. */
    default void sum(Operand a, int count, ExactDot into) {
        throw unsupported(Primitive.SUM);
    }

    /**
     * VaRM at element granularity: per element {@code f_i = f(x_i - b)} ({@code variation} 0
     * square, 1 abs, 2 signed), weights {@code f_i / max(sum_j f_j, 1e-13)} or, with
     * {@code softmax}, {@code exp(f_i / T - max) / sum}; {@code out = sum_i w_i x_i}.
     */
    default void varmElement(int variation, boolean softmax, float temperature, int count, ChunkMetrics metrics) {
        throw unsupported(Primitive.VARM);
    }

    default void fuse(float threshold, int cols, int count, ChunkMetrics metrics) {
        throw unsupported(Primitive.FUSE);
    }

    private UnsupportedOperationException unsupported(Primitive p) {
        return new UnsupportedOperationException(backend() + " has no " + p + " kernel; the plan should have "
                + "chosen a backend that declares it");
    }

    /** Encodes the merged chunk as {@code dtype}; the bytes and the metrics are ready at {@link PendingChunk#await}. */
    PendingChunk encodeOut(Dtype dtype, int count);

    /** Frees every buffer; fails loudly if something was leaked. */
    @Override
    void close();

    /** A chunk whose merge has been started. */
    interface PendingChunk {
        /** Waits for the chunk; returns its encoded bytes, valid until this buffer set's next chunk. */
        ArrowBuf await();
    }
}
