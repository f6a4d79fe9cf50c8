package dev.amalgam.method;

/**
 * What a statistic is reduced over. A tensor's statistics are reduced across the chunks (and
 * tasks) it was cut into. Reductions within a row are not requests: chunks of a row-aligned
 * method hold whole rows, so a method's chunk kernel reduces rows itself with the
 * {@link dev.amalgam.kernels.Primitive#ROW_DOT} primitive. Whole-model and all-model scopes come
 * next: they reduce several tensors' partial results the same way, keyed by scope.
 */
public enum Scope {
    TENSOR
}
