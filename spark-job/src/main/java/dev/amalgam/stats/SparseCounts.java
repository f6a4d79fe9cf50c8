package dev.amalgam.stats;

import java.util.Arrays;

/**
 * A histogram that keeps only its non-empty bins, in rising bin order: the form histograms take
 * when they cross the wire or wait in storage, so a band of candidates costs what it holds, not
 * the width of its range.
 */
public final class SparseCounts {
    private final int[] bins;
    private final long[] counts;

    SparseCounts(int[] bins, long[] counts) {
        this.bins = bins;
        this.counts = counts;
    }

    /** The non-zero bins of a dense histogram. */
    static SparseCounts of(long[] dense) {
        int n = 0;
        for (long c : dense) {
            n += c != 0 ? 1 : 0;
        }
        int[] bins = new int[n];
        long[] counts = new long[n];
        int k = 0;
        for (int b = 0; b < dense.length; b++) {
            if (dense[b] != 0) {
                bins[k] = b;
                counts[k++] = dense[b];
            }
        }
        return new SparseCounts(bins, counts);
    }

    /**
     * The non-zero bins of a band's scratch histogram ({@code dense[slot << 16 | low]}, slots in
     * ascending bucket order), each named by its full bit pattern {@code buckets[slot] << 16 | low};
     * clears them as it goes so the scratch array is ready for the next chunk.
     */
    static SparseCounts drain(int[] dense, int[] buckets) {
        int length = buckets.length << 16;
        int n = 0;
        for (int i = 0; i < length; i++) {
            n += dense[i] != 0 ? 1 : 0;
        }
        int[] bins = new int[n];
        long[] counts = new long[n];
        int k = 0;
        for (int i = 0; k < n; i++) {
            if (dense[i] != 0) {
                bins[k] = (buckets[i >>> 16] << 16) | (i & 0xffff);
                counts[k++] = dense[i];
                dense[i] = 0;
            }
        }
        return new SparseCounts(bins, counts);
    }

    int size() {
        return bins.length;
    }

    int binAt(int i) {
        return bins[i];
    }

    long countAt(int i) {
        return counts[i];
    }

    /** The bins whose high 16 bits are {@code bucket}, renamed by their low 16 bits. */
    SparseCounts lowBitsOf(int bucket) {
        int from = lowerBound(bucket << 16);
        int to = bucket == 0xffff ? bins.length : lowerBound((bucket + 1) << 16);
        int[] b = new int[to - from];
        for (int i = from; i < to; i++) {
            b[i - from] = bins[i] & 0xffff;
        }
        return new SparseCounts(b, Arrays.copyOfRange(counts, from, to));
    }

    /** The count in {@code bin}; 0 when empty. */
    long countOf(int bin) {
        int i = Arrays.binarySearch(bins, bin);
        return i >= 0 ? counts[i] : 0;
    }

    long total() {
        long t = 0;
        for (long c : counts) {
            t += c;
        }
        return t;
    }

    /** The sum of two histograms, as a new one. */
    SparseCounts plus(SparseCounts o) {
        int[] b = new int[bins.length + o.bins.length];
        long[] c = new long[b.length];
        int i = 0;
        int j = 0;
        int k = 0;
        while (i < bins.length || j < o.bins.length) {
            if (j == o.bins.length || (i < bins.length && bins[i] < o.bins[j])) {
                b[k] = bins[i];
                c[k++] = counts[i++];
            } else if (i == bins.length || o.bins[j] < bins[i]) {
                b[k] = o.bins[j];
                c[k++] = o.counts[j++];
            } else {
                b[k] = bins[i];
                c[k++] = counts[i++] + o.counts[j++];
            }
        }
        return new SparseCounts(Arrays.copyOf(b, k), Arrays.copyOf(c, k));
    }

    /** The dense form over bins {@code [0, size)}. */
    long[] toDense(int size) {
        long[] dense = new long[size];
        for (int i = 0; i < bins.length; i++) {
            dense[bins[i]] = counts[i];
        }
        return dense;
    }

    /** The first bin at or above {@code bin}, as an index. */
    private int lowerBound(int bin) {
        int i = Arrays.binarySearch(bins, bin);
        return i >= 0 ? i : -i - 1;
    }

    /**
     * The bin holding ascending position {@code position} (counting from 0 over all entries) and
     * how many entries lie in lower bins; -1 when the histogram holds no more than {@code position}.
     */
    long[] select(long position) {
        long below = 0;
        for (int i = 0; i < bins.length; i++) {
            if (below + counts[i] > position) {
                return new long[]{bins[i], below, counts[i]};
            }
            below += counts[i];
        }
        return new long[]{-1, below, 0};
    }
}
