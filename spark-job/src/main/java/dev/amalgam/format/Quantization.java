package dev.amalgam.format;

/**
 * How a stored tensor's bytes become numbers when they are not plain floats: the companion
 * tensor that holds its scales, and the block each scale covers.
 */
public sealed interface Quantization {

    /** The companion tensor of scales. */
    StoredTensor scales();

    /**
     * FP8 weights with one float scale per {@code blockRows x blockCols} block of each matrix
     * ({@code weight_scale_inv}, DeepSeek-V3 and Kimi-K2), or one per tensor (a scale of one element).
     */
    record BlockScaled(StoredTensor scales, int blockRows, int blockCols) implements Quantization {
    }

    /**
     * MXFP4 (gpt-oss): the tensor is stored as {@code <name>_blocks} (U8, {@code [..., G, 16]}, two
     * E2M1 values a byte) and {@code <name>_scales} (U8 E8M0 exponents, {@code [..., G]}); it reads
     * as {@code [..., G * 32]}.
     */
    record Mxfp4(StoredTensor scales) implements Quantization {
    }
}
