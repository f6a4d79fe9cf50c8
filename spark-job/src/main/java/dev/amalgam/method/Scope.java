package dev.amalgam.method;

/**
 * What a statistic is reduced over. Reductions within a row are not requests: chunks of a
 * row-aligned method hold whole rows, so a method's chunk kernel reduces rows itself with the
 * {@link dev.amalgam.kernels.Primitive#ROW_DOT} primitive.
 *
 * <p>A scope wider than the tensor is the set of tensors that ask for the same request: every
 * tensor asking for {@code nonzero(Delta(0))} at {@link #MODEL} scope adds its entries to one
 * count. Order statistics over such a set are exact with the canonical global flat index
 * (tensors in ascending byte order of their names, then element index) breaking ties, so the
 * result never depends on how the tensors were chunked.
 */
public enum Scope {
    /** One tensor, across the chunks and tasks it was cut into. */
    TENSOR,
    /**
     * The tensors that ask with the same group number: a module or a layer, as the method
     * numbers them (for example by {@link MethodTensor#layer()}).
     */
    GROUP,
    /**
     * As {@link #GROUP}, but the result is the sum over the group's tensors of each tensor's
     * mean: its reduction rounded once to float32, divided by its element count in double,
     * added in double in canonical tensor order (VaRM's module and layer variations). Sums only.
     */
    GROUP_MEANS,
    /**
     * Every tensor the method merges: one model's whole checkpoint for an operand of one model
     * ({@code Delta(i)}), all models' for an operand of all (a variance).
     */
    MODEL
}
