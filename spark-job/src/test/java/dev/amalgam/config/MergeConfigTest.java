package dev.amalgam.config;

import dev.amalgam.AmalgamException;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertNull;

class MergeConfigTest {

    private static AmalgamException refused(String yaml) {
        AmalgamException e = assertThrows(AmalgamException.class, () -> MergeConfigParser.parse("ties.yml", yaml));
        assertEquals(AmalgamException.Kind.CONFIG, e.kind());
        return e;
    }

    @Test
    void theSchemaUsersAlreadyWriteParses() {
        MergeConfig c = MergeConfigParser.parse("ties.yml", """
                merge_method: ties
                base_model: /data/base
                models:
                  - model: /data/math
                    parameters: {weight: 1.0, density: [1, 0.7, 0.1]}
                  - model: /data/code
                    parameters:
                      weight: [{filter: mlp, value: 0.5}, {value: 0.3}]
                      density: 0.5
                parameters: {normalize: true, lambda: 1.0}
                dtype: float32
                out_dtype: bfloat16
                tokenizer_source: base
                random_seed: 7
                """);
        assertEquals("ties", c.mergeMethod());
        assertEquals("/data/base", c.baseModel());
        assertEquals(2, c.models().size());
        assertThat(c.models().get(0).parameters().get("density")).isInstanceOf(ParameterValue.Gradient.class);
        assertThat(c.models().get(1).parameters().get("weight")).isInstanceOf(ParameterValue.Filtered.class);
        assertEquals(new ParameterValue.Scalar(true), c.parameters().get("normalize"));
        assertEquals(7L, c.randomSeed());
        assertEquals("bfloat16", c.outDtype().torchName());
    }

    @Test
    void unknownTopLevelKeysAreErrors() {
        assertThat(refused("merge_method: ties\nmodels: [a]\nbase_modle: /x\n").getMessage())
                .contains("ties.yml: unknown key 'base_modle'");
    }

    @Test
    void slicesParseWithTheirSourcesRangesAndParameters() {
        MergeConfig c = MergeConfigParser.parse("slices.yml", """
                merge_method: linear
                slices:
                  - sources:
                      - model: /data/a
                        layer_range: [0, 16]
                        parameters: {weight: 0.3}
                      - model: /data/b
                        layer_range: [4, 20]
                    parameters: {weight: [0, 1]}
                  - sources:
                      - {model: /data/a, layer_range: [16, 32]}
                parameters: {normalize: true}
                """);
        assertThat(c.models()).isEmpty();
        assertEquals(2, c.slices().size());
        assertEquals(new LayerRange(4, 20), c.slices().get(0).sources().get(1).layerRange());
        assertThat(c.slices().get(0).parameters().get("weight")).isInstanceOf(ParameterValue.Gradient.class);
        assertEquals(new ParameterValue.Scalar(0.3), c.slices().get(0).sources().get(0).parameters().get("weight"));
        assertEquals(java.util.List.of("/data/a", "/data/b"), c.referencedModels());
    }

    @Test
    void modelsMayGiveLayerRangesToo() {
        MergeConfig c = MergeConfigParser.parse("m.yml", "merge_method: linear\nmodels:\n"
                + "  - {model: /a, layer_range: [2, 5]}\n  - /b\n");
        assertEquals(new LayerRange(2, 5), c.models().get(0).layerRange());
        assertNull(c.models().get(1).layerRange());
    }

    @Test
    void malformedSlicesNameTheSliceTheKeyAndTheFix() {
        AmalgamException e = refused("""
                merge_method: passthrough
                slices:
                  - sources: [{model: /a}]
                  - sources: [{model: /a, layer_range: [5, 5]}]
                  - sources: [{model: /a, layer_range: [0, 2.5]}]
                  - {sources: [], residual_weight: 1}
                """);
        assertThat(e.problems()).hasSize(5);
        assertThat(e.getMessage())
                .contains("slices[0].sources[0]: 'layer_range' is required in a slice")
                .contains("slices[1].sources[0]: 'layer_range' [5,5] holds no layers; give [FROM, TO] with 0 <= FROM < TO")
                .contains("slices[2].sources[0]: 'layer_range' must be [FROM, TO], two whole numbers")
                .contains("slices[3]: unknown key 'residual_weight'")
                .contains("slices[3].sources must be a non-empty list");
    }

    @Test
    void everyExampleConfigParses() throws Exception {
        try (var files = java.nio.file.Files.list(java.nio.file.Path.of("../conf/examples"))) {
            for (java.nio.file.Path p : files.filter(f -> f.toString().endsWith(".yml")).toList()) {
                MergeConfig c = MergeConfigParser.parse(p.toString(), java.nio.file.Files.readString(p));
                assertThat(c.referencedModels()).as(p.toString()).isNotEmpty();
            }
        }
    }

    @Test
    void modelsAndSlicesTogetherAreRefused() {
        assertThat(refused("merge_method: linear\nmodels: [/a]\nslices: [{sources: [{model: /a, layer_range: [0, 1]}]}]\n")
                .getMessage()).contains("give either 'models' or 'slices', not both");
    }

