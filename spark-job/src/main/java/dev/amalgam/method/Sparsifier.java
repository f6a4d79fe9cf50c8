package dev.amalgam.method;

import dev.amalgam.kernels.CounterRandom;
import dev.amalgam.kernels.KeepRule;

/**
 * How one model's delta is thinned out (METHODS.md, "Sparsifiers"). A sparsifier names the
 * order statistics it needs as positions in the ascending |delta| order (two slots, -1 when a
 * slot is unused) and turns their values into a {@link KeepRule} for a chunk.
 */
public enum Sparsifier {
    NONE, MAGNITUDE, RANDOM, MAGNITUDE_OUTLIERS, DELLA_MAGPRUNE;

    public static final long UNUSED = -1;

    public boolean sparsifies(double density) {
        return this != NONE && density < 1.0;
    }

    /**
     * Magnitude top-k: {@code floor(density * n)} in double, of the density as the config wrote
     * it (a float32 density would keep a different count once n passes about 1e7: 0.3 as float32
     * is 0.30000001192..., 15 entries too many at 1.25e9).
     */
    public static long keepCount(double density, long n) {
        return (long) Math.floor(density * n);
    }

    /** Ascending positions whose values the rule needs; {@link #UNUSED} for a slot not needed. */
    public long[] orderPositions(long n, double density, double gamma) {
        if (!sparsifies(density) || n == 0) {
            return new long[]{UNUSED, UNUSED};
        }
        return switch (this) {
            case MAGNITUDE -> new long[]{n - keepCount(density, n), UNUSED};
            case MAGNITUDE_OUTLIERS -> {
                long[] band = outlierBand(density, gamma, n);
                yield new long[]{band[0] > 0 && band[0] < n ? band[0] : UNUSED, band[1] < n ? band[1] : UNUSED};
            }
            default -> new long[]{UNUSED, UNUSED};
        };
    }

    /** Breadcrumbs keeps ascending positions {@code [bot, n - top)}. */
    static long[] outlierBand(double density, double gamma, long n) {
        long target = keepCount(density, n);
        long top = (long) Math.floor(gamma * n);
        long bot = n - target - top;
        if (bot < 0) {
            top += bot;
            bot = 0;
        }
        return new long[]{bot, n - top};
    }

    /**
     * The chunk's keep rule, from the tensor's order statistics at the positions (per slot) and
     * how many entries equal to each slot's value precede the chunk.
     */
    public KeepRule rule(String tensor, long n, int cols, int model, double density, double gamma, double epsilon,
                         OrderStatistic[] stats, long[] equalsBefore, long seed) {
        if (!sparsifies(density) || n == 0) {
            return new KeepRule.All();
        }
        long[] positions = orderPositions(n, density, gamma);
        return switch (this) {
            case MAGNITUDE -> {
                yield stats[0].keepFrom(positions[0], equalsBefore[0]);
            }
            case MAGNITUDE_OUTLIERS -> {
                long[] band = outlierBand(density, gamma, n);
                if (band[0] >= band[1]) {
                    // An empty band: nothing survives. Express it as a top-k of nothing above
                    // the largest possible magnitude.
                    yield OrderStatistic.KEEP_NOTHING;
                }
                boolean hasLow = positions[0] != UNUSED;
                boolean hasHigh = positions[1] != UNUSED;
                yield new KeepRule.Band(
                        hasLow, hasLow ? stats[0].valueBits() : 0,
                        hasLow ? positions[0] - stats[0].below() : 0, equalsBefore[0],
                        hasHigh, hasHigh ? stats[1].valueBits() : 0,
                        hasHigh ? positions[1] - stats[1].below() : 0, equalsBefore[1]);
            }
            // Probabilities are float32, as the widely used tool draws them; only counts need double.
            case RANDOM -> new KeepRule.Random((float) density, CounterRandom.streamKey(seed, tensor, model));
            case DELLA_MAGPRUNE -> {
                float low = (float) density - (float) epsilon;
                yield new KeepRule.DellaRows(low, 2.0f * (float) epsilon, cols, CounterRandom.streamKey(seed, tensor, model));
            }
            case NONE -> new KeepRule.All();
        };
    }
}
