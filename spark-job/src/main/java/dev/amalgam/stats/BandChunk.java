package dev.amalgam.stats;

/**
 * One chunk's candidates for one order statistic: the exact |value| bit patterns (with counts)
 * of its entries inside the band the sample bracketed. Together with the tensor's high-bucket
 * counts they give the exact statistic and each chunk's count of entries equal to it, with no
 * second read of the inputs.
 */
public record BandChunk(int chunk, SparseCounts candidates) {
}