    @Test
    void theTokenizerSectionGivesTheSourceTheTokensAndThePadding() {
        MergeConfig c = MergeConfigParser.parse("t.yml", "merge_method: linear\nmodels: [/a, /b]\ntokenizer:\n"
                + "  pad_to_multiple_of: 64\n  tokens:\n    '<|im_start|>': {source: /a, force: true}\n"
                + "    '<|im_end|>': {source: {kind: model_token, model: /b, token_id: 2}}\n    pad: {source: {kind: zero}}\n"
                + "chat_template: chatml\n");
        assertEquals("union", c.tokenizerSource());
        assertEquals(64, c.tokenizer().padToMultipleOf());
        assertEquals("chatml", c.tokenizer().chatTemplate());
        assertEquals(List.of("<|im_start|>", "<|im_end|>", "pad"), List.copyOf(c.tokenizer().tokens().keySet()));
        assertEquals(new TokenizerSpec.TokenSpec(new TokenizerSpec.TokenSource.Model("/a"), true),
                c.tokenizer().tokens().get("<|im_start|>"));
        assertEquals(new TokenizerSpec.TokenSource.ModelToken("/b", null, 2),
                c.tokenizer().tokens().get("<|im_end|>").source());
        assertEquals(new TokenizerSpec.TokenSource.Zero(), c.tokenizer().tokens().get("pad").source());
        assertEquals("union", MergeConfigParser.parse("t.yml", "merge_method: linear\nmodels: [/a]\n"
                + "tokenizer_source: union\n").tokenizerSource());
    }

    @Test
    void aBadTokenizerSectionNamesTheKey() {
        String message = refused("merge_method: linear\nmodels: [/a]\ntokenizer_source: base\ntokenizer:\n"
                + "  pad_to_multiple_of: 0\n  tokens:\n    x: {source: {kind: model_token, model: /a}}\n"
                + "    y: {source: {kind: mean}}\n  padding: 8\n").getMessage();
        assertThat(message).contains("give either 'tokenizer_source' or 'tokenizer'")
                .contains("tokenizer.pad_to_multiple_of must be a whole number of at least 1")
                .contains("tokenizer.tokens['x'].source: a model_token source names 'model' and one of 'token' or "
                        + "'token_id'")
                .contains("tokenizer.tokens['y'].source must be a model path, {kind: zero}")
                .contains("tokenizer: unknown key 'padding'");
    }

    @Test
    void unknownDtypesNameTheKey() {
        assertThat(refused("merge_method: ties\nmodels: [a]\nout_dtype: float8\n").getMessage())
                .contains("'out_dtype' is 'float8'; use float32, float16 or bfloat16");
    }

    @Test
    void everyProblemIsReportedAtOnce() {
        AmalgamException e = refused("models: [{model: a, weight: 1}]\nfoo: 1\n");
        assertThat(e.problems()).hasSize(3);
        assertThat(e.getMessage()).contains("'merge_method' is required").contains("unknown key 'foo'")
                .contains("models[0]: unknown key 'weight'");
    }

    @Test
    void malformedFilterEntriesAreErrors() {
        assertThat(refused("merge_method: ties\nmodels:\n  - model: a\n    parameters: {weight: [{filter: mlp}]}\n")
                .getMessage()).contains("'models[0].parameters.weight[0]' must be {filter: NAME_PART, value: V}");
    }

    @Test
    void invalidYamlIsAnError() {
        assertThat(refused("merge_method: [ties\n").getMessage()).contains("not valid YAML");
    }

    @Test
    void gradientsInterpolateOverTheLayerStack() {
        ParameterResolver five = new ParameterResolver(5);
        ParameterValue g = new ParameterValue.Gradient(new double[]{1, 0.7, 0.1});
        assertEquals(1.0, five.resolve(g, "model.layers.0.mlp.up_proj.weight"));
        assertEquals(0.85, (Double) five.resolve(g, "model.layers.1.mlp.up_proj.weight"), 1e-12);
        assertEquals(0.7, (Double) five.resolve(g, "model.layers.2.mlp.up_proj.weight"), 1e-12);
        assertEquals(0.1, five.resolve(g, "model.layers.4.mlp.up_proj.weight"));
        assertEquals(1.0, five.resolve(g, "model.embed_tokens.weight"), "outside the stack: t = 0");
    }

    @Test
    void theFirstMatchingFilterWins() {
        ParameterResolver r = new ParameterResolver(2);
        ParameterValue f = new ParameterValue.Filtered(java.util.List.of(
                new ParameterValue.FilterEntry("mlp", new ParameterValue.Scalar(0.5)),
                new ParameterValue.FilterEntry("layers.1", new ParameterValue.Scalar(0.9)),
                new ParameterValue.FilterEntry("", new ParameterValue.Scalar(0.3))));
        assertEquals(0.5, r.resolve(f, "model.layers.1.mlp.up_proj.weight"));
        assertEquals(0.9, r.resolve(f, "model.layers.1.self_attn.q_proj.weight"));
        assertEquals(0.3, r.resolve(f, "lm_head.weight"));
        ParameterValue noFallback = new ParameterValue.Filtered(java.util.List.of(
                new ParameterValue.FilterEntry("mlp", new ParameterValue.Scalar(0.5))));
        assertNull(r.resolve(noFallback, "lm_head.weight"));
    }

    @Test
    void layerIndicesAreParsedFromTensorNames() {
        assertEquals(12, ParameterResolver.layerOf("model.layers.12.mlp.up_proj.weight"));
        assertEquals(3, ParameterResolver.layerOf("layers.3.attention.wq.weight"));
        assertEquals(-1, ParameterResolver.layerOf("model.norm.weight"));
        assertEquals(7, ParameterResolver.layerOf("transformer.h.7.attn.c_attn.weight"));
        assertEquals(2, ParameterResolver.layerOf("transformer.blocks.2.ffn.up_proj.weight"));
        assertEquals(-1, ParameterResolver.layerOf("transformer.wte.weight"));
    }

    @Test
    void layerIndicesAreRenumberedInPlace() {
        assertEquals("model.layers.40.mlp.up_proj.weight", ParameterResolver.withLayer("model.layers.12.mlp.up_proj.weight", 40));
        assertEquals("transformer.h.0.attn.c_attn.bias", ParameterResolver.withLayer("transformer.h.11.attn.c_attn.bias", 0));
    }
}
