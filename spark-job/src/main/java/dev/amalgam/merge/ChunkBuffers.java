package dev.amalgam.merge;

import org.apache.arrow.memory.ArrowBuf;

/**
 * One chunk decoded to float32 in off-heap memory: the base (null without one), each model,
 * and the output. Views sized to the chunk over a task's reusable buffers.
 */
public record ChunkBuffers(ArrowBuf base, ArrowBuf[] models, ArrowBuf out) {
}
