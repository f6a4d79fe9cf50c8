package dev.amalgam.plan;

/** The method and its global parameters, resolved once for the whole merge. */
public record MethodSettings(String method, boolean normalize, boolean rescale, float lambda, long seed) {
}
