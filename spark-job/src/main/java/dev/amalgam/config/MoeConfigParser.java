package dev.amalgam.config;

import com.fasterxml.jackson.databind.JsonNode;
import dev.amalgam.AmalgamException;
import dev.amalgam.kernels.Dtype;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;

/**
 * Parses a {@code mergekit-moe} config and checks it as the widely used tool does before it
 * loads anything (enough experts for {@code experts_per_token}, prompts for the prompted gate
 * modes, prompts that tell the experts apart). Every problem names the file and key.
 */
public final class MoeConfigParser {
    private static final Set<String> TOP_KEYS = new TreeSet<>(List.of("base_model", "experts", "shared_experts",
            "experts_per_token", "gate_mode", "architecture", "dtype", "random_seed", "gate_vectors",
            "expert_layout", "name"));
    private static final Set<String> EXPERT_KEYS = new TreeSet<>(List.of("source_model", "positive_prompts",
            "negative_prompts", "noise_scale", "residual_scale"));

    private MoeConfigParser() {
    }

    /** Whether a parsed YAML document is an MoE config: it lists experts and names no merge method. */
    static boolean isMoe(JsonNode root) {
        return root.isObject() && root.has("experts") && !root.has("merge_method");
    }

    public static MoeConfig parse(String file, String yaml) {
        JsonNode root = ConfigYaml.load(file, yaml);
        if (root == null || !isMoe(root)) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, file + ": expected a mixture-of-experts config, "
                    + "a YAML mapping with base_model and experts (a merge config with merge_method is run by "
                    + "'amalgam merge')");
        }
        return parse(file, root);
    }

    static MoeConfig parse(String file, JsonNode root) {
        List<String> problems = new ArrayList<>();
        root.fieldNames().forEachRemaining(key -> {
            if (!TOP_KEYS.contains(key)) {
                problems.add(file + ": unknown key '" + key + "' (known in a mixture-of-experts config: "
                        + String.join(", ", TOP_KEYS) + ")");
            }
        });
        String base = text(root, "base_model", file, problems);
        if (base == null) {
            problems.add(file + ": 'base_model' is required: the model attention, norms and embeddings come from");
        }
        List<MoeConfig.Expert> experts = experts(file, "experts", root.get("experts"), problems);
        if (experts.isEmpty() && root.get("experts") != null && root.get("experts").isArray()) {
            problems.add(file + ": 'experts' is empty; list at least two {source_model: PATH, positive_prompts: [...]}");
        }
        List<MoeConfig.Expert> shared = root.has("shared_experts") && !root.get("shared_experts").isNull()
                ? experts(file, "shared_experts", root.get("shared_experts"), problems) : List.of();
        int perToken = 2;
        JsonNode k = root.get("experts_per_token");
        if (k != null) {
            if (!k.isIntegralNumber() || !k.canConvertToInt() || k.asInt() < 1) {
                problems.add(file + ": 'experts_per_token' must be a whole number of at least 1, got " + k);
            } else {
                perToken = k.asInt();
            }
        }
        if (!experts.isEmpty() && experts.size() < perToken) {
            problems.add(file + ": experts_per_token is " + perToken + " but only " + experts.size() + " expert"
                    + (experts.size() == 1 ? " is" : "s are") + " listed; list at least as many experts or lower it");
        }
        MoeConfig.GateMode mode = MoeConfig.GateMode.HIDDEN;
        String modeName = text(root, "gate_mode", file, problems);
        if (modeName != null) {
            mode = Arrays.stream(MoeConfig.GateMode.values()).filter(m -> m.configName().equals(modeName))
                    .findFirst().orElse(null);
            if (mode == null) {
                problems.add(file + ": 'gate_mode' is '" + modeName + "'; use hidden (with gate_vectors), cheap_embed, "
                        + "random or uniform_random");
                mode = MoeConfig.GateMode.RANDOM;
            }
        }
        if (mode.prompted()) {
            for (int i = 0; i < experts.size(); i++) {
                if (experts.get(i).positivePrompts().isEmpty()) {
                    problems.add(file + ": experts[" + i + "] (" + experts.get(i).sourceModel() + ") has no "
                            + "positive_prompts; gate_mode " + mode.configName() + " builds each expert's router from "
                            + "its prompts (or use gate_mode: random)");
                }
            }
            if (experts.size() > 1 && experts.stream().allMatch(e -> e.positivePrompts().equals(
                    experts.get(0).positivePrompts()) && e.negativePrompts().equals(experts.get(0).negativePrompts()))) {
                problems.add(file + ": every expert has the same positive and negative prompts, so the routers "
                        + "cannot tell them apart; give each expert prompts typical of what it should receive");
            }
        }
        if (experts.size() > 1 && experts.stream().allMatch(e -> e.sourceModel().equals(experts.get(0).sourceModel()))) {
            problems.add(file + ": every expert comes from " + experts.get(0).sourceModel() + "; the result would "
                    + "compute the same MLP several times; give the experts different source models");
        }
        String architecture = text(root, "architecture", file, problems);
        Dtype dtype = MergeConfigParser.dtype(root, "dtype", file, problems);
        Long seed = MergeConfigParser.seed(root, file, problems);
        String gateVectors = text(root, "gate_vectors", file, problems);
        if (gateVectors != null && !mode.hidden()) {
            problems.add(file + ": 'gate_vectors' is read by the hidden gate modes only, but gate_mode is "
                    + mode.configName() + "; remove it or set gate_mode: hidden");
        }
        MoeConfig.ExpertLayout layout = MoeConfig.ExpertLayout.PER_EXPERT;
        String layoutName = text(root, "expert_layout", file, problems);
        if (layoutName != null) {
            layout = Arrays.stream(MoeConfig.ExpertLayout.values()).filter(l -> l.configName().equals(layoutName))
                    .findFirst().orElse(null);
            if (layout == null) {
                problems.add(file + ": 'expert_layout' is '" + layoutName + "'; use per_expert (one tensor per "
                        + "expert, the default) or fused (mlp.experts.gate_up_proj and down_proj per layer)");
            }
        }
        if (!problems.isEmpty()) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, problems);
        }
        return new MoeConfig(base, experts, shared, perToken, mode,
                architecture == null ? null : architecture.toLowerCase(Locale.ROOT), dtype, seed == null ? 0 : seed, gateVectors,
                layout);
    }

    private static List<MoeConfig.Expert> experts(String file, String key, JsonNode node, List<String> problems) {
        if (node == null || !node.isArray()) {
            problems.add(file + ": '" + key + "' must be a list of {source_model: PATH, positive_prompts: [...]}");
            return List.of();
        }
        List<MoeConfig.Expert> out = new ArrayList<>();
        for (int i = 0; i < node.size(); i++) {
            String where = file + ": " + key + "[" + i + "]";
            JsonNode e = node.get(i);
            if (!e.isObject()) {
                problems.add(where + " must be a mapping with source_model and positive_prompts");
                continue;
            }
            e.fieldNames().forEachRemaining(k -> {
                if (!EXPERT_KEYS.contains(k)) {
                    problems.add(where + ": unknown key '" + k + "' (known: " + String.join(", ", EXPERT_KEYS) + ")");
                }
            });
            String model = text(e, "source_model", where, problems);
            if (model == null || model.isBlank()) {
                problems.add(where + ": 'source_model' must be a checkpoint directory path");
                continue;
            }
            if (e.has("noise_scale") && !e.get("noise_scale").isNull()) {
                problems.add(where + ": 'noise_scale' is not supported (the widely used tool adds unseeded noise, "
                        + "so its output cannot be reproduced); remove it");
            }
            Double residual = null;
            JsonNode r = e.get("residual_scale");
            if (r != null && !r.isNull()) {
                if (!r.isNumber()) {
                    problems.add(where + ": 'residual_scale' must be a number, got " + r);
                } else {
                    residual = r.asDouble();
                }
            }
            out.add(new MoeConfig.Expert(model, prompts(where, "positive_prompts", e.get("positive_prompts"), problems),
                    prompts(where, "negative_prompts", e.get("negative_prompts"), problems), residual));
        }
        return List.copyOf(out);
    }

    private static List<String> prompts(String where, String key, JsonNode node, List<String> problems) {
        if (node == null || node.isNull()) {
            return List.of();
        }
        if (!node.isArray() || !allText(node)) {
            problems.add(where + ": '" + key + "' must be a list of strings, got " + node);
            return List.of();
        }
        List<String> out = new ArrayList<>();
        node.forEach(p -> out.add(p.asText()));
        return List.copyOf(out);
    }

    private static boolean allText(JsonNode array) {
        for (JsonNode n : array) {
            if (!n.isTextual()) {
                return false;
            }
        }
        return true;
    }

    private static String text(JsonNode node, String key, String where, List<String> problems) {
        return MergeConfigParser.text(node, key, where, problems);
    }
}
