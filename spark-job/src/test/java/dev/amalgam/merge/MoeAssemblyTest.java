package dev.amalgam.merge;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.amalgam.AmalgamException;
import dev.amalgam.format.CheckpointWriter;
import dev.amalgam.format.StoredTensor;
import dev.amalgam.job.MergeJob;
import dev.amalgam.job.MergeRequest;
import dev.amalgam.kernels.CounterRandom;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.testing.MergeFixture;
import dev.amalgam.testing.TestSpark;
import dev.amalgam.testing.Tensors;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * {@code amalgam moe}: dense models assembled into a mixture of experts. Every output tensor is
 * checked against the inputs read whole in the test (copies bit for bit, a residual-scaled down
 * projection as {@code float(x) * float(scale)} rounded once, routers as the gate mode defines
 * them), and each architecture's tensor names and config.json against the layout its
 * {@code transformers} class loads.
 */
class MoeAssemblyTest {
    private static final int LAYERS = MergeFixture.SHAPE.layers();
    private static final int HIDDEN = MergeFixture.SHAPE.hidden();
    private static final int INTERMEDIATE = MergeFixture.SHAPE.intermediate();

    @TempDir
    static Path temp;
    static Map<Dtype, MergeFixture> fixtures;

    @BeforeAll
    static void generate() {
        fixtures = MergeFixture.perDtype(temp, 3, 5_000);
    }

    private static String assemble(MergeFixture f, String name, String yaml, int chunk) {
        String out = f.out(name);
        new MergeJob(TestSpark.context()).run(MergeRequest.of(f.config(name + ".yml", yaml), out)
                .withChunkElements(chunk).withPartitions(3));
        return out;
    }

    private static String experts(MergeFixture f, String... extra) {
        StringBuilder b = new StringBuilder("experts:\n");
        String[] prompts = {"solve the equation", "write python code", "tell me a story"};
        for (int e = 0; e < 3; e++) {
            b.append("  - source_model: ").append(f.models.get(e)).append('\n')
                    .append("    positive_prompts: [\"").append(prompts[e]).append("\"]\n");
            if (e < extra.length && !extra[e].isEmpty()) {
                b.append("    ").append(extra[e]).append('\n');
            }
        }
        return b.toString();
    }

    private static JsonNode config(String out) throws Exception {
        return new ObjectMapper().readTree(Path.of(out, "config.json").toFile());
    }

    /** The standard normal gate values: Box-Muller over two counter-based uniforms per value. */
    private static float[] randomRouter(long seed, int layer, int experts, int from, int count) {
        long key = CounterRandom.streamKey(seed, "moe.router", 0);
        float[] out = new float[count * HIDDEN];
        for (int e = 0; e < count; e++) {
            for (int h = 0; h < HIDDEN; h++) {
                long i = ((long) layer * experts + from + e) * HIDDEN + h;
                double u1 = CounterRandom.uniform(key, 2 * i);
                double u2 = CounterRandom.uniform(key, 2 * i + 1);
                out[e * HIDDEN + h] = (float) (StrictMath.sqrt(-2 * StrictMath.log(1 - u1))
                        * StrictMath.cos(2 * StrictMath.PI * u2));
            }
        }
        return out;
    }

    private static byte[] scaled(StoredTensor t, double scale, Dtype dtype) {
        float[] v = Tensors.floats(t);
        for (int i = 0; i < v.length; i++) {
            v[i] = v[i] * (float) scale;
        }
        return Tensors.encode(v, dtype);
    }

    private static byte[] concat(List<byte[]> parts) {
        int n = parts.stream().mapToInt(p -> p.length).sum();
        ByteBuffer b = ByteBuffer.allocate(n);
        parts.forEach(b::put);
        return b.array();
    }

