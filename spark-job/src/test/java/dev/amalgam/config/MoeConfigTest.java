package dev.amalgam.config;

import dev.amalgam.AmalgamException;
import dev.amalgam.kernels.Dtype;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The {@code mergekit-moe} schema, read as the widely used tool reads it, with its checks before any work. */
class MoeConfigTest {
    private static final String FILE = "moe.yml";

    private static MoeConfig parse(String yaml) {
        return MergeConfigParser.parse(FILE, yaml).moe();
    }

    private static String problems(String yaml) {
        AmalgamException e = assertThrows(AmalgamException.class, () -> MergeConfigParser.parse(FILE, yaml));
        assertEquals(AmalgamException.Kind.CONFIG, e.kind());
        return e.getMessage();
    }

    @Test
    void aConfigWithExpertsAndNoMergeMethodIsAnMoeAssembly() {
        MergeConfig config = MergeConfigParser.parse(FILE, """
                base_model: /m/base
                gate_mode: cheap_embed
                dtype: bfloat16
                experts_per_token: 1
                architecture: Qwen
                expert_layout: fused
                random_seed: 3
                experts:
                  - source_model: /m/math
                    positive_prompts: ["solve"]
                    negative_prompts: ["story"]
                    residual_scale: 0.5
                  - source_model: /m/code
                    positive_prompts: ["code"]
                shared_experts:
                  - source_model: /m/chat
                    positive_prompts: ["hello"]
                """);
        MoeConfig moe = config.moe();
        assertEquals("passthrough", config.mergeMethod());
        assertEquals("/m/base", moe.baseModel());
        assertEquals(MoeConfig.GateMode.CHEAP_EMBED, moe.gateMode());
        assertEquals(Dtype.BF16, moe.dtype());
        assertEquals(1, moe.expertsPerToken());
        assertEquals("qwen", moe.architecture());
        assertEquals(MoeConfig.ExpertLayout.FUSED, moe.expertLayout());
        assertEquals(3, moe.randomSeed());
        assertEquals(new MoeConfig.Expert("/m/math", List.of("solve"), List.of("story"), 0.5), moe.experts().get(0));
        assertEquals(List.of("/m/base", "/m/math", "/m/code", "/m/chat"), config.referencedModels());
    }

    @Test
    void defaultsAreTheWidelyUsedToolsHiddenGatesAndTwoExpertsPerToken() {
        MoeConfig moe = parse("base_model: /b\ngate_vectors: /g.safetensors\nexperts:\n"
                + "  - {source_model: /x, positive_prompts: [a]}\n  - {source_model: /y, positive_prompts: [b]}\n");
        assertEquals(MoeConfig.GateMode.HIDDEN, moe.gateMode());
        assertEquals(2, moe.expertsPerToken());
        assertEquals(MoeConfig.ExpertLayout.PER_EXPERT, moe.expertLayout());
        assertNull(moe.architecture());
        assertEquals(0, moe.randomSeed());
        assertThat(moe.sharedExperts()).isEmpty();
    }

    @Test
    void fewerExpertsThanExpertsPerTokenIsRefused() {
        assertThat(problems("base_model: /b\ngate_mode: random\nexperts_per_token: 3\nexperts:\n"
                + "  - source_model: /x\n  - source_model: /y\n"))
                .contains("experts_per_token is 3 but only 2 experts are listed");
    }

    @Test
    void promptedGatesNeedPromptsThatTellTheExpertsApart() {
        assertThat(problems("base_model: /b\ngate_mode: cheap_embed\nexperts:\n  - source_model: /x\n"
                + "  - {source_model: /y, positive_prompts: [b]}\n"))
                .contains("experts[0] (/x) has no positive_prompts");
        assertThat(problems("base_model: /b\ngate_mode: cheap_embed\nexperts:\n"
                + "  - {source_model: /x, positive_prompts: [a]}\n  - {source_model: /y, positive_prompts: [a]}\n"))
                .contains("same positive and negative prompts");
    }

    @Test
    void expertsFromOneModelAreRefused() {
        assertThat(problems("base_model: /b\ngate_mode: random\nexperts:\n  - source_model: /x\n  - source_model: /x\n"))
                .contains("every expert comes from /x");
    }

    @Test
    void unseededNoiseIsRefused() {
        assertThat(problems("base_model: /b\ngate_mode: random\nexperts:\n  - {source_model: /x, noise_scale: 0.1}\n"
                + "  - source_model: /y\n")).contains("experts[0]: 'noise_scale' is not supported");
    }

    @Test
    void unknownKeysAndValuesNameTheKeyAndTheChoices() {
        String message = problems("base_model: /b\ngate_mode: embed\nexpert_layout: packed\nmerge_metod: x\n"
                + "experts:\n  - {source_model: /x, prompt: [a]}\n  - source_model: /y\n");
        assertThat(message).contains("unknown key 'merge_metod'")
                .contains("experts[0]: unknown key 'prompt'")
                .contains("'gate_mode' is 'embed'; use hidden (with gate_vectors), cheap_embed, random or uniform_random")
                .contains("'expert_layout' is 'packed'");
    }

    @Test
    void gateVectorsWithoutAHiddenGateModeAreRefused() {
        assertThat(problems("base_model: /b\ngate_mode: random\ngate_vectors: /g\nexperts:\n  - source_model: /x\n"
                + "  - source_model: /y\n")).contains("'gate_vectors' is read by the hidden gate modes only");
    }

    @Test
    void aMergeConfigIsNoMoeAssembly() {
        assertNull(MergeConfigParser.parse(FILE, "merge_method: linear\nmodels:\n  - model: /a\n  - model: /b\n").moe());
    }
}
