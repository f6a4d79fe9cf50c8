package dev.amalgam.plan;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.amalgam.config.MoeConfig;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * The mixture-of-experts layouts {@code amalgam moe} writes: what each expert's MLP, the shared
 * expert and the router are called, which inputs suit, and how {@code config.json} says it. The
 * names and config keys are those the architectures' {@code transformers} classes load, and what
 * the widely used tool's {@code mergekit/moe} writes.
 */
public enum MoeArchitecture {
    MIXTRAL("Mixtral", "mixtral", Set.of("llama", "mistral")),
    DEEPSEEK("DeepSeek MoE", "deepseek", Set.of("llama", "mistral")),
    QWEN2_MOE("Qwen MoE", "qwen2_moe", Set.of("llama", "mistral", "qwen2")),
    QWEN3_MOE("Qwen3 MoE", "qwen3_moe", Set.of("qwen3"));

    /** The three projections of a gated MLP, by their dense names. */
    public enum Projection {
        GATE("gate_proj", "w1"), UP("up_proj", "w3"), DOWN("down_proj", "w2");

        final String dense;
        final String mixtral;

        Projection(String dense, String mixtral) {
            this.dense = dense;
            this.mixtral = mixtral;
        }

        public String denseName() {
            return dense;
        }
    }

    private final String displayName;
    private final String modelType;
    private final Set<String> inputTypes;

    MoeArchitecture(String displayName, String modelType, Set<String> inputTypes) {
        this.displayName = displayName;
        this.modelType = modelType;
        this.inputTypes = inputTypes;
    }

    public String displayName() {
        return displayName;
    }

    public String modelType() {
        return modelType;
    }

    /** Whether {@code architecture} as a config writes it names this one (a prefix of the name or the model type). */
    boolean named(String architecture) {
        String a = architecture.toLowerCase(Locale.ROOT);
        return displayName.toLowerCase(Locale.ROOT).startsWith(a) || modelType.equals(a)
                || (this == QWEN2_MOE && a.equals("qwen2"));
    }

    /** Whether the shared expert has a router row of its own ({@code shared_expert_gate}). */
    public boolean sharedExpertGated() {
        return this == QWEN2_MOE;
    }

    /** Whether q, k and v projections carry biases, written as zeros when the inputs have none. */
    boolean attentionBiases() {
        return this == QWEN2_MOE;
    }

    /**
     * Why this architecture cannot take {@code moe} over inputs of {@code modelType} (empty when it
     * can), each reason a sentence.
     */
    List<String> unsuitable(MoeConfig moe, String inputType) {
        List<String> why = new ArrayList<>();
        int shared = moe.sharedExperts().size();
        switch (this) {
            case MIXTRAL, QWEN3_MOE -> {
                if (shared > 0) {
                    why.add(displayName + " has no shared experts");
                }
            }
            case DEEPSEEK -> {
                if (shared > 1) {
                    why.add(displayName + " takes at most one shared expert");
                } else if (shared == 1 && (!moe.sharedExperts().get(0).positivePrompts().isEmpty()
                        || !moe.sharedExperts().get(0).negativePrompts().isEmpty())) {
                    why.add(displayName + " does not gate its shared expert, so it takes no prompts for it");
                }
                if (moe.expertLayout() == MoeConfig.ExpertLayout.FUSED) {
                    why.add(displayName + "'s modeling code loads per-expert tensors only (expert_layout: per_expert)");
                }
            }
            case QWEN2_MOE -> {
                if (shared != 1) {
                    why.add(displayName + " needs exactly one shared expert (shared_experts)");
                } else if (moe.gateMode().prompted() && moe.sharedExperts().get(0).positivePrompts().isEmpty()) {
                    why.add(displayName + " gates its shared expert, so shared_experts[0] needs positive_prompts "
                            + "under gate_mode " + moe.gateMode().configName());
                }
            }
        }
        if (!inputTypes.contains(inputType)) {
            why.add(displayName + " is built from " + String.join(", ", inputTypes.stream().sorted().toList())
                    + " models, and the inputs are " + inputType);
        }
        return why;
    }

    /** An expert's projection; {@code layer} is the layer's name prefix ({@code model.layers.3.}). */
    String expert(String layer, int expert, Projection p) {
        return this == MIXTRAL
                ? layer + "block_sparse_moe.experts." + expert + "." + p.mixtral + ".weight"
                : layer + "mlp.experts." + expert + "." + p.dense + ".weight";
    }

