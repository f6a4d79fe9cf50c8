package dev.amalgam.plan;

/**
 * One output file: its name, the complete header block, and the size the file will have.
 *
 * @param firstTensor index of its first tensor; its tensors are contiguous in plan order
 */
public record ShardPlan(String fileName, byte[] header, long fileSize, int firstTensor, int tensorCount) {
}
