package dev.amalgam.merge;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.amalgam.AmalgamException;
import dev.amalgam.config.ParameterResolver;
import dev.amalgam.format.StoredTensor;
import dev.amalgam.job.MergeJob;
import dev.amalgam.job.MergeRequest;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.sample.SampleCheckpoints;
import dev.amalgam.testing.TestSpark;
import dev.amalgam.testing.Tensors;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * {@code slices}: output layers numbered in slice order, each merged from its slice's sources at
 * the same offset into their layer ranges; embeddings from the first slice, the final norm and
 * head from the last; gradients read over each slice's layers; parameters source > slice > global.
 * Checked against the inputs read whole in the test, bit for bit, in every stored dtype.
 */
class SlicesTest {
    private static final SampleCheckpoints.Shape SIX_LAYERS = new SampleCheckpoints.Shape(6, 16, 24, 40);

    @TempDir
    static Path temp;

    /** Per dtype: base, model-1, model-2 of six layers. */
    static Map<Dtype, String> roots = new java.util.EnumMap<>(Dtype.class);

    @BeforeAll
    static void generate() throws Exception {
        for (Dtype dtype : Dtype.floats()) {
            String root = temp.resolve(dtype.name()).toString();
            SampleCheckpoints.write(new Configuration(), root, SIX_LAYERS, dtype, 2, 5, 6_000);
            roots.put(dtype, root);
        }
    }

    private static String config(Dtype dtype, String name, String yaml) throws Exception {
        Path file = Path.of(roots.get(dtype), name + ".yml");
        Files.writeString(file, yaml.replace("$R", roots.get(dtype)));
        return file.toString();
    }

    private static String merge(Dtype dtype, String name, String yaml, int chunk, int partitions) throws Exception {
        String out = roots.get(dtype) + "/out-" + name;
        new MergeJob(TestSpark.context()).run(MergeRequest.of(config(dtype, name, yaml), out).withChunkElements(chunk)
                .withPartitions(partitions));
        return out;
    }

    private static Map<String, StoredTensor> tensors(String dir) {
        return Tensors.open(dir).byName();
    }

    private static String layer(String name, int layer) {
        return name.replaceFirst("layers\\.\\d+\\.", "layers." + layer + ".");
    }

    private static final String FRANKENMERGE = """
            merge_method: passthrough
            slices:
              - sources: [{model: $R/model-1, layer_range: [0, 4]}]
              - sources: [{model: $R/model-2, layer_range: [2, 6]}]
            """;

    @ParameterizedTest
    @EnumSource(value = Dtype.class, names = {"BF16", "F16", "F32"})
    void passthroughStacksTheSlicesLayersRenumberedAndCopiedBitForBit(Dtype dtype) throws Exception {
        String out = merge(dtype, "franken", FRANKENMERGE, 1 << 20, 2);
        Map<String, StoredTensor> merged = tensors(out);
        Map<String, StoredTensor> a = tensors(roots.get(dtype) + "/model-1");
        Map<String, StoredTensor> b = tensors(roots.get(dtype) + "/model-2");
        TreeSet<String> expected = new TreeSet<>();
        for (String name : a.keySet()) {
            int l = ParameterResolver.layerOf(name);
            if (l < 0) {
                expected.add(name);
                // Embeddings from the first slice's model, the rest of the non-layer tensors from the last's.
                StoredTensor from = name.contains("embed") ? a.get(name) : b.get(name);
                assertArrayEquals(Tensors.bytes(from), Tensors.bytes(merged.get(name)), name);
            } else if (l < 4) {
                expected.add(name);
                assertArrayEquals(Tensors.bytes(a.get(name)), Tensors.bytes(merged.get(name)), name);
                // Output layers 4..7 are model-2's layers 2..5.
                String second = layer(name, 4 + l);
                expected.add(second);
                assertArrayEquals(Tensors.bytes(b.get(layer(name, 2 + l))), Tensors.bytes(merged.get(second)), second);
            }
        }
        assertEquals(expected, new TreeSet<>(merged.keySet()));
        JsonNode config = new ObjectMapper().readTree(Path.of(out, "config.json").toFile());
        assertEquals(8, config.path("num_hidden_layers").asInt());
        JsonNode report = new ObjectMapper().readTree(Path.of(out, "amalgam-report.json").toFile());
        assertEquals(roots.get(dtype) + "/model-1 | " + roots.get(dtype) + "/model-2", report.path("models").get(0).asText());
    }

