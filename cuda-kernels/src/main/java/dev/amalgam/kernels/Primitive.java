package dev.amalgam.kernels;

/**
 * The kernel primitives a merge method's chunk work is composed of. Every backend declares the
 * ones it runs ({@link KernelBackend#primitives()}); a plan that needs one a backend lacks runs on
 * the CPU instead, decided before any task starts.
 */
public enum Primitive {
    /** Stored bytes to float32 and back: {@code decode}, {@code encodeOut}. */
    CODEC,
    /** Block-quantized inputs (FP8 with block scales, MXFP4) to float32 with their scales. */
    DEQUANTIZE,
    /** Radix histograms and equal counts of |delta|: exact order statistics. */
    DELTA_ORDER,
    /** Exact L1 sums of a delta before and after a keep rule: rescale factors. */
    KEPT_ABS_SUM,
    /** The task-vector family's sparsify-weight-consensus merge. */
    TASK_VECTOR,
    /** Weighted sum of the models. */
    LINEAR,
    /** One model's values as they are, or times a factor: passthrough. */
    SCALE,
    /** A LoRA adapter applied to a decoded input as it is read: {@code W + s * B A}, rounded to its dtype. */
    LOW_RANK,
    /** Exact signed sums of products over a chunk (norms, dot products, sums). */
    DOT,
    /** Counts of non-zero entries of an operand. */
    COUNT,
    /** Dot products per row, each row summed whole in index order. */
    ROW_DOT,
    /** {@code [base +] sum_k c_k v_k} with per-tensor coefficients. */
    COMBINE,
    /** The same with one coefficient per term and row. */
    COMBINE_ROWS,
    /** nearswap's per-element interpolation by distance. */
    NEARSWAP,
    /** RAM's contribution-counted average of deltas. */
    RAM,
    /** The per-element variance across the models' deltas as an operand (SCE). */
    VARIANCE,
    /** A chunk's selection by a keep rule over an operand, and deltas restricted to it. */
    SELECT,
    /** SCE's weighted sign-consensus merge. */
    SCE,
    /** arcee_fusion's per-row KL importance as an operand. */
    IMPORTANCE,
    /** arcee_fusion's merge by an importance threshold. */
    FUSE,
    /** Dot products per column (vectors along the first dimension), each summed whole in row order. */
    COLUMN_DOT,
    /** {@code [base +] sum_k c_k v_k} with one coefficient per term and column. */
    COMBINE_COLUMNS,
    /**
     * TIES as its paper defines it: the sign sum of the trimmed weighted deltas' total (its
     * whole-model majority), and the merge averaging agreeing entries by their count.
     */
    TIES_MODEL,
    /** Exact signed sums of an operand. */
    SUM,
    /** Consensus merging (TALL masks): the multi-task vector kept where enough tasks' masks agree. */
    CONSENSUS,
    /** Exact L1 sums of the working set's output (a method's own combination, or its merge minus the base). */
    OUTPUT_SUM,
    /** Input slots after the base for companion checkpoints (Fisher diagonals, second moments). */
    COMPANIONS,
    /** Fisher-weighted averaging with per-element diagonals. */
    FISHER,
    /** VaRM's per-element weights from the models' variations, and their weighted sum of the models. */
    VARM,
    /** OTA's curvature-weighted average: per element, weights {@code sqrt(v_i + eps) + eps} from second moments. */
    OTA,
    /**
     * Fast Fisher Grafting: a delta's salience {@code d^2 v} (second moment {@code v}) as an operand,
     * and the graft of the delta where an exact top-k of it keeps the position.
     */
    GRAFT,
    /** WIDEN's element path: per element, scores from the models' |delta| and the merged deltas they weigh. */
    WIDEN,
    /** PCB-merging's balance as an operand (by sign), and its balanced, clamped merge. */
    PCB
}
