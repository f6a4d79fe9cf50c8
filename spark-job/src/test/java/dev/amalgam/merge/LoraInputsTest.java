package dev.amalgam.merge;

import dev.amalgam.AmalgamException;
import dev.amalgam.format.CheckpointWriter;
import dev.amalgam.format.StoredTensor;
import dev.amalgam.job.MergeJob;
import dev.amalgam.job.MergeRequest;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.kernels.ElementCodec;
import dev.amalgam.sample.SampleCheckpoints;
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
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * {@code model: BASE+ADAPTER}: the base with a PEFT LoRA adapter applied, {@code W + s * B A} with
 * {@code s = alpha / r} (or {@code alpha / sqrt(r)} with rsLoRA), rounded to the weight's dtype, read
 * chunk by chunk. Checked against the whole matrices computed plainly in the test, bit for bit.
 */
class LoraInputsTest {
    private static final List<String> TARGETS = List.of("q_proj", "v_proj", "down_proj");

    @TempDir
    static Path temp;
    static Map<Dtype, MergeFixture> fixtures;

    @BeforeAll
    static void generate() throws Exception {
        fixtures = MergeFixture.perDtype(temp, 1, 6_000);
        for (Map.Entry<Dtype, MergeFixture> e : fixtures.entrySet()) {
            String root = e.getValue().root.toString();
            SampleCheckpoints.writeAdapter(new Configuration(), root + "/adapter", MergeFixture.SHAPE, e.getKey(), 4, 8.0,
                    false, TARGETS, 3);
            SampleCheckpoints.writeAdapter(new Configuration(), root + "/rslora", MergeFixture.SHAPE, Dtype.F32, 4, 8.0,
                    true, List.of("o_proj"), 4);
        }
    }

    private static String merge(MergeFixture f, String name, String yaml, int chunk) {
        String out = f.out(name);
        new MergeJob(TestSpark.context()).run(MergeRequest.of(f.config(name + ".yml", yaml), out).withChunkElements(chunk)
                .withPartitions(3));
        return out;
    }

    /** W + s * (B A), each entry of B A summed in float32 from 0 in ascending k, rounded to {@code dtype}. */
    private static float[] adapted(float[] w, float[] a, float[] b, int out, int in, int rank, float s, Dtype dtype) {
        float[] result = new float[w.length];
        for (int o = 0; o < out; o++) {
            for (int i = 0; i < in; i++) {
                float d = 0.0f;
                for (int k = 0; k < rank; k++) {
                    d += b[o * rank + k] * a[k * in + i];
                }
                float v = w[o * in + i] + s * d;
                result[o * in + i] = Tensors.decode(Tensors.encode(new float[]{v}, dtype), dtype)[0];
            }
        }
        return result;
    }

    private static void assertAdapted(MergeFixture f, Dtype dtype, String adapter, String out, float scale,
                                      List<String> targets) {
        Map<String, StoredTensor> base = Tensors.open(f.base).byName();
        Map<String, StoredTensor> factors = Tensors.open(f.root + "/" + adapter + "-as-model").byName();
        Map<String, StoredTensor> merged = Tensors.open(out).byName();
        int adaptedTensors = 0;
        for (Map.Entry<String, StoredTensor> e : base.entrySet()) {
            String name = e.getKey();
            String module = name.substring(0, name.length() - ".weight".length());
            String last = module.substring(module.lastIndexOf('.') + 1);
            byte[] expected;
            if (targets.contains(last) && name.contains(".layers.")) {
                StoredTensor a = factors.get("base_model.model." + module + ".lora_A.weight");
                StoredTensor b = factors.get("base_model.model." + module + ".lora_B.weight");
                long[] shape = e.getValue().shape();
                expected = Tensors.encode(adapted(Tensors.floats(e.getValue()), Tensors.floats(a), Tensors.floats(b),
                        (int) shape[0], (int) shape[1], (int) a.shape()[0], scale, dtype), dtype);
                adaptedTensors++;
            } else {
                expected = Tensors.bytes(e.getValue());
            }
            assertArrayEquals(expected, Tensors.bytes(merged.get(name)), name);
        }
        assertThat(adaptedTensors).isPositive();
    }