    @ParameterizedTest
    @EnumSource(value = Dtype.class, names = {"BF16", "F16", "F32"})
    void mixtralTakesAttentionFromTheBaseAndEachExpertsMlpFromItsModel(Dtype dtype) throws Exception {
        MergeFixture f = fixtures.get(dtype);
        String yaml = "base_model: " + f.base + "\narchitecture: mixtral\ngate_mode: random\nrandom_seed: 5\n"
                + "experts_per_token: 2\n" + experts(f, "residual_scale: 0.3");
        String out = assemble(f, "mixtral", yaml, 1 << 20);
        Map<String, StoredTensor> base = Tensors.open(f.base).byName();
        Map<String, StoredTensor> merged = Tensors.open(out).byName();
        Set<String> expected = new LinkedHashSet<>();
        for (String name : base.keySet()) {
            if (!name.contains(".mlp.")) {
                expected.add(name);
                assertArrayEquals(Tensors.bytes(base.get(name)), Tensors.bytes(merged.get(name)), name);
            }
        }
        String[][] names = {{"gate_proj", "w1"}, {"up_proj", "w3"}, {"down_proj", "w2"}};
        for (int l = 0; l < LAYERS; l++) {
            String layer = "model.layers." + l + ".";
            for (int e = 0; e < 3; e++) {
                Map<String, StoredTensor> source = Tensors.open(f.models.get(e)).byName();
                for (String[] n : names) {
                    String name = layer + "block_sparse_moe.experts." + e + "." + n[1] + ".weight";
                    expected.add(name);
                    StoredTensor input = source.get(layer + "mlp." + n[0] + ".weight");
                    byte[] want = e == 0 && n[0].equals("down_proj") ? scaled(input, 0.3, dtype) : Tensors.bytes(input);
                    assertArrayEquals(want, Tensors.bytes(merged.get(name)), name);
                }
            }
            String router = layer + "block_sparse_moe.gate.weight";
            expected.add(router);
            assertArrayEquals(new long[]{3, HIDDEN}, merged.get(router).shape());
            assertArrayEquals(Tensors.encode(randomRouter(5, l, 3, 0, 3), dtype), Tensors.bytes(merged.get(router)));
        }
        assertEquals(expected, merged.keySet());
        JsonNode config = config(out);
        assertEquals("MixtralForCausalLM", config.get("architectures").get(0).asText());
        assertEquals("mixtral", config.get("model_type").asText());
        assertEquals(3, config.get("num_local_experts").asInt());
        assertEquals(2, config.get("num_experts_per_tok").asInt());
        assertEquals(dtype.torchName(), config.get("torch_dtype").asText());
        assertThat(config.get("sliding_window").isNull()).isTrue();
        assertThat(Path.of(out, "tokenizer.json")).exists();
        // Chunks of 7 elements cut rows anywhere and give the same bytes.
        assertEquals(Tensors.shardDigests(out), Tensors.shardDigests(assemble(f, "mixtral-cut", yaml, 7)));
    }

    @Test
    void theFusedLayoutStacksEachExpertsGateAndUpRowsThenItsDownProjection() throws Exception {
        MergeFixture f = fixtures.get(Dtype.BF16);
        String yaml = "base_model: " + f.base + "\narchitecture: mixtral\ngate_mode: random\nexpert_layout: fused\n"
                + experts(f, "", "residual_scale: 2.5");
        String out = assemble(f, "fused", yaml, 5);
        Map<String, StoredTensor> merged = Tensors.open(out).byName();
        for (int l = 0; l < LAYERS; l++) {
            String layer = "model.layers." + l + ".";
            List<byte[]> gateUp = new ArrayList<>();
            List<byte[]> down = new ArrayList<>();
            for (int e = 0; e < 3; e++) {
                Map<String, StoredTensor> source = Tensors.open(f.models.get(e)).byName();
                gateUp.add(Tensors.bytes(source.get(layer + "mlp.gate_proj.weight")));
                gateUp.add(Tensors.bytes(source.get(layer + "mlp.up_proj.weight")));
                StoredTensor d = source.get(layer + "mlp.down_proj.weight");
                down.add(e == 1 ? scaled(d, 2.5, Dtype.BF16) : Tensors.bytes(d));
            }
            StoredTensor fusedGateUp = merged.get(layer + "mlp.experts.gate_up_proj");
            StoredTensor fusedDown = merged.get(layer + "mlp.experts.down_proj");
            assertArrayEquals(new long[]{3, 2L * INTERMEDIATE, HIDDEN}, fusedGateUp.shape());
            assertArrayEquals(new long[]{3, HIDDEN, INTERMEDIATE}, fusedDown.shape());
            assertArrayEquals(concat(gateUp), Tensors.bytes(fusedGateUp));
            assertArrayEquals(concat(down), Tensors.bytes(fusedDown));
            assertThat(merged).containsKey(layer + "mlp.gate.weight");
        }
        assertThat(merged.keySet()).noneMatch(n -> n.contains("block_sparse_moe") || n.contains("mlp.gate_proj"));
    }

