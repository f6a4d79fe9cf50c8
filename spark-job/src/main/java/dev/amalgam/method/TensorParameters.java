package dev.amalgam.method;

/**
 * A method's parameters resolved for one tensor (gradients interpolated at the tensor's layer,
 * filters matched against its name, defaults filled in), in the order the method declares
 * them: {@code globals[g]} for its g-th global parameter, {@code models[i][p]} for model i's
 * p-th per-model parameter. Booleans are 0 or 1.
 */
public record TensorParameters(double[] globals, double[][] models) {
}
