package dev.amalgam.stats;

import dev.amalgam.plan.ChunkPlan;

import java.util.ArrayList;
import java.util.List;

/**
 * Brackets order statistics from a small deterministic sample, so one full read can collect every
 * candidate. A band is a set of high-16-bit buckets of |value| (at most {@link #MAX_BUCKETS}): the
 * buckets the sample holds between the position's lower and upper rank bounds. It need not be a
 * run: deltas clustered at a few levels leave empty buckets between the clusters, and the band
 * skips them. The statistic's exact value is found among the band's entries when the full read
 * shows its position falls in a band bucket, and by the multi-pass radix selection otherwise
 * (never a wrong value, only a slower one).
 */
public final class OrderBands {
    /** The most buckets a band collects: its scratch histogram is {@code MAX_BUCKETS << 16} ints per task. */
    static final int MAX_BUCKETS = 8;
    /** The sample reads 1/SAMPLE_SHARE of each chunk ... */
    static final int SAMPLE_SHARE = 64;
    /** ... in this many evenly spaced blocks ... */
    static final int BLOCKS = 16;
    /** ... of at least this many elements (a chunk smaller than BLOCKS of them is read whole). */
    static final int MIN_BLOCK = 256;
    /**
     * Elements per independent draw when sizing the band: blocks are contiguous, and neighbouring
     * entries (one row) are alike, so the sample counts as this many times fewer independent values.
     */
    static final double CLUSTER = 64;
    /** Standard deviations of rank error the band covers on each side. */
    static final double SIGMAS = 5;

    private OrderBands() {
    }

    /** High buckets, ascending. */
    public record Band(int[] buckets) {
        boolean contains(int bucket) {
            return java.util.Arrays.binarySearch(buckets, bucket) >= 0;
        }

        /** Bit patterns in the band's scratch histogram. */
        int span() {
            return buckets.length << 16;
        }

        /** Each high bucket's index in {@link #buckets}, -1 for the buckets outside the band. */
        int[] slots() {
            int[] slotOf = new int[dev.amalgam.kernels.MagnitudeHistogram.HIGH_BUCKETS];
            java.util.Arrays.fill(slotOf, -1);
            for (int i = 0; i < buckets.length; i++) {
                slotOf[buckets[i]] = i;
            }
            return slotOf;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Band b && java.util.Arrays.equals(buckets, b.buckets);
        }

        @Override
        public int hashCode() {
            return java.util.Arrays.hashCode(buckets);
        }

        @Override
        public String toString() {
            return "Band" + java.util.Arrays.toString(buckets);
        }
    }

    /**
     * The sampled parts of a chunk, evenly spaced, as sub-chunks of it. With {@code row > 1} the
     * ordered operand is computed per row (an importance), so blocks are whole rows of that length.
     */
    static List<ChunkPlan> blocks(ChunkPlan chunk, int row) {
        int count = chunk.count();
        long wanted = Math.max(MIN_BLOCK, count / (SAMPLE_SHARE * BLOCKS));
        long length = (wanted + row - 1) / row * row;
        if (length * BLOCKS >= count) {
            return List.of(chunk);
        }
        long rows = count / row;
        List<ChunkPlan> blocks = new ArrayList<>(BLOCKS);
        for (int b = 0; b < BLOCKS; b++) {
            long offset = b * (rows - length / row) / (BLOCKS - 1) * row;
            blocks.add(new ChunkPlan(chunk.index(), chunk.tensor(), chunk.start() + offset, (int) length,
                    chunk.ordinal()));
        }
        return blocks;
    }

    /**
     * The band for ascending position {@code position} of {@code n} entries, from the high-bucket
     * histogram of a sample: the sample's non-empty buckets between the rank bounds, the nearest to
     * the estimate first when there are more than {@link #MAX_BUCKETS}; null when the sample is empty.
     */
    static Band band(SparseCounts sample, long position, long n) {
        long s = sample.total();
        if (s == 0) {
            return null;
        }
        double q = (position + 0.5) / n;
        double independent = Math.max(1.0, s / CLUSTER);
        double margin = SIGMAS * Math.sqrt(q * (1 - q) / independent) + 1.0 / independent;
        long lowRank = Math.max(0, Math.min(s - 1, (long) Math.floor((q - margin) * s)));
        long highRank = Math.max(0, Math.min(s - 1, (long) Math.ceil((q + margin) * s)));
        long estimate = Math.max(0, Math.min(s - 1, (long) (q * s)));
        // Sample buckets overlapping [lowRank, highRank], with their distance in ranks from the estimate.
        List<long[]> found = new ArrayList<>();
        long below = 0;
        for (int i = 0; i < sample.size(); i++) {
            long count = sample.countAt(i);
            long first = below;
            long last = below + count - 1;
            below += count;
            if (last < lowRank) {
                continue;
            }
            if (first > highRank) {
                break;
            }
            long distance = estimate < first ? first - estimate : estimate > last ? estimate - last : 0;
            found.add(new long[]{sample.binAt(i), distance});
        }
        found.sort(java.util.Comparator.comparingLong((long[] f) -> f[1]).thenComparingLong(f -> f[0]));
        int[] buckets = found.stream().limit(MAX_BUCKETS).mapToInt(f -> (int) f[0]).sorted().toArray();
        return new Band(buckets);
    }
}
