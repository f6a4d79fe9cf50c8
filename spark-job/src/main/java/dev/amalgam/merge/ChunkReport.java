package dev.amalgam.merge;

/** What merging one chunk observed, returned to the driver for the run report. */
public record ChunkReport(int chunk, int tensor, long[] kept, double[] deltaSquares, long signConflicts,
                          long elements) {
}
