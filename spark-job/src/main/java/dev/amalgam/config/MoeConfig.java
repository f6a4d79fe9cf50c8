package dev.amalgam.config;

import dev.amalgam.kernels.Dtype;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;

/**
 * A mixture-of-experts assembly config, in the schema of the widely used tool's {@code mergekit-moe}:
 * attention and norms from {@code baseModel}, each expert's MLP from its source, routers from the
 * prompts (or random).
 *
 * @param architecture    the output architecture's name as written (mixtral, deepseek, qwen, qwen3), or
 *                        null to take the first that suits the inputs
 * @param dtype           null: the base's {@code torch_dtype}
 * @param randomSeed      seeds the {@code random} and {@code uniform_random} gates (the widely used tool
 *                        draws them unseeded)
 * @param gateVectors     a safetensors file of gate vectors for the {@code hidden} gate modes, else null
 * @param expertLayout    per-expert tensors (every release of {@code transformers} loads them) or the
 *                        fused {@code [experts, ...]} tensors current releases hold in memory
 */
public record MoeConfig(String baseModel, List<Expert> experts, List<Expert> sharedExperts, int expertsPerToken,
                        GateMode gateMode, String architecture, Dtype dtype, long randomSeed, String gateVectors,
                        ExpertLayout expertLayout) {

    /** One expert (or shared expert): the model whose MLP it is and the prompts its router is built from. */
    public record Expert(String sourceModel, List<String> positivePrompts, List<String> negativePrompts,
                         Double residualScale) {
    }

    /** How router weights are made. */
    public enum GateMode {
        HIDDEN, HIDDEN_AVG, HIDDEN_LAST, CHEAP_EMBED, RANDOM, UNIFORM_RANDOM;

        public String configName() {
            return name().toLowerCase(Locale.ROOT);
        }

        /** Whether routers come from the base model's hidden states (given in a gate vectors file). */
        public boolean hidden() {
            return this == HIDDEN || this == HIDDEN_AVG || this == HIDDEN_LAST;
        }

        /** Whether routers come from prompts (the experts need positive prompts). */
        public boolean prompted() {
            return this != RANDOM && this != UNIFORM_RANDOM;
        }
    }

    public enum ExpertLayout {
        PER_EXPERT, FUSED;

        public String configName() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** The experts that get a router row: every expert, then the shared experts that are gated. */
    public List<Expert> gated(boolean sharedGated) {
        List<Expert> all = new ArrayList<>(experts);
        if (sharedGated) {
            all.addAll(sharedExperts);
        }
        return all;
    }

    /** Every model the config reads: the base, then the experts' and shared experts' sources, each once. */
    public List<String> referencedModels() {
        LinkedHashSet<String> all = new LinkedHashSet<>();
        all.add(baseModel);
        experts.forEach(e -> all.add(e.sourceModel()));
        sharedExperts.forEach(e -> all.add(e.sourceModel()));
        return List.copyOf(all);
    }
}
