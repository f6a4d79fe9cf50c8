package dev.amalgam.config;

import java.util.List;

/**
 * A parameter as a merge config writes it: a scalar, a gradient over layers, or a list of
 * name filters. Resolved to one value per tensor by {@link ParameterResolver}.
 */
public sealed interface ParameterValue
        permits ParameterValue.Scalar, ParameterValue.Gradient, ParameterValue.Filtered {

    /** A number or a boolean, the same for every tensor. */
    record Scalar(Object value) implements ParameterValue {
    }

    /** Values at evenly spaced points over the layer stack, interpolated piecewise-linearly. */
    record Gradient(double[] points) implements ParameterValue {
    }

    /** The first entry whose filter is empty, "*", or a substring of the tensor name wins. */
    record Filtered(List<FilterEntry> entries) implements ParameterValue {
    }

    record FilterEntry(String filter, ParameterValue value) {
    }
}
