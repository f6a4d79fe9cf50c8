package dev.amalgam.cli;

import dev.amalgam.method.Inputs;
import dev.amalgam.method.MergeMethod;
import dev.amalgam.method.Parameter;

import java.util.List;

/**
 * Merge configs generated from a method's declaration (inputs and parameters with their example
 * values), so the benchmark measures every method without a hand-written config per method.
 */
public final class ExampleConfigs {
    private ExampleConfigs() {
    }

    /** A config over {@code base} and as many of {@code models} as the method takes. */
    public static String of(MergeMethod method, String base, List<String> models) {
        Inputs inputs = method.inputs();
        if (models.size() < inputs.minModels()) {
            throw new IllegalArgumentException(method.name() + " takes " + inputs.describe() + "; run bench with --models "
                    + inputs.minModels() + " or more");
        }
        List<String> used = models.subList(0, Math.min(models.size(), inputs.maxModels()));
        StringBuilder s = new StringBuilder("merge_method: " + method.name() + "\n");
        if (inputs.base() != Inputs.Base.NONE) {
            s.append("base_model: ").append(base).append('\n');
        }
        s.append("models:\n");
        String perModel = parameters(method, Parameter.Scope.MODEL);
        for (String m : used) {
            s.append("  - model: ").append(m).append('\n');
            if (!perModel.isEmpty()) {
                s.append("    parameters: {").append(perModel).append("}\n");
            }
        }
        String globals = parameters(method, Parameter.Scope.GLOBAL);
        if (!globals.isEmpty()) {
            s.append("parameters: {").append(globals).append("}\n");
        }
        return s.toString();
    }

    /** The required parameters of one scope, and those with an example, at their sample values. */
    private static String parameters(MergeMethod method, Parameter.Scope scope) {
        StringBuilder s = new StringBuilder();
        for (Parameter p : method.parameters()) {
            if (p.scope() == scope && (p.required() || p.example() != null)) {
                s.append(s.length() == 0 ? "" : ", ").append(p.name()).append(": ").append(p.sampleValue());
            }
        }
        return s.toString();
    }
}
