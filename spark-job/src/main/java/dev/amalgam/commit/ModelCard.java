package dev.amalgam.commit;

import dev.amalgam.config.MergeConfig;
import dev.amalgam.config.ModelSpec;
import dev.amalgam.config.ParameterValue;
import dev.amalgam.method.MergeMethod;
import dev.amalgam.method.MergeMethods;
import dev.amalgam.method.Parameter;
import dev.amalgam.method.ParameterTable;
import dev.amalgam.plan.MergePlan;

/** The model card (README.md) of a merged checkpoint: how it was made, with the config. */
public final class ModelCard {
    private ModelCard() {
    }

    public static String render(MergeConfig config, MergePlan plan) {
        StringBuilder card = new StringBuilder();
        card.append("---\nlibrary_name: transformers\ntags:\n- merge\n- amalgam\n---\n\n");
        card.append("# Merged model\n\n");
        card.append("Made with Amalgam by `").append(config.mergeMethod()).append("`");
        if (config.baseModel() != null) {
            card.append(" over the base model `").append(config.baseModel()).append('`');
        }
        card.append(".\n\n## Models\n\n");
        for (ModelSpec m : config.models()) {
            card.append("- `").append(m.model()).append("`\n");
        }
        MergeMethod method = MergeMethods.byName(plan.settings().method()).orElseThrow();
        card.append("\n## Settings\n\n");
        card.append("- method: ").append(method.name()).append(" (").append(method.summary()).append(")\n");
        for (Parameter p : ParameterTable.of(method).globals()) {
            ParameterValue given = config.parameters().get(p.name());
            card.append("- ").append(p.name()).append(": ").append(given == null ? p.defaultText() + " (default)"
                    : describe(p, given)).append('\n');
        }
        card.append("- random seed: ").append(plan.settings().seed()).append('\n');
        card.append("- tensors: ").append(plan.tensors().length).append(", shards: ").append(plan.shards().length)
                .append(", output bytes: ").append(plan.outputBytes()).append('\n');
        card.append("\n## Configuration\n\n```yaml\n").append(config.source().strip()).append("\n```\n");
        return card.toString();
    }

    /** A parameter as the config gave it: a value, a layer gradient, or a filter list. */
    static String describe(Parameter p, ParameterValue value) {
        if (value instanceof ParameterValue.Scalar s) {
            return s.value() instanceof Boolean b ? b.toString() : p.format((Double) s.value());
        }
        if (value instanceof ParameterValue.Gradient g) {
            StringBuilder b = new StringBuilder("gradient over layers [");
            for (int i = 0; i < g.points().length; i++) {
                b.append(i == 0 ? "" : ", ").append(p.format(g.points()[i]));
            }
            return b.append(']').toString();
        }
        StringBuilder b = new StringBuilder("by tensor name:");
        for (ParameterValue.FilterEntry e : ((ParameterValue.Filtered) value).entries()) {
            b.append(' ').append(e.filter().isEmpty() ? "*" : e.filter()).append(" -> ").append(describe(p, e.value()))
                    .append(';');
        }
        return b.substring(0, b.length() - 1);
    }
}