    @Test
    void qwen2MoeGatesItsSharedExpertAndGivesLlamaAttentionZeroBiases() throws Exception {
        MergeFixture f = fixtures.get(Dtype.F32);
        String yaml = "base_model: " + f.base + "\narchitecture: qwen2_moe\ngate_mode: random\nrandom_seed: 9\n"
                + "experts:\n  - source_model: " + f.models.get(0) + "\n  - source_model: " + f.models.get(1)
                + "\nshared_experts:\n  - source_model: " + f.models.get(2) + "\n    residual_scale: 0.5\n";
        String out = assemble(f, "qwen2", yaml, 1 << 20);
        Map<String, StoredTensor> merged = Tensors.open(out).byName();
        Map<String, StoredTensor> shared = Tensors.open(f.models.get(2)).byName();
        for (int l = 0; l < LAYERS; l++) {
            String layer = "model.layers." + l + ".";
            assertArrayEquals(Tensors.bytes(shared.get(layer + "mlp.gate_proj.weight")),
                    Tensors.bytes(merged.get(layer + "mlp.shared_expert.gate_proj.weight")));
            assertArrayEquals(scaled(shared.get(layer + "mlp.down_proj.weight"), 0.5, Dtype.F32),
                    Tensors.bytes(merged.get(layer + "mlp.shared_expert.down_proj.weight")));
            assertThat(merged).containsKey(layer + "mlp.experts.1.up_proj.weight");
            // Gate vectors: the two experts', then the shared expert's row of its own gate.
            assertArrayEquals(Tensors.encode(randomRouter(9, l, 3, 0, 2), Dtype.F32),
                    Tensors.bytes(merged.get(layer + "mlp.gate.weight")));
            assertArrayEquals(Tensors.encode(randomRouter(9, l, 3, 2, 1), Dtype.F32),
                    Tensors.bytes(merged.get(layer + "mlp.shared_expert_gate.weight")));
            for (String p : List.of("q", "k", "v")) {
                StoredTensor bias = merged.get(layer + "self_attn." + p + "_proj.bias");
                assertArrayEquals(new long[]{HIDDEN}, bias.shape());
                assertArrayEquals(new float[HIDDEN], Tensors.floats(bias));
            }
        }
        JsonNode config = config(out);
        assertEquals("Qwen2MoeForCausalLM", config.get("architectures").get(0).asText());
        assertEquals("qwen2_moe", config.get("model_type").asText());
        assertEquals(2, config.get("num_experts").asInt());
        assertEquals(INTERMEDIATE, config.get("moe_intermediate_size").asInt());
        assertEquals(INTERMEDIATE, config.get("shared_expert_intermediate_size").asInt());
        assertEquals(1, config.get("decoder_sparse_step").asInt());
        assertThat(config.get("norm_topk_prob").asBoolean()).isTrue();
    }

    @Test
    void deepSeekTakesOneUngatedSharedExpert() throws Exception {
        MergeFixture f = fixtures.get(Dtype.BF16);
        String yaml = "base_model: " + f.base + "\narchitecture: deepseek\ngate_mode: uniform_random\n"
                + "experts:\n  - source_model: " + f.models.get(0) + "\n  - source_model: " + f.models.get(1)
                + "\nshared_experts:\n  - source_model: " + f.models.get(2) + "\n";
        String out = assemble(f, "deepseek", yaml, 1 << 20);
        Map<String, StoredTensor> merged = Tensors.open(out).byName();
        assertThat(merged).containsKey("model.layers.0.mlp.shared_experts.up_proj.weight")
                .containsKey("model.layers.1.mlp.experts.1.down_proj.weight")
                .doesNotContainKey("model.layers.0.mlp.shared_expert_gate.weight");
        // uniform_random: (2u - 1) / sqrt(hidden), as torch.nn.Linear initializes.
        long key = CounterRandom.streamKey(0, "moe.router", 0);
        for (int l = 0; l < LAYERS; l++) {
            float[] want = new float[2 * HIDDEN];
            for (int i = 0; i < want.length; i++) {
                want[i] = (float) ((2.0 * CounterRandom.uniform(key, (long) l * 2 * HIDDEN + i) - 1.0)
                        * Math.sqrt(1.0 / HIDDEN));
            }
            assertArrayEquals(Tensors.encode(want, Dtype.BF16),
                    Tensors.bytes(merged.get("model.layers." + l + ".mlp.gate.weight")));
        }
        JsonNode config = config(out);
        assertEquals("DeepseekForCausalLM", config.get("architectures").get(0).asText());
        assertEquals("deepseek", config.get("model_type").asText());
        assertEquals(2, config.get("n_routed_experts").asInt());
        assertEquals(1, config.get("n_shared_experts").asInt());
        assertEquals(0, config.get("first_k_dense_replace").asInt());
        assertEquals("softmax", config.get("scoring_func").asText());
        assertThat(config.get("auto_map").get("AutoModelForCausalLM").asText()).endsWith("DeepseekForCausalLM");
    }

