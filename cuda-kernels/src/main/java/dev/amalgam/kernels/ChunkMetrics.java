package dev.amalgam.kernels;

/** What a merge kernel observed in one chunk, for the run report; never feeds back into results. */
public final class ChunkMetrics {
    public final long[] kept;
    public final double[] deltaSquares;
    /**
     * Dot products of every pair of models' deltas before sparsification, at {@link #pair}
     * (with the squares, the cosine similarity between the models' deltas).
     */
    public final double[] deltaDots;
    public long signConflicts;
    public long elements;
    /** Iterations an iterative method took on the chunk's tensor (0 for the others). */
    public int iterations;

    public ChunkMetrics(int models) {
        this.kept = new long[models];
        this.deltaSquares = new double[models];
        this.deltaDots = new double[pairs(models)];
    }

    /** Pairs of distinct models among {@code models}. */
    public static int pairs(int models) {
        return models * (models - 1) / 2;
    }

    /** The slot of the pair {@code i < j}: pairs in order (0,1), (0,2), ..., (1,2), ... */
    public static int pair(int i, int j, int models) {
        if (i >= j || j >= models) {
            throw new IllegalArgumentException("pair (" + i + ", " + j + ") of " + models + " models");
        }
        return i * models - i * (i + 1) / 2 + (j - i - 1);
    }
}
