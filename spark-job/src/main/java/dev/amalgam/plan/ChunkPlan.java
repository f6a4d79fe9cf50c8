package dev.amalgam.plan;

/**
 * The unit of distributed work: elements {@code [start, start + count)} of one tensor.
 *
 * @param ordinal the chunk's position among its tensor's chunks
 */
public record ChunkPlan(int index, int tensor, long start, int count, int ordinal) {
}
