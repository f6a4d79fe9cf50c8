package dev.amalgam.plan;

import dev.amalgam.kernels.Fp8BlockQuantizer;

/**
 * An output tensor written block-quantized: an FP8 weight and the tensor of its block scales,
 * which the weight's chunks write beside their own bytes (a chunk covers whole block rows, so it
 * owns the scales of its blocks). The scales tensor has no inputs and no work of its own.
 */
public sealed interface OutputQuantization {

    /** An FP8 weight whose scales are tensor {@code scalesTensor} of the plan. */
    record Weight(int scalesTensor, Fp8BlockQuantizer.Grid grid) implements OutputQuantization {
    }

    /** The block scales of tensor {@code weightTensor}; chunk k is written by the weight's chunk k. */
    record Scales(int weightTensor) implements OutputQuantization {
    }
}
