package dev.amalgam.kernels;

/** What a merge kernel observed in one chunk, for the run report; never feeds back into results. */
public final class ChunkMetrics {
    public final long[] kept;
    public final double[] deltaSquares;
    public long signConflicts;
    public long elements;

    public ChunkMetrics(int models) {
        this.kept = new long[models];
        this.deltaSquares = new double[models];
    }
}