    @Test
    void qwen3MoeIsBuiltFromQwen3Models() throws Exception {
        Path root = temp.resolve("qwen3");
        MergeFixture f = MergeFixture.create(root, Dtype.BF16, 2, 1 << 20);
        for (String dir : List.of(f.base, f.models.get(0), f.models.get(1))) {
            ObjectNode c = (ObjectNode) config(dir);
            c.put("model_type", "qwen3");
            Files.writeString(Path.of(dir, "config.json"), c.toString());
        }
        String yaml = "base_model: " + f.base + "\ngate_mode: random\nexperts:\n  - source_model: " + f.models.get(0)
                + "\n  - source_model: " + f.models.get(1) + "\n";
        String out = assemble(f, "qwen3-out", yaml, 1 << 20);
        JsonNode config = config(out);
        assertEquals("Qwen3MoeForCausalLM", config.get("architectures").get(0).asText());
        assertEquals("qwen3_moe", config.get("model_type").asText());
        assertEquals(2, config.get("num_experts").asInt());
        assertThat(Tensors.open(out).byName()).containsKey("model.layers.1.mlp.experts.0.gate_proj.weight")
                .containsKey("model.layers.1.mlp.gate.weight");
    }

    /** The sample tokenizer's words: a prompt's ids are the beginning-of-sequence token's, then its words'. */
    private static long[] ids(String dir, String prompt) throws Exception {
        JsonNode vocab = new ObjectMapper().readTree(Path.of(dir, "tokenizer.json").toFile()).get("model").get("vocab");
        List<Long> ids = new ArrayList<>(List.of(vocab.get("<s>").asLong()));
        for (String word : prompt.split(" ")) {
            ids.add(vocab.has(word) ? vocab.get(word).asLong() : vocab.get("<unk>").asLong());
        }
        return ids.stream().mapToLong(Long::longValue).toArray();
    }

    private static double[] unit(double[] v) {
        double n = 0;
        for (double x : v) {
            n += x * x;
        }
        double norm = Math.max(Math.sqrt(n), 1e-8);
        double[] out = v.clone();
        for (int i = 0; i < out.length; i++) {
            out[i] /= norm;
        }
        return out;
    }

    private static double[] embedded(MergeFixture f, float[] embed, List<String> prompts) throws Exception {
        double[] sum = new double[HIDDEN];
        for (String prompt : prompts) {
            for (long id : ids(f.base, prompt)) {
                for (int h = 0; h < HIDDEN; h++) {
                    sum[h] += embed[(int) id * HIDDEN + h];
                }
            }
        }
        return unit(sum);
    }

    @Test
    void cheapEmbedRoutesByTheNormalizedEmbeddingsOfEachExpertsPrompts() throws Exception {
        MergeFixture f = fixtures.get(Dtype.F16);
        String yaml = "base_model: " + f.base + "\ngate_mode: cheap_embed\nexperts:\n"
                + "  - source_model: " + f.models.get(0) + "\n    positive_prompts: [\"solve the equation\", \"prove a sum\"]\n"
                + "    negative_prompts: [\"write python code\"]\n"
                + "  - source_model: " + f.models.get(1) + "\n    positive_prompts: [\"write python code\"]\n";
        String out = assemble(f, "cheap", yaml, 1 << 20);
        float[] embed = Tensors.floats(Tensors.open(f.base).byName().get("model.embed_tokens.weight"));
        double[] first = embedded(f, embed, List.of("solve the equation", "prove a sum"));
        double[] negative = embedded(f, embed, List.of("write python code"));
        for (int h = 0; h < HIDDEN; h++) {
            first[h] -= negative[h];
        }
        first = unit(first);
        double[] second = embedded(f, embed, List.of("write python code"));
        float[] router = new float[2 * HIDDEN];
        for (int h = 0; h < HIDDEN; h++) {
            router[h] = (float) first[h];
            router[HIDDEN + h] = (float) second[h];
        }
        Map<String, StoredTensor> merged = Tensors.open(out).byName();
        for (int l = 0; l < LAYERS; l++) {
            assertArrayEquals(Tensors.encode(router, Dtype.F16),
                    Tensors.bytes(merged.get("model.layers." + l + ".block_sparse_moe.gate.weight")), "layer " + l);
        }
    }

