package dev.amalgam.plan;

/** One model's per-tensor parameters after resolving gradients, filters and defaults. */
public record ModelParameters(float weight, float density, float gamma, float epsilon) {
}
