package dev.amalgam.kernels;

import org.apache.arrow.memory.ArrowBuf;

/**
 * Which entries of one model's delta survive sparsification, for one chunk. A rule is built
 * from tensor-wide statistics (thresholds, equal-value ranks) so that the chunk decides alone
 * and every chunking of a tensor keeps the same entries.
 *
 * <p>Magnitudes are compared as the bit patterns of |delta| (sign bit cleared), which order
 * exactly like the values for non-negative floats and need no float comparison.
 */
public sealed interface KeepRule
        permits KeepRule.All, KeepRule.TopK, KeepRule.Band, KeepRule.Random, KeepRule.DellaRows {

    /**
     * Sets the dropped entries of {@code delta[0, count)} to +0.0 in place.
     *
     * @param chunkStart flat index in the tensor of {@code delta[0]}
     * @return how many entries were kept
     */
    long apply(ArrowBuf delta, int count, long chunkStart, KernelScratch scratch);

    static int magnitudeBits(float value) {
        return Float.floatToRawIntBits(value) & 0x7fffffff;
    }

    /** Density 1: the delta is left as it is. */
    record All() implements KeepRule {
        @Override
        public long apply(ArrowBuf delta, int count, long chunkStart, KernelScratch scratch) {
            return count;
        }
    }

    /**
     * Exact top-k by magnitude: keeps every |d| above {@code thresholdBits}, and of the entries
     * equal to it the first {@code equalsToKeep} in flat-index order. {@code equalsBefore} is
     * how many entries equal to the threshold precede this chunk in the tensor.
     */
    record TopK(int thresholdBits, long equalsToKeep, long equalsBefore) implements KeepRule {
        @Override
        public long apply(ArrowBuf delta, int count, long chunkStart, KernelScratch scratch) {
            return apply(Simd.ENABLED, delta, count);
        }

        long apply(boolean simd, ArrowBuf delta, int count) {
            long[] rank = {equalsBefore};
            long kept = 0;
            int from = 0;
            if (simd) {
                kept += SimdKernels.topK(delta, count, thresholdBits, equalsToKeep, rank);
                from = SimdKernels.intBound(count);
            }
            return kept + scalarRange(delta, from, count, thresholdBits, equalsToKeep, rank);
        }

        /** Entries [from, to); {@code rank[0]} carries the equal-rank across calls. */
        static long scalarRange(ArrowBuf delta, int from, int to, int thresholdBits, long equalsToKeep, long[] rank) {
            // Branch-free: magnitudes near the threshold are common, and a branch on them mispredicts.
            long equalRank = rank[0];
            long kept = 0;
            for (int i = from; i < to; i++) {
                long at = (long) i << 2;
                int raw = Float.floatToRawIntBits(delta.getFloat(at));
                int bits = raw & 0x7fffffff;
                int above = (thresholdBits - bits) >>> 31;
                int differs = bits ^ thresholdBits;
                int equal = ((differs - 1) & ~differs) >>> 31;
                int rankOk = (int) ((equalRank - equalsToKeep) >>> 63);
                int keep = above | (equal & rankOk);
                equalRank += equal;
                kept += keep;
                delta.setInt(at, raw & -keep);
            }
            rank[0] = equalRank;
            return kept;
        }
    }

    /**
     * Keeps a band of positions {@code [bot, top)} of the ascending magnitude order (ties by
     * lower flat index), given as two order statistics. Below the band: |d| under
     * {@code lowBits}, or equal to it among the first {@code lowEqualsDropped}. Inside the
     * band's upper edge: |d| under {@code highBits}, or equal to it among the first
     * {@code highEqualsKept}. A missing edge ({@code hasLow}/{@code hasHigh} false) is open.
     */
    record Band(boolean hasLow, int lowBits, long lowEqualsDropped, long lowEqualsBefore,
                boolean hasHigh, int highBits, long highEqualsKept, long highEqualsBefore) implements KeepRule {
        @Override
        public long apply(ArrowBuf delta, int count, long chunkStart, KernelScratch scratch) {
            long lowRank = lowEqualsBefore;
            long highRank = highEqualsBefore;
            long kept = 0;
            for (int i = 0; i < count; i++) {
                long at = (long) i << 2;
                int bits = magnitudeBits(delta.getFloat(at));
                boolean aboveLow = true;
                if (hasLow) {
                    if (bits < lowBits) {
                        aboveLow = false;
                    } else if (bits == lowBits) {
                        aboveLow = lowRank >= lowEqualsDropped;
                        lowRank++;
                    }
                }
                boolean belowHigh = true;
                if (hasHigh) {
                    if (bits > highBits) {
                        belowHigh = false;
                    } else if (bits == highBits) {
                        belowHigh = highRank < highEqualsKept;
                        highRank++;
                    }
                }
                if (aboveLow && belowHigh) {
                    kept++;
                } else {
                    delta.setFloat(at, 0.0f);
                }
            }
            return kept;
        }
    }

    /** DARE: keeps each entry with probability {@code density} from the counter-based stream. */
    record Random(float density, long streamKey) implements KeepRule {
        @Override
        public long apply(ArrowBuf delta, int count, long chunkStart, KernelScratch scratch) {
            // Branch-free: the draw is an integer compared with an integer limit (exact, see keepLimit).
            // (The Vector API of Java 17 does not compile the 64-bit hash to SIMD well: it stays scalar.)
            long limit = CounterRandom.keepLimit(density);
            long kept = 0;
            for (int i = 0; i < count; i++) {
                long at = (long) i << 2;
                int keep = (int) ((CounterRandom.draw(streamKey, chunkStart + i) - limit) >>> 63);
                kept += keep;
                delta.setInt(at, delta.getInt(at) & -keep);
            }
            return kept;
        }
    }

    /**
     * DELLA's MAGPRUNE: within each row, the entry of ascending magnitude rank r (1..cols, ties
     * by lower index) is kept with probability {@code low + ((r-1)/(cols-1)) * twoEpsilon}.
     * The chunk must start and end on row boundaries.
     */
    record DellaRows(float low, float twoEpsilon, int cols, long streamKey) implements KeepRule {
        @Override
        public long apply(ArrowBuf delta, int count, long chunkStart, KernelScratch scratch) {
            if (count % cols != 0 || chunkStart % cols != 0) {
                throw new IllegalArgumentException("DELLA chunk [" + chunkStart + ", +" + count
                        + ") does not fall on rows of " + cols + " elements");
            }
            long kept = 0;
            for (int rowStart = 0; rowStart < count; rowStart += cols) {
                int[] order = scratch.rankRow(delta, rowStart, cols);
                for (int rank = 0; rank < cols; rank++) {
                    int c = order[rank];
                    float spread = cols == 1 ? 0.0f : (float) rank / (float) (cols - 1);
                    float p = low + spread * twoEpsilon;
                    int i = rowStart + c;
                    // u and p are non-negative, so their bit patterns compare like the values;
                    // branch-free because the outcome is a coin flip.
                    int u = Float.floatToRawIntBits(CounterRandom.uniform(streamKey, chunkStart + i));
                    int keep = (u - Float.floatToRawIntBits(p)) >>> 31;
                    kept += keep;
                    long at = (long) i << 2;
                    delta.setInt(at, delta.getInt(at) & -keep);
                }
            }
            return kept;
        }
    }
}