    @Test
    void hiddenGatesAreReadFromTheGateVectorsFile() throws Exception {
        MergeFixture f = fixtures.get(Dtype.BF16);
        Path gates = temp.resolve("gates");
        Map<String, float[]> values = new HashMap<>();
        List<CheckpointWriter.Spec> specs = new ArrayList<>();
        for (int l = 0; l < LAYERS; l++) {
            float[] v = new float[3 * HIDDEN];
            for (int i = 0; i < v.length; i++) {
                v[i] = (i % 7 - 3) / 8.0f + l;
            }
            values.put("layers." + l, v);
            specs.add(new CheckpointWriter.Spec("layers." + l, Dtype.F32, new long[]{3, HIDDEN}));
        }
        CheckpointWriter.write(new Configuration(), gates.toString(), specs, Long.MAX_VALUE,
                spec -> ByteBuffer.wrap(Tensors.encode(values.get(spec.name()), Dtype.F32)).order(ByteOrder.LITTLE_ENDIAN));
        String yaml = "base_model: " + f.base + "\ngate_mode: hidden\ngate_vectors: " + gates.resolve("model.safetensors")
                + "\n" + experts(f);
        String out = assemble(f, "hidden", yaml, 1 << 20);
        Map<String, StoredTensor> merged = Tensors.open(out).byName();
        for (int l = 0; l < LAYERS; l++) {
            assertArrayEquals(Tensors.encode(values.get("layers." + l), Dtype.BF16),
                    Tensors.bytes(merged.get("model.layers." + l + ".block_sparse_moe.gate.weight")));
        }
    }

    @Test
    void hiddenGatesWithoutAGateVectorsFileAreRefusedSayingHowToMakeOne() {
        MergeFixture f = fixtures.get(Dtype.BF16);
        String config = f.config("no-gates.yml", "base_model: " + f.base + "\n" + experts(f));
        AmalgamException e = assertThrows(AmalgamException.class,
                () -> new MergeJob(TestSpark.context()).run(MergeRequest.of(config, f.out("no-gates"))));
        assertEquals(AmalgamException.Kind.CONFIG, e.kind());
        assertThat(e.getMessage()).contains("gate_mode hidden").contains("scripts/gate-vectors.py")
                .contains("gate_vectors:");
        assertThat(Path.of(f.out("no-gates"))).doesNotExist();
    }

    @Test
    void anExpertWhoseMlpDiffersFromTheBasesIsRefusedNamingIt() throws Exception {
        Path root = temp.resolve("other-size");
        MergeFixture f = fixtures.get(Dtype.BF16);
        dev.amalgam.sample.SampleCheckpoints.write(new Configuration(), root.toString(),
                new dev.amalgam.sample.SampleCheckpoints.Shape(LAYERS, HIDDEN, 2 * INTERMEDIATE, 40), Dtype.BF16, 0, 1,
                1 << 20);
        String config = f.config("wide.yml", "base_model: " + f.base + "\ngate_mode: random\nexperts:\n"
                + "  - source_model: " + f.models.get(0) + "\n  - source_model: " + root.resolve("base") + "\n");
        AmalgamException e = assertThrows(AmalgamException.class,
                () -> new MergeJob(TestSpark.context()).run(MergeRequest.of(config, f.out("wide"))));
        assertEquals(AmalgamException.Kind.INPUT, e.kind());
        assertThat(e.getMessage()).contains("experts[1]").contains("model.layers.0.mlp.gate_proj.weight")
                .contains("[48, 16]").contains("[24, 16]");
    }

    @Test
    void anArchitectureThatCannotTakeTheConfigSaysWhy() {
        MergeFixture f = fixtures.get(Dtype.BF16);
        String config = f.config("mixtral-shared.yml", "base_model: " + f.base + "\narchitecture: mixtral\n"
                + "gate_mode: random\nexperts:\n  - source_model: " + f.models.get(0) + "\n  - source_model: "
                + f.models.get(1) + "\nshared_experts:\n  - source_model: " + f.models.get(2) + "\n");
        AmalgamException e = assertThrows(AmalgamException.class,
                () -> new MergeJob(TestSpark.context()).run(MergeRequest.of(config, f.out("mixtral-shared"))));
        assertThat(e.getMessage()).contains("Mixtral has no shared experts");
        String qwen3 = f.config("qwen3-llama.yml", "base_model: " + f.base + "\narchitecture: qwen3\n"
                + "gate_mode: random\nexperts:\n  - source_model: " + f.models.get(0) + "\n  - source_model: "
                + f.models.get(1) + "\n");
        assertThat(assertThrows(AmalgamException.class,
                () -> new MergeJob(TestSpark.context()).run(MergeRequest.of(qwen3, f.out("qwen3-llama"))))
                .getMessage()).contains("Qwen3 MoE is built from qwen3 models, and the inputs are llama");
    }
}