    @Test
    void passthroughScaleMultipliesItsSourceInFloat32() throws Exception {
        String out = merge(Dtype.BF16, "scaled", """
                merge_method: passthrough
                slices:
                  - sources: [{model: $R/model-1, layer_range: [0, 2], parameters: {scale: 0.37}}]
                  - sources: [{model: $R/model-1, layer_range: [2, 3]}]
                """, 1 << 20, 1);
        Map<String, StoredTensor> merged = tensors(out);
        Map<String, StoredTensor> a = tensors(roots.get(Dtype.BF16) + "/model-1");
        for (Map.Entry<String, StoredTensor> e : merged.entrySet()) {
            int l = ParameterResolver.layerOf(e.getKey());
            float[] source = Tensors.floats(a.get(e.getKey()));
            byte[] expected;
            if (l >= 0 && l < 2 || l < 0 && e.getKey().contains("embed")) {
                float[] scaled = new float[source.length];
                for (int j = 0; j < source.length; j++) {
                    scaled[j] = source[j] * 0.37f;
                }
                expected = Tensors.encode(scaled, Dtype.BF16);
            } else {
                expected = Tensors.bytes(a.get(e.getKey()));
            }
            assertArrayEquals(expected, Tensors.bytes(e.getValue()), e.getKey());
        }
        assertEquals(3, merged.keySet().stream().mapToInt(ParameterResolver::layerOf).max().orElse(-1) + 1);
    }

    /**
     * Two slices of a linear merge: slice 0 merges model-1 [0, 3] with model-2 [3, 6] by a slice
     * gradient, except model-2's own weight; slice 1 merges model-1 [3, 6] with model-2 [0, 3] by
     * the global weights.
     */
    private static final String LINEAR_SLICES = """
            merge_method: linear
            slices:
              - sources:
                  - {model: $R/model-1, layer_range: [0, 3]}
                  - {model: $R/model-2, layer_range: [3, 6], parameters: {weight: 0.25}}
                parameters: {weight: [0.2, 0.9]}
              - sources:
                  - {model: $R/model-1, layer_range: [3, 6]}
                  - {model: $R/model-2, layer_range: [0, 3]}
            parameters: {weight: 0.6, normalize: true}
            """;

    @ParameterizedTest
    @EnumSource(value = Dtype.class, names = {"BF16", "F16", "F32"})
    void aSliceMergesItsSourcesWithGradientsOverItsOwnLayersAndParametersBySourceSliceGlobal(Dtype dtype)
            throws Exception {
        String out = merge(dtype, "linear-slices", LINEAR_SLICES, 1 << 20, 2);
        Map<String, StoredTensor> merged = tensors(out);
        Map<String, StoredTensor> a = tensors(roots.get(dtype) + "/model-1");
        Map<String, StoredTensor> b = tensors(roots.get(dtype) + "/model-2");
        int checked = 0;
        for (String name : merged.keySet()) {
            int l = ParameterResolver.layerOf(name);
            String inA;
            String inB;
            double wA;
            double wB;
            if (l < 0) {
                inA = name;
                inB = name;
                boolean first = name.contains("embed");
                // Outside the layers t = 0: the first slice's gradient gives 0.2 to model-1.
                wA = first ? 0.2 : 0.6;
                wB = first ? 0.25 : 0.6;
            } else if (l < 3) {
                inA = layer(name, l);
                inB = layer(name, 3 + l);
                double t = l / 2.0;
                wA = (1 - t) * 0.2 + t * 0.9; // the widely used tool's interpolation
                wB = 0.25;
            } else {
                inA = layer(name, l);
                inB = layer(name, l - 3);
                wA = 0.6;
                wB = 0.6;
            }
            float[] x = Tensors.floats(a.get(inA));
            float[] y = Tensors.floats(b.get(inB));
            float fa = (float) wA;
            float fb = (float) wB;
            float[] expected = new float[x.length];
            for (int j = 0; j < x.length; j++) {
                float sum = 0.0f;
                sum += fa * x[j];
                sum += fb * y[j];
                expected[j] = sum / (fa + fb);
            }
            assertArrayEquals(Tensors.encode(expected, dtype), Tensors.bytes(merged.get(name)), name);
            checked++;
        }
        assertEquals(a.size(), checked, "as many tensors as a six-layer model");
    }

