package dev.amalgam.method;

/**
 * The merge-wide settings every tensor shares: the method, the seed of the counter-based
 * generator, and whether a base model is an input (slot {@code models} of a chunk).
 */
public record MethodSettings(String method, long seed, boolean hasBase) {
}
