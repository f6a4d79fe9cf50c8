package dev.amalgam.kernels;

/** Heap scratch a kernel reuses across the chunks of one task, so hot loops never allocate. */
public final class KernelScratch {
    private long[] rowOrder = new long[0];

    long[] rowOrder(int cols) {
        if (rowOrder.length < cols) {
            rowOrder = new long[cols];
        }
        return rowOrder;
    }
}