    /** The adapter file read as a checkpoint, so the test can read its factors whole. */
    private static void exposeFactors(MergeFixture f, String adapter) throws Exception {
        Path dir = f.root.resolve(adapter + "-as-model");
        Files.createDirectories(dir);
        Files.copy(f.root.resolve(adapter).resolve("adapter_model.safetensors"), dir.resolve("model.safetensors"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    }

    @ParameterizedTest
    @EnumSource(value = Dtype.class, names = {"BF16", "F16", "F32"})
    void aBaseWithAnAdapterReadsAsTheWeightsWithTheAdapterMergedIn(Dtype dtype) throws Exception {
        MergeFixture f = fixtures.get(dtype);
        exposeFactors(f, "adapter");
        String yaml = "merge_method: passthrough\nmodels:\n  - model: " + f.base + "+" + f.root + "/adapter\n";
        String out = merge(f, "adapted", yaml, 1 << 20);
        assertAdapted(f, dtype, "adapter", out, 8.0f / 4, TARGETS);
        // Chunks cutting rows anywhere give the same bytes.
        assertEquals(Tensors.shardDigests(out), Tensors.shardDigests(merge(f, "adapted-cut", yaml, 7)));
    }

    @Test
    void rsLoraScalesByAlphaOverTheRootOfTheRank() throws Exception {
        MergeFixture f = fixtures.get(Dtype.BF16);
        exposeFactors(f, "rslora");
        String out = merge(f, "rslora-out", "merge_method: passthrough\nmodels:\n  - model: " + f.base + "+" + f.root
                + "/rslora\n", 1 << 20);
        assertAdapted(f, Dtype.BF16, "rslora", out, (float) (8.0 / Math.sqrt(4)), List.of("o_proj"));
    }

    @Test
    void anAdaptedModelMergesAsTheCheckpointItStandsFor() throws Exception {
        MergeFixture f = fixtures.get(Dtype.BF16);
        String materialized = merge(f, "materialized", "merge_method: passthrough\nmodels:\n  - model: " + f.base + "+"
                + f.root + "/adapter\n", 1 << 20);
        Files.copy(Path.of(f.base, "config.json"), Path.of(materialized, "config.json"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        String ties = "merge_method: ties\nbase_model: " + f.base + "\nmodels:\n  - model: %s\n"
                + "    parameters: {weight: 0.6, density: 0.5}\n  - model: " + f.models.get(0)
                + "\n    parameters: {weight: 0.4, density: 0.7}\n";
        String viaAdapter = merge(f, "ties-adapter", String.format(ties, f.base + "+" + f.root + "/adapter"), 37);
        String viaCheckpoint = merge(f, "ties-materialized", String.format(ties, materialized), 37);
        assertEquals(Tensors.shardDigests(viaCheckpoint), Tensors.shardDigests(viaAdapter));
    }

    @Test
    void aTokenizerSourceWithAnAdapterTakesTheBasesTokenizer() throws Exception {
        MergeFixture f = fixtures.get(Dtype.F32);
        String out = merge(f, "tokenizer-of-adapted", "merge_method: passthrough\nmodels:\n  - model: " + f.base + "+"
                + f.root + "/adapter\ntokenizer_source: " + f.base + "+" + f.root + "/adapter\n", 1 << 20);
        assertArrayEquals(Files.readAllBytes(Path.of(f.base, "tokenizer_config.json")),
                Files.readAllBytes(Path.of(out, "tokenizer_config.json")));
    }

    private static AmalgamException refused(MergeFixture f, String adapter) {
        String yaml = "merge_method: passthrough\nmodels:\n  - model: " + f.base + "+" + adapter + "\n";
        String config = f.config("bad-adapter.yml", yaml);
        return assertThrows(AmalgamException.class, () -> new MergeJob(TestSpark.context())
                .run(MergeRequest.of(config, f.out("bad-adapter-out"))));
    }

    @Test
    void aFactorWithoutItsPartnerOrOfTheWrongShapeIsRefusedNamingTheAdapterFileAndModule() throws Exception {
        MergeFixture f = fixtures.get(Dtype.F32);
        String dir = f.root + "/broken";
        String m = "base_model.model.model.layers.0.self_attn.";
        CheckpointWriter.write(new Configuration(), dir, List.of(
                new CheckpointWriter.Spec(m + "q_proj.lora_A.weight", Dtype.F32, new long[]{4, 16}),
                new CheckpointWriter.Spec(m + "k_proj.lora_A.weight", Dtype.F32, new long[]{4, 16}),
                new CheckpointWriter.Spec(m + "k_proj.lora_B.weight", Dtype.F32, new long[]{15, 4})),
                Long.MAX_VALUE, spec -> ByteBuffer.allocate((int) spec.bytes()).order(ByteOrder.LITTLE_ENDIAN));
        Files.move(Path.of(dir, "model.safetensors"), Path.of(dir, "adapter_model.safetensors"));
        Files.writeString(Path.of(dir, "adapter_config.json"),
                "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"q_proj\", \"k_proj\"]}");
        AmalgamException e = refused(f, dir);
        assertEquals(AmalgamException.Kind.INPUT, e.kind());
        assertThat(e.getMessage())
                .contains(dir + "/adapter_model.safetensors: module 'model.layers.0.self_attn.q_proj' has lora_A but no lora_B")
                .contains("module 'model.layers.0.self_attn.k_proj': lora_A [4, 16] and lora_B [15, 4] do not fit weight [16, 16]");
        assertThat(Path.of(f.out("bad-adapter-out"))).doesNotExist();
    }

    @Test
    void anAdapterDirectoryWithoutItsConfigOrWithDoraIsRefused() throws Exception {
        MergeFixture f = fixtures.get(Dtype.F32);
        Path dora = f.root.resolve("dora");
        Files.createDirectories(dora);
        assertThat(refused(f, dora.toString()).getMessage()).contains(dora + ": holds no adapter_config.json");
        Files.writeString(dora.resolve("adapter_config.json"), "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, "
                + "\"use_dora\": true}");
        assertThat(refused(f, dora.toString()).getMessage()).contains("use_dora is true; DoRA adapters")
                .contains("holds no adapter_model.safetensors");
    }
}