    /** The fused {@code [experts, 2 * intermediate, hidden]} gate-and-up tensor (gate rows first). */
    static String fusedGateUp(String layer) {
        return layer + "mlp.experts.gate_up_proj";
    }

    /** The fused {@code [experts, hidden, intermediate]} down projection. */
    static String fusedDown(String layer) {
        return layer + "mlp.experts.down_proj";
    }

    String router(String layer, boolean fused) {
        return this == MIXTRAL && !fused ? layer + "block_sparse_moe.gate.weight" : layer + "mlp.gate.weight";
    }

    String shared(String layer, Projection p) {
        return layer + (this == QWEN2_MOE ? "mlp.shared_expert." : "mlp.shared_experts.") + p.dense + ".weight";
    }

    String sharedGate(String layer) {
        return layer + "mlp.shared_expert_gate.weight";
    }

    /**
     * Rewrites the base's config.json for this architecture, as the widely used tool does: the
     * base's settings kept, the MoE ones added, the experts' intermediate size the base's.
     */
    public void rewrite(ObjectNode config, int experts, int shared, int perToken) {
        config.putArray("architectures").add(switch (this) {
            case MIXTRAL -> "MixtralForCausalLM";
            case DEEPSEEK -> "DeepseekForCausalLM";
            case QWEN2_MOE -> "Qwen2MoeForCausalLM";
            case QWEN3_MOE -> "Qwen3MoeForCausalLM";
        });
        config.put("model_type", modelType);
        config.put("num_experts_per_tok", perToken);
        var intermediate = config.get("intermediate_size");
        switch (this) {
            case MIXTRAL -> {
                config.put("num_local_experts", experts);
                config.putNull("sliding_window");
            }
            case DEEPSEEK -> {
                config.put("n_routed_experts", experts);
                if (shared > 0) {
                    config.put("n_shared_experts", shared);
                } else {
                    config.putNull("n_shared_experts");
                }
                config.put("first_k_dense_replace", 0);
                config.put("moe_layer_freq", 1);
                config.put("scoring_func", "softmax");
                config.put("norm_topk_prob", true);
                config.set("moe_intermediate_size", intermediate);
                ObjectNode auto = config.putObject("auto_map");
                String repo = "deepseek-ai/deepseek-moe-16b-base--";
                auto.put("AutoConfig", repo + "configuration_deepseek.DeepseekConfig");
                auto.put("AutoModel", repo + "modeling_deepseek.DeepseekModel");
                auto.put("AutoModelForCausalLM", repo + "modeling_deepseek.DeepseekForCausalLM");
            }
            case QWEN2_MOE -> {
                config.put("num_experts", experts);
                config.put("decoder_sparse_step", 1);
                config.put("norm_topk_prob", true);
                config.putNull("sliding_window");
                config.put("use_sliding_window", false);
                config.set("shared_expert_intermediate_size", intermediate);
                config.set("moe_intermediate_size", intermediate);
            }
            case QWEN3_MOE -> {
                config.put("num_experts", experts);
                config.put("decoder_sparse_step", 1);
                config.put("norm_topk_prob", true);
                config.set("moe_intermediate_size", intermediate);
            }
        }
    }

    /** What the plan assembles: the architecture and the counts its config.json states. */
    public record Assembly(MoeArchitecture architecture, int experts, int sharedExperts, int expertsPerToken,
                           String gateMode, String expertLayout) {
        public void rewrite(ObjectNode config) {
            architecture.rewrite(config, experts, sharedExperts, expertsPerToken);
        }

        /** "Mixtral MoE of 3 experts (2 per token), cheap_embed routers, per_expert layout". */
        public String describe() {
            return architecture.displayName().replace(" MoE", "") + " MoE of " + experts + " experts (" + expertsPerToken
                    + " per token" + (sharedExperts > 0 ? ", " + sharedExperts + " shared" : "") + "), " + gateMode
                    + " routers, " + expertLayout + " layout";
        }

        /** The assembly as the run report states it. */
        public void report(ObjectNode into) {
            into.put("architecture", architecture.modelType());
            into.put("experts", experts);
            into.put("shared_experts", sharedExperts);
            into.put("experts_per_token", expertsPerToken);
            into.put("gate_mode", gateMode);
            into.put("expert_layout", expertLayout);
        }
    }
}
