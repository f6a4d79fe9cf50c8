package dev.amalgam.method;

/** What a merge method sees of one output tensor: its name, shape and resolved parameters. */
public interface MethodTensor {

    /** Position in the plan; statistics are kept per tensor index. */
    int index();

    String name();

    long[] shape();

    long elements();

    /** Row length (last dimension; 1 for scalars); per-row scopes work on rows of this length. */
    int cols();

    TensorParameters parameters();

    /** Model {@code model}'s file holding this tensor, for messages. */
    String inputFile(int model);

    /** Whether a base model is an input (slot {@link #modelCount()} of a chunk). */
    boolean hasBase();

    /** The whole merge: every merged tensor's elements together, and the output's layer count. */
    default ModelExtent extent() {
        return ModelExtent.UNKNOWN;
    }

    /** The decoder layer this tensor belongs to ({@code layers.N.}), or -1 outside the layer stack. */
    default int layer() {
        return dev.amalgam.config.ParameterResolver.layerOf(name());
    }

    /** How many models besides the base. */
    default int modelCount() {
        return parameters().models().length;
    }

    default long rows() {
        return cols() == 0 ? 0 : elements() / cols();
    }
}
