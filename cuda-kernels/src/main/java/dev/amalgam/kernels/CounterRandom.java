package dev.amalgam.kernels;

import java.nio.charset.StandardCharsets;

/**
 * The stateless generator behind random masks (DARE, DELLA): a value depends only on
 * (seed, tensor name, model index, element index), never on chunking, executor or retry.
 * Only 64-bit integer operations, so the CUDA kernels compute the same bits.
 */
public final class CounterRandom {
    static final long GOLDEN = 0x9E3779B97F4A7C15L;

    private CounterRandom() {
    }

    /** The key of one model's stream over one tensor. */
    public static long streamKey(long seed, String tensorName, int modelIndex) {
        long nameHash = 0xcbf29ce484222325L;
        for (byte b : tensorName.getBytes(StandardCharsets.UTF_8)) {
            nameHash = (nameHash ^ (b & 0xff)) * 0x100000001b3L;
        }
        return mix(mix(seed ^ nameHash) + (modelIndex + 1L) * GOLDEN);
    }

    /** A uniform float in [0, 1) with 24 random bits, exact in float32. */
    public static float uniform(long streamKey, long elementIndex) {
        return (mix(streamKey + (elementIndex + 1L) * GOLDEN) >>> 40) * 0x1.0p-24f;
    }

    /**
     * The exclusive bound on a draw's 24 bits below which {@code uniform < density}: draws are
     * {@code k * 2^-24} exactly, so {@code uniform < density} iff {@code k < ceil(density * 2^24)}.
     */
    public static long keepLimit(float density) {
        return (long) Math.ceil((double) density * 16777216.0);
    }

    /** The 24 random bits behind {@link #uniform}. */
    static long draw(long streamKey, long elementIndex) {
        return mix(streamKey + (elementIndex + 1L) * GOLDEN) >>> 40;
    }

    /** SplitMix64's finalizer. */
    static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }
}
