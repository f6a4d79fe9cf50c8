package dev.amalgam.commit;

import com.fasterxml.jackson.databind.JsonNode;
import dev.amalgam.config.MergeConfig;
import dev.amalgam.config.ParameterValue;
import dev.amalgam.method.MergeMethod;
import dev.amalgam.method.MergeMethods;
import dev.amalgam.method.Parameter;
import dev.amalgam.method.ParameterTable;
import dev.amalgam.plan.MergePlan;
import org.yaml.snakeyaml.DumperOptions;
import org.yaml.snakeyaml.Yaml;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The model card (README.md) of a merged checkpoint: the front matter model hubs read for merges
 * (base_model listing the inputs, library_name, tags), how it was made, the per-layer figures of
 * the run report, and the config as it ran.
 */
public final class ModelCard {
    /** Layers are grouped so the table stays short on deep models. */
    static final int MAX_ROWS = 16;

    private ModelCard() {
    }

    /** @param report the run report (amalgam-report.json), whose per-tensor figures the card summarizes */
    public static String render(MergeConfig config, MergePlan plan, JsonNode report) {
        MergeMethod method = MergeMethods.byName(plan.settings().method()).orElseThrow();
        StringBuilder card = new StringBuilder();
        card.append("---\n").append(frontMatter(config, method)).append("---\n\n");
        card.append("# Merged model\n\n");
        card.append("Made with Amalgam by `").append(config.mergeMethod()).append("`");
        if (config.baseModel() != null) {
            card.append(" over the base model `").append(config.baseModel()).append('`');
        }
        card.append(". The run report, with every tensor's figures, is [amalgam-report.json](amalgam-report.json).\n\n");
        card.append("## Models\n\n");
        for (String m : config.referencedModels()) {
            if (!m.equals(config.baseModel())) {
                card.append("- `").append(m).append("`\n");
            }
        }
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
        card.append(layerTable(report));
        card.append("\n## Configuration\n\n```yaml\n").append(config.source().strip()).append("\n```\n");
        return card.toString();
    }

    /** What hubs read: the inputs as base_model (as the widely used tool lists them), library and tags. */
    static String frontMatter(MergeConfig config, MergeMethod method) {
        Map<String, Object> front = new LinkedHashMap<>();
        front.put("base_model", new ArrayList<>(config.referencedModels()));
        front.put("library_name", "transformers");
        front.put("tags", List.of("merge", "amalgam", method.name()));
        DumperOptions options = new DumperOptions();
        options.setDefaultFlowStyle(DumperOptions.FlowStyle.BLOCK);
        options.setIndicatorIndent(0);
        return new Yaml(options).dump(front);
    }

    /** Per layer (or group of layers): each model's kept density and delta norm, and the sign-conflict fraction. */
    static String layerTable(JsonNode report) {
        LayerFigures figures = LayerFigures.of(report);
        if (figures.isEmpty()) {
            return "";
        }
        int models = figures.models();
        StringBuilder table = new StringBuilder("\n## Per layer\n\n| layers | sign conflicts |");
        for (int i = 0; i < models; i++) {
            table.append(" model ").append(i + 1).append(" kept | model ").append(i + 1).append(" delta L2 |");
        }
        table.append("\n|---|---|").append("---|---|".repeat(models)).append('\n');
        for (LayerFigures.Row r : figures.rows(MAX_ROWS)) {
            table.append("| ").append(r.firstLayer() == r.lastLayer() ? String.valueOf(r.firstLayer())
                    : r.firstLayer() + "-" + r.lastLayer()).append(" | ")
                    .append(String.format(Locale.ROOT, "%.3f", r.signConflicts())).append(" |");
            for (int i = 0; i < models; i++) {
                table.append(String.format(Locale.ROOT, " %.3f | %.4g |", r.kept()[i], r.deltaNorm()[i]));
            }
            table.append('\n');
        }
        return table.toString();
    }

    /** A parameter as the config gave it: a value, a layer gradient, or a filter list. */
    static String describe(Parameter p, ParameterValue value) {
        if (value instanceof ParameterValue.Scalar s) {
            return s.value() instanceof Double d ? p.format(d) : String.valueOf(s.value());
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
