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
            for (String kind : method.companions()) {
                s.append("    ").append(kind).append(": ").append(companion(m, kind)).append('\n');
            }
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

    /** Where the generated checkpoints keep a model's companion of {@code kind}: beside it, suffixed. */
    public static String companion(String model, String kind) {
        return model + "-" + kind;
    }

    private static final java.util.regex.Pattern PATH = java.util.regex.Pattern.compile("((?:hdfs://)?/[A-Za-z0-9_./-]+)");

    /**
     * An example config ({@code conf/examples/}) made to run on generated checkpoints: a path
     * ending in {@code base} becomes {@code base}, other model paths the fine-tunes in order of
     * appearance, a path after {@code +} the LoRA {@code adapter}, and a path ending in
     * {@code -fisher} or {@code -second_moment} the companion of the model it is named after.
     */
    public static String onCheckpoints(String yaml, String base, List<String> fineTunes, String adapter) {
        java.util.Map<String, String> replaced = new java.util.LinkedHashMap<>();
        StringBuilder out = new StringBuilder();
        java.util.regex.Matcher m = PATH.matcher(yaml);
        while (m.find()) {
            String path = m.group(1);
            int before = m.start() == 0 ? ' ' : yaml.charAt(m.start() - 1);
            String kind = dev.amalgam.config.ModelSpec.COMPANION_KINDS.stream()
                    .filter(k -> path.endsWith("-" + k)).findFirst().orElse(null);
            String generated;
            if (before == '+') {
                generated = adapter;
            } else if (kind != null) {
                generated = companion(model(replaced, path.substring(0, path.length() - kind.length() - 1), base,
                        fineTunes), kind);
            } else {
                generated = model(replaced, path, base, fineTunes);
            }
            m.appendReplacement(out, java.util.regex.Matcher.quoteReplacement(generated));
        }
        m.appendTail(out);
        return out.toString();
    }

    private static String model(java.util.Map<String, String> replaced, String path, String base,
                                List<String> fineTunes) {
        return replaced.computeIfAbsent(path, p -> p.endsWith("base") ? base
                : fineTunes.get((int) replaced.values().stream().filter(v -> !v.equals(base)).count() % fineTunes.size()));
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
