package dev.amalgam.kernels;

/**
 * A per-element quantity of a chunk that a statistic reduces: computed by the backend's
 * primitives from the chunk's decoded inputs, never stored beyond the chunk.
 */
public sealed interface Operand {

    /** Model {@code model}'s delta against the base, {@code x_i - b}. */
    record Delta(int model) implements Operand {
    }

    /** A decoded input: models {@code 0..models-1}, then the base at slot {@code models}. */
    record Value(int slot) implements Operand {
    }

    /** Model {@code model}'s delta after the method's keep rule for the chunk (the caller supplies the rule). */
    record KeptDelta(int model) implements Operand {
    }

    /**
     * Model {@code model}'s entries that contribute ({@code |d_i| > epsilon}) where {@code shared}
     * says how many models contribute: more than one ({@code true}) or exactly this one.
     * Reduced by a count of non-zeros it is RAM's shared or unique count.
     */
    record Contribution(int model, float epsilon, boolean shared) implements Operand {
    }

    /** Per element, the population variance of the models' deltas (SCE), float32. */
    record Variance() implements Operand {
    }

    /** Model {@code model}'s delta where the chunk's selection ({@link ChunkKernels#select}) keeps the position, else 0. */
    record Selected(int model) implements Operand {
    }

    /**
     * Per element, TIES' total of the models' weighted trimmed deltas {@code S = sum_i w_i t_i}
     * (config order, float32); the chunk's terms (weights and keep rules) come from the method.
     */
    record Consensus() implements Operand {
    }

    /**
     * A quantity the method itself writes into the working set's output for a statistic
     * ({@code MergeMethod.output}), numbered by the method: LiNeS sums |sum_i w_i d_i| (0) and
     * |merged delta| (1).
     */
    record Output(int which) implements Operand {
    }

    /**
     * Model {@code model}'s salience against the base, {@code (d * d) * v} in float32 with {@code v}
     * the decoded input at {@code slot} (its second-moment companion): Fast Fisher Grafting's score.
     */
    record Salience(int model, int slot) implements Operand {
    }

    /**
     * PCB-merging's balance of model {@code model}, {@code pcb_i = exp(M s_i^2) tanh(d_i S)} with
     * {@code s_i} its |delta| clamped to {@code [lo, hi]} and normalized, {@code S} the sum of all
     * deltas ({@link ComposedKernels#balance}), split by sign so that order statistics of |x|
     * order it: {@code positive} gives {@code max(pcb, 0)}, otherwise {@code max(-pcb, 0)}.
     */
    record Balance(int model, float lo, float hi, boolean positive) implements Operand {
    }

    /**
     * arcee_fusion's importance of model 0 against the base: {@code |x - b|} times the KL
     * divergence of its row of {@code cols} (chunks hold whole rows).
     */
    record Importance(int cols) implements Operand {
    }
}
