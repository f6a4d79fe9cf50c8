package dev.amalgam.stats;

import dev.amalgam.plan.ChunkPlan;

import java.util.ArrayList;
import java.util.List;

/**
 * Brackets order statistics from a small deterministic sample, so one full read can collect every
 * candidate. A band is a run of high-16-bit buckets of |value|; the statistic's exact value is
 * found among the band's entries when the full read shows its position falls inside the band,
 * and by the multi-pass radix selection otherwise (never a wrong value, only a slower one).
 */
public final class OrderBands {
    /** The widest band collected: its scratch histogram is {@code MAX_BUCKETS << 16} ints per task. */
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

    /** Buckets {@code [low, high]}. */
    public record Band(int low, int high) {
        boolean contains(int bucket) {
            return bucket >= low && bucket <= high;
        }

        /** Bit patterns in the band. */
        int span() {
            return (high - low + 1) << 16;
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
     * histogram of a sample; null when the sample is empty.
     */
    static Band band(SparseCounts sample, long position, long n) {
        long s = sample.total();
        if (s == 0) {
            return null;
        }
        double q = (position + 0.5) / n;
        double independent = Math.max(1.0, s / CLUSTER);
        double margin = SIGMAS * Math.sqrt(q * (1 - q) / independent) + 1.0 / independent;
        int low = bucketAt(sample, (long) Math.floor((q - margin) * s), s);
        int high = bucketAt(sample, (long) Math.ceil((q + margin) * s), s);
        if (high - low + 1 > MAX_BUCKETS) {
            // A spread-out band: keep the widest band around the estimate.
            int centre = bucketAt(sample, (long) (q * s), s);
            low = Math.max(low, centre - MAX_BUCKETS / 2);
            high = Math.min(high, low + MAX_BUCKETS - 1);
        }
        return new Band(low, high);
    }

    private static int bucketAt(SparseCounts sample, long rank, long s) {
        return (int) sample.select(Math.max(0, Math.min(s - 1, rank)))[0];
    }
}
