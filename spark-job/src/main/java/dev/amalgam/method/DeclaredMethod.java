package dev.amalgam.method;

import dev.amalgam.kernels.Primitive;

import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * The declaration part of a method as constructor data, so a method's file holds its
 * parameters, statistics and chunk kernel and nothing else.
 */
abstract class DeclaredMethod implements MergeMethod {
    private final String name;
    private final String summary;
    private final Inputs inputs;
    private final List<Parameter> parameters;
    private final Set<Primitive> primitives;

    DeclaredMethod(String name, String summary, Inputs inputs, List<Parameter> parameters, Primitive... primitives) {
        this.name = name;
        this.summary = summary;
        this.inputs = inputs;
        this.parameters = List.copyOf(parameters);
        this.primitives = EnumSet.of(Primitive.CODEC, primitives);
    }

    @Override
    public final String name() {
        return name;
    }

    @Override
    public final String summary() {
        return summary;
    }

    @Override
    public final Inputs inputs() {
        return inputs;
    }

    @Override
    public final List<Parameter> parameters() {
        return parameters;
    }

    @Override
    public final Set<Primitive> primitives() {
        return primitives;
    }

    static Parameter weight() {
        return Parameter.number("weight", Parameter.Scope.MODEL, null, Parameter.Range.ANY, true, "the model's weight")
                .withExample(0.5);
    }

    /** The chunk's base slot, after the models. */
    static dev.amalgam.kernels.Operand base(MethodTensor t) {
        return new dev.amalgam.kernels.Operand.Value(t.modelCount());
    }
}
