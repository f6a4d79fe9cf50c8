package dev.amalgam.commit;

import dev.amalgam.config.MergeConfig;
import dev.amalgam.config.ModelSpec;
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
        card.append("\n## Settings\n\n");
        card.append("- normalize: ").append(plan.settings().normalize()).append('\n');
        card.append("- rescale: ").append(plan.settings().rescale()).append('\n');
        card.append("- lambda: ").append(plan.settings().lambda()).append('\n');
        card.append("- random seed: ").append(plan.settings().seed()).append('\n');
        card.append("- tensors: ").append(plan.tensors().length).append(", shards: ").append(plan.shards().length)
                .append(", output bytes: ").append(plan.outputBytes()).append('\n');
        card.append("\n## Configuration\n\n```yaml\n").append(config.source().strip()).append("\n```\n");
        return card.toString();
    }
}
