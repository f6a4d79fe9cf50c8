package dev.amalgam.merge;

import dev.amalgam.kernels.CounterRandom;
import dev.amalgam.kernels.KeepRule;
import dev.amalgam.plan.ModelParameters;
import dev.amalgam.plan.TensorPlan;

/**
 * How one model's delta is thinned out (METHODS.md, "Sparsifiers"). A sparsifier names the
 * order statistics it needs as positions in the ascending |delta| order (two slots, -1 when a
 * slot is unused) and turns their values into a {@link KeepRule} for a chunk.
 */
public enum Sparsifier {
    NONE, MAGNITUDE, RANDOM, MAGNITUDE_OUTLIERS, DELLA_MAGPRUNE;

    public static final long UNUSED = -1;

    public boolean sparsifies(ModelParameters p) {
        return this != NONE && p.density() < 1.0f;
    }

    /** Magnitude top-k: {@code floor(density * n)} in double, as METHODS.md fixes it. */
    public static long keepCount(float density, long n) {
        return (long) Math.floor((double) density * n);
    }

    public long[] orderPositions(TensorPlan t, ModelParameters p) {
        long n = t.elements();
        if (!sparsifies(p) || n == 0) {
            return new long[]{UNUSED, UNUSED};
        }
        return switch (this) {
            case MAGNITUDE -> new long[]{n - keepCount(p.density(), n), UNUSED};
            case MAGNITUDE_OUTLIERS -> {
                long[] band = outlierBand(p, n);
                yield new long[]{band[0] > 0 && band[0] < n ? band[0] : UNUSED, band[1] < n ? band[1] : UNUSED};
            }
            default -> new long[]{UNUSED, UNUSED};
        };
    }

    /** Breadcrumbs keeps ascending positions {@code [bot, n - top)}. */
    static long[] outlierBand(ModelParameters p, long n) {
        long target = keepCount(p.density(), n);
        long top = (long) Math.floor((double) p.gamma() * n);
        long bot = n - target - top;
        if (bot < 0) {
            top += bot;
            bot = 0;
        }
        return new long[]{bot, n - top};
    }

    /**
     * The chunk's keep rule, from the tensor's order statistics (per slot) and how many
     * entries equal to each slot's value precede the chunk.
     */
    public KeepRule rule(TensorPlan t, int model, OrderStatistic[] stats, long[] equalsBefore, long seed) {
        ModelParameters p = t.parameters()[model];
        if (!sparsifies(p) || t.elements() == 0) {
            return new KeepRule.All();
        }
        long n = t.elements();
        long[] positions = orderPositions(t, p);
        return switch (this) {
            case MAGNITUDE -> {
                OrderStatistic s = stats[0];
                yield new KeepRule.TopK(s.valueBits(), s.equal() - (positions[0] - s.below()), equalsBefore[0]);
            }
            case MAGNITUDE_OUTLIERS -> {
                long[] band = outlierBand(p, n);
                if (band[0] >= band[1]) {
                    // An empty band: nothing survives. Express it as a top-k of nothing above
                    // the largest possible magnitude.
                    yield new KeepRule.TopK(Integer.MAX_VALUE, 0, 0);
                }
                boolean hasLow = positions[0] != UNUSED;
                boolean hasHigh = positions[1] != UNUSED;
                yield new KeepRule.Band(
                        hasLow, hasLow ? stats[0].valueBits() : 0,
                        hasLow ? positions[0] - stats[0].below() : 0, equalsBefore[0],
                        hasHigh, hasHigh ? stats[1].valueBits() : 0,
                        hasHigh ? positions[1] - stats[1].below() : 0, equalsBefore[1]);
            }
            case RANDOM -> new KeepRule.Random(p.density(), CounterRandom.streamKey(seed, t.name(), model));
            case DELLA_MAGPRUNE -> new KeepRule.DellaRows(p.density() - p.epsilon(), 2.0f * p.epsilon(), t.cols(),
                    CounterRandom.streamKey(seed, t.name(), model));
            case NONE -> new KeepRule.All();
        };
    }
}