    /** Layers 0-1 of model-1 copied, then layers 2-5 merged by TIES, then model-2's last layer copied. */
    private static final String TIES_WITH_COPIES = """
            merge_method: ties
            base_model: $R/base
            slices:
              - sources: [{model: $R/model-1, layer_range: [0, 2]}]
              - sources:
                  - {model: $R/base, layer_range: [2, 5]}
                  - {model: $R/model-1, layer_range: [2, 5], parameters: {weight: 0.7, density: 0.5}}
                  - {model: $R/model-2, layer_range: [2, 5], parameters: {weight: 0.4, density: 0.3}}
              - sources: [{model: $R/model-2, layer_range: [5, 6]}]
            """;

    @ParameterizedTest
    @EnumSource(value = Dtype.class, names = {"BF16", "F16", "F32"})
    void aSliceWithOneSourceIsCopiedWhileTheOthersAreMergedByTheMethod(Dtype dtype) throws Exception {
        String out = merge(dtype, "ties-copies", TIES_WITH_COPIES, 1 << 20, 2);
        String cut = merge(dtype, "ties-copies-cut", TIES_WITH_COPIES, 13, 3);
        assertEquals(Tensors.shardDigests(out), Tensors.shardDigests(cut), "the same bytes however the work is cut");
        Map<String, StoredTensor> merged = tensors(out);
        Map<String, StoredTensor> a = tensors(roots.get(dtype) + "/model-1");
        Map<String, StoredTensor> b = tensors(roots.get(dtype) + "/model-2");
        String tiesOnly = merge(dtype, "ties-whole-models", """
                merge_method: ties
                base_model: $R/base
                models:
                  - {model: $R/model-1, parameters: {weight: 0.7, density: 0.5}}
                  - {model: $R/model-2, parameters: {weight: 0.4, density: 0.3}}
                """, 1 << 20, 1);
        Map<String, StoredTensor> ties = tensors(tiesOnly);
        assertEquals(6, merged.keySet().stream().mapToInt(ParameterResolver::layerOf).max().orElse(-1) + 1);
        for (String name : merged.keySet()) {
            int l = ParameterResolver.layerOf(name);
            byte[] expected;
            if (l < 0) {
                // Embeddings copied from model-1 (the first slice), norm and head from model-2 (the last).
                expected = Tensors.bytes(name.contains("embed") ? a.get(name) : b.get(name));
            } else if (l < 2) {
                expected = Tensors.bytes(a.get(name));
            } else if (l < 5) {
                // TIES per tensor needs nothing but the tensor: the whole-model merge's layer is the reference.
                expected = Tensors.bytes(ties.get(name));
            } else {
                expected = Tensors.bytes(b.get(name));
            }
            assertArrayEquals(expected, Tensors.bytes(merged.get(name)), name);
        }
    }

    @Test
    void outputBytesDoNotDependOnChunkingOrPartitions() throws Exception {
        Map<String, String> whole = Tensors.shardDigests(merge(Dtype.BF16, "inv-whole", LINEAR_SLICES, 1 << 20, 1));
        Map<String, String> cut = Tensors.shardDigests(merge(Dtype.BF16, "inv-cut", LINEAR_SLICES, 7, 3));
        assertEquals(whole, cut);
        Map<String, String> frankWhole = Tensors.shardDigests(merge(Dtype.BF16, "fr-whole", FRANKENMERGE, 1 << 20, 1));
        Map<String, String> frankCut = Tensors.shardDigests(merge(Dtype.BF16, "fr-cut", FRANKENMERGE, 11, 4));
        assertEquals(frankWhole, frankCut);
    }

