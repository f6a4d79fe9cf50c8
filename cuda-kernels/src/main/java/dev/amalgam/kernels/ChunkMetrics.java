package dev.amalgam.kernels;

/** What a merge kernel observed in one chunk, for the run report; never feeds back into results. */
public final class ChunkMetrics {
    public final long[] kept;
    public final double[] deltaSquares;
    public long signConflicts;
    public long elements;
    /** Iterations an iterative method took on the chunk's tensor (0 for the others). */
    public int iterations;

    public ChunkMetrics(int models) {
        this.kept = new long[models];
        this.deltaSquares = new double[models];
    }
}
