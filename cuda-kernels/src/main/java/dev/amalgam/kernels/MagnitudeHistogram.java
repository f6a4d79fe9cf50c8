package dev.amalgam.kernels;

import org.apache.arrow.memory.ArrowBuf;

/**
 * Radix histograms over the bit patterns of |delta|, the building block of exact order
 * statistics: counts add up across chunks in any order, so the selected value is exact and
 * independent of how a tensor was cut. Round one counts the high 16 bits; round two counts the
 * low 16 bits of the entries inside one chosen high bucket.
 */
public final class MagnitudeHistogram {
    public static final int BINS = 1 << 16;

    private MagnitudeHistogram() {
    }

    public static void addHigh(ArrowBuf delta, int count, long[] histogram) {
        for (int i = 0; i < count; i++) {
            histogram[KeepRule.magnitudeBits(delta.getFloat((long) i << 2)) >>> 16]++;
        }
    }

    public static void addLow(ArrowBuf delta, int count, int highBucket, long[] histogram) {
        int from = 0;
        if (Simd.ENABLED) {
            from = SimdKernels.intBound(count);
            SimdKernels.addLow(delta, from, highBucket, histogram);
        }
        addLow(delta, from, count, highBucket, histogram);
    }

    /** The scalar definition over [from, to): SIMD code runs it on the vectors that hold an entry of the bucket. */
    static void addLow(ArrowBuf delta, int from, int to, int highBucket, long[] histogram) {
        for (int i = from; i < to; i++) {
            int bits = KeepRule.magnitudeBits(delta.getFloat((long) i << 2));
            if (bits >>> 16 == highBucket) {
                histogram[bits & 0xffff]++;
            }
        }
    }

    /** High buckets of a non-negative float's bit pattern: 2^15 (the sign bit is cleared). */
    public static final int HIGH_BUCKETS = 1 << 15;

    /**
     * Adds the exact bit patterns of the |delta| entries whose high bucket has a slot in
     * {@code slotOf} (-1: none) into {@code band[slot << 16 | low 16 bits]}. One sweep gives every
     * candidate of an order statistic bracketed by a sample, so no second read is needed.
     */
    public static void addBand(ArrowBuf delta, int count, int[] slotOf, int[] band) {
        int from = 0;
        if (Simd.ENABLED) {
            int lowest = 0;
            while (lowest < slotOf.length && slotOf[lowest] < 0) {
                lowest++;
            }
            if (lowest == slotOf.length) {
                return; // an empty band collects nothing
            }
            int highest = slotOf.length - 1;
            while (slotOf[highest] < 0) {
                highest--;
            }
            from = SimdKernels.intBound(count);
            SimdKernels.addBand(delta, from, lowest, highest, slotOf, band);
        }
        addBand(delta, from, count, slotOf, band);
    }

    /** The scalar definition over [from, to): SIMD code runs it on the vectors that hold an entry in the band's range. */
    static void addBand(ArrowBuf delta, int from, int to, int[] slotOf, int[] band) {
        for (int i = from; i < to; i++) {
            int bits = KeepRule.magnitudeBits(delta.getFloat((long) i << 2));
            int slot = slotOf[bits >>> 16];
            if (slot >= 0) {
                band[(slot << 16) | (bits & 0xffff)]++;
            }
        }
    }

    public static long countEqual(ArrowBuf delta, int count, int valueBits) {
        long equal = 0;
        for (int i = 0; i < count; i++) {
            if (KeepRule.magnitudeBits(delta.getFloat((long) i << 2)) == valueBits) {
                equal++;
            }
        }
        return equal;
    }

    /** The bucket holding ascending position {@code position}, and how many entries lie in lower buckets. */
    public record Selection(int bucket, long below, long inBucket) {
    }

    public static Selection select(long[] histogram, long position) {
        long below = 0;
        for (int b = 0; b < histogram.length; b++) {
            if (below + histogram[b] > position) {
                return new Selection(b, below, histogram[b]);
            }
            below += histogram[b];
        }
        throw new IllegalArgumentException("position " + position + " is beyond the " + below + " counted entries");
    }
}
