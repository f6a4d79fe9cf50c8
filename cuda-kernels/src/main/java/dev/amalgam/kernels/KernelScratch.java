package dev.amalgam.kernels;

import org.apache.arrow.memory.ArrowBuf;

/** Heap scratch a kernel reuses across the chunks of one task, so hot loops never allocate. */
public final class KernelScratch {
    private static final int DIGIT_BITS = 11;
    private static final int DIGITS = 1 << DIGIT_BITS;

    private int[] keys = new int[0];
    private int[] order = new int[0];
    private int[] spare = new int[0];
    private final int[] counts = new int[DIGITS];

    /**
     * The columns of one row in ascending |value| order, equal magnitudes by lower column: a
     * stable least-significant-digit radix sort of the 31-bit magnitude patterns (three 11-bit
     * digits), linear in the row length. The returned array is valid until the next call.
     */
    int[] rankRow(ArrowBuf values, int rowStart, int cols) {
        if (order.length < cols) {
            keys = new int[cols];
            order = new int[cols];
            spare = new int[cols];
        }
        for (int c = 0; c < cols; c++) {
            keys[c] = KeepRule.magnitudeBits(values.getFloat((long) (rowStart + c) << 2));
            order[c] = c;
        }
        int[] from = order;
        int[] to = spare;
        for (int shift = 0; shift < 31; shift += DIGIT_BITS) {
            java.util.Arrays.fill(counts, 0);
            for (int c = 0; c < cols; c++) {
                counts[(keys[c] >>> shift) & (DIGITS - 1)]++;
            }
            if (counts[(keys[0] >>> shift) & (DIGITS - 1)] == cols) {
                continue;
            }
            int sum = 0;
            for (int d = 0; d < DIGITS; d++) {
                int n = counts[d];
                counts[d] = sum;
                sum += n;
            }
            for (int k = 0; k < cols; k++) {
                int c = from[k];
                to[counts[(keys[c] >>> shift) & (DIGITS - 1)]++] = c;
            }
            int[] swap = from;
            from = to;
            to = swap;
        }
        order = from;
        spare = to;
        return from;
    }
}
