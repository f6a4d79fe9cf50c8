package dev.amalgam.job;

import java.util.Locale;
import java.util.Optional;

/**
 * What NaN and infinite values in the inputs or the merged result do to a run. They are counted
 * either way (in the pass that already reads the inputs and the one that writes the result) and
 * reported per tensor and model.
 */
public enum NonFinitePolicy {
    /**
     * The default: the run fails before publishing, naming models, tensors and counts. A NaN
     * spreads through every method that sums (TIES, task arithmetic, linear) and an infinity
     * through every norm, so the published checkpoint would be silently broken; the finished
     * chunks are kept, and a rerun with {@link #WARN} publishes them without merging again.
     */
    ERROR,
    /** Publish, and print the counts as warnings. */
    WARN,
    /** Publish, counts only in the report. */
    ALLOW;

    public static Optional<NonFinitePolicy> parse(String text) {
        try {
            return Optional.of(valueOf(text.trim().toUpperCase(Locale.ROOT)));
        } catch (IllegalArgumentException e) {
            return Optional.empty();
        }
    }

    public String cliName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