    @Test
    void modelsWithLayerRangesAreOneSlice() throws Exception {
        String out = merge(Dtype.F32, "model-ranges", """
                merge_method: linear
                models:
                  - {model: $R/model-1, layer_range: [1, 4], parameters: {weight: 1}}
                  - {model: $R/model-2, layer_range: [3, 6], parameters: {weight: 3}}
                """, 1 << 20, 1);
        Map<String, StoredTensor> merged = tensors(out);
        assertEquals(3, merged.keySet().stream().mapToInt(ParameterResolver::layerOf).max().orElse(-1) + 1);
        // One slice is both the first and the last: embeddings, final norm and head all come from it.
        Map<String, StoredTensor> source = tensors(roots.get(Dtype.F32) + "/model-1");
        TreeSet<String> expected = new TreeSet<>();
        for (String name : source.keySet()) {
            int l = ParameterResolver.layerOf(name);
            if (l < 3) {
                expected.add(name);
            }
        }
        assertEquals(expected, new TreeSet<>(merged.keySet()));
        String q = "model.layers.0.self_attn.q_proj.weight";
        float[] x = Tensors.floats(tensors(roots.get(Dtype.F32) + "/model-1").get(layer(q, 1)));
        float[] y = Tensors.floats(tensors(roots.get(Dtype.F32) + "/model-2").get(layer(q, 3)));
        float[] got = Tensors.floats(merged.get(q));
        for (int j = 0; j < x.length; j++) {
            float sum = 0.0f;
            sum += 1.0f * x[j];
            sum += 3.0f * y[j];
            assertEquals(Float.floatToRawIntBits(sum / 4.0f), Float.floatToRawIntBits(got[j]), "element " + j);
        }
    }

    private static AmalgamException refused(String yaml) throws Exception {
        String file = config(Dtype.BF16, "bad", yaml);
        return assertThrows(AmalgamException.class, () -> new MergeJob(TestSpark.context())
                .run(MergeRequest.of(file, roots.get(Dtype.BF16) + "/out-bad")));
    }

    @Test
    void aRangePastTheModelsLayersNamesTheSliceSourceAndFix() throws Exception {
        AmalgamException e = refused("""
                merge_method: passthrough
                slices:
                  - sources: [{model: $R/model-1, layer_range: [0, 4]}]
                  - sources: [{model: $R/model-2, layer_range: [4, 9]}]
                """);
        assertEquals(AmalgamException.Kind.INPUT, e.kind());
        assertThat(e.getMessage()).contains("slices[1].sources[0]: layer_range [4, 9] goes past the 6 layers of")
                .contains("give TO at most 6");
        assertThat(Path.of(roots.get(Dtype.BF16), "out-bad")).doesNotExist();
    }

    @Test
    void slicesThatCannotBeMergedTogetherAreRefusedBeforeWorkNamingEach() throws Exception {
        AmalgamException e = refused("""
                merge_method: ties
                base_model: $R/base
                slices:
                  - sources:
                      - {model: $R/base, layer_range: [0, 3]}
                      - {model: $R/model-1, layer_range: [0, 2], parameters: {weight: 1, density: 0.5}}
                  - sources:
                      - {model: $R/model-1, layer_range: [3, 6], parameters: {weight: 1, density: 0.5}}
                      - {model: $R/model-1, layer_range: [0, 3], parameters: {weight: 1, density: 0.5}}
                  - sources:
                      - {model: $R/base, layer_range: [3, 6]}
                      - {model: $R/model-1, layer_range: [3, 6], parameters: {weight: 1, density: 0.5}}
                      - {model: $R/model-2, layer_range: [3, 6], parameters: {weight: 1, density: 0.5}}
                """);
        assertThat(e.getMessage())
                .contains("slices[0]: its sources give different numbers of layers")
                .contains("slices[1]: " + roots.get(Dtype.BF16) + "/model-1 is listed twice")
                .contains("slices[1] has no source from base_model")
                .contains("slices[2] merges 2 models besides the base but slices[0] merges 1");
    }

    @Test
    void passthroughRefusesASliceOfTwoSources() throws Exception {
        AmalgamException e = refused("""
                merge_method: passthrough
                slices:
                  - sources: [{model: $R/model-1, layer_range: [0, 2]}, {model: $R/model-2, layer_range: [0, 2]}]
                """);
        assertThat(e.getMessage()).contains("merge_method passthrough takes exactly 1 model")
                .contains("but slices[0].sources gives 2 models; change 'slices[0].sources'");
    }

    @Test
    void aGlobalParameterUnderASourceIsRefused() throws Exception {
        AmalgamException e = refused("""
                merge_method: linear
                slices:
                  - sources: [{model: $R/model-1, layer_range: [0, 2], parameters: {weight: 1, normalize: false}}]
                """);
        assertThat(e.getMessage()).contains("slices[0].sources[0].parameters.normalize is a global parameter");
    }
}
