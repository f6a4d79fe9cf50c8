package dev.amalgam.merge;

import dev.amalgam.format.Checkpoint;
import dev.amalgam.format.StoredTensor;
import dev.amalgam.job.MergeJob;
import dev.amalgam.job.MergeRequest;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.staging.WriteMode;
import dev.amalgam.testing.ComposedReference;
import dev.amalgam.testing.MergeFixture;
import dev.amalgam.testing.TestSpark;
import dev.amalgam.testing.Tensors;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The methods composed from statistics requests and kernel primitives (the slerp family,
 * karcher, model_stock, nearswap, RAM, SCE, arcee_fusion), on bf16, f16 and f32 checkpoints with ties and sign
 * conflicts, give bit for bit what the whole-tensor reference gives; chunks of 37 elements cut
 * the larger tensors while the norms stay single-chunk, so both statistics paths run.
 */
class ComposedMethodsTest {
    private static final double[] WEIGHTS = {0.6, 0.35, 0.8};

    @TempDir
    static Path temp;
    private static Map<Dtype, MergeFixture> fixtures;

    @BeforeAll
    static void generate() {
        fixtures = MergeFixture.perDtype(temp, 3, 6_000);
    }

    /** method, extra global parameters, models used, whether the base is an input. */
    static Stream<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>();
        for (Dtype dtype : Dtype.floats()) {
            cases.add(Arguments.of("slerp", dtype, "t: [0.2, 0.9]", 1, true));
            cases.add(Arguments.of("nuslerp", dtype, "", 2, true));
            cases.add(Arguments.of("nuslerp", dtype, "nuslerp_flatten: false", 2, false));
            cases.add(Arguments.of("nuslerp", dtype, "nuslerp_flatten: false, nuslerp_row_wise: true", 2, true));
            cases.add(Arguments.of("nuslerp", dtype, "nuslerp_flatten: false, nuslerp_row_wise: true", 2, false));
            cases.add(Arguments.of("multislerp", dtype, "", 3, true));
            cases.add(Arguments.of("multislerp", dtype, "normalize_weights: false", 2, false));
            cases.add(Arguments.of("karcher", dtype, "", 3, true));
            cases.add(Arguments.of("model_stock", dtype, "", 3, true));
            cases.add(Arguments.of("model_stock", dtype, "filter_wise: true", 2, true));
            cases.add(Arguments.of("nearswap", dtype, "t: 0.004", 1, true));
            cases.add(Arguments.of("ram", dtype, "epsilon: 0.005", 3, true));
            cases.add(Arguments.of("ramplus_tl", dtype, "epsilon: 0.005, r: 0.5, alpha: 0.3", 3, true));
            cases.add(Arguments.of("sce", dtype, "", 3, true));
            cases.add(Arguments.of("sce", dtype, "select_topk: 0.3", 3, true));
            cases.add(Arguments.of("sce", dtype, "select_topk: 0.6", 2, true));
            cases.add(Arguments.of("arcee_fusion", dtype, "", 1, true));
        }
        return cases.stream();
    }

    static String config(String method, String base, List<String> models, boolean withBase, String globals) {
        StringBuilder s = new StringBuilder("merge_method: " + method + "\n");
        if (withBase) {
            s.append("base_model: ").append(base).append('\n');
        }
        s.append("models:\n");
        boolean weighted = method.equals("nuslerp") || method.equals("multislerp");
        for (int i = 0; i < models.size(); i++) {
            s.append("  - model: ").append(models.get(i)).append('\n');
            if (weighted) {
                s.append("    parameters: {weight: ").append(WEIGHTS[i]).append("}\n");
            }
        }
        if (!globals.isEmpty()) {
            s.append("parameters: {").append(globals).append("}\n");
        }
        return s.toString();
    }

    @ParameterizedTest(name = "{0} on {1} {2}")
    @MethodSource("cases")
    void matchesTheWholeTensorReferenceBitForBit(String method, Dtype dtype, String globals, int modelCount,
                                                 boolean withBase) {
        MergeFixture f = fixtures.get(dtype);
        String name = method + "-" + dtype + "-" + Math.abs(globals.hashCode()) + "-" + modelCount + (withBase ? "-b" : "");
        String configFile = f.config(name + ".yml", config(method, f.base, f.models.subList(0, modelCount), withBase,
                globals));
        String out = f.out(name);
        new MergeJob(TestSpark.context()).run(MergeRequest.of(configFile, out).withChunkElements(37).withWholeTensorStatistics(false).withPartitions(3));

        Checkpoint merged = Tensors.open(out);
        Map<String, StoredTensor> base = Tensors.open(f.base).byName();
        List<Map<String, StoredTensor>> models = f.models.subList(0, modelCount).stream()
                .map(m -> Tensors.open(m).byName()).toList();
        for (StoredTensor t : merged.tensors()) {
            float[] b = Tensors.floats(base.get(t.name()));
            float[][] x = new float[modelCount][];
            for (int i = 0; i < modelCount; i++) {
                x[i] = Tensors.floats(models.get(i).get(t.name()));
            }
            int cols = (int) t.shape()[t.shape().length - 1];
            int firstDim = (int) t.shape()[0];
            float[] expected = reference(method, globals, t.name(), withBase ? b : null, x, cols, firstDim);
            assertArrayEquals(Tensors.encode(expected, dtype), Tensors.bytes(t), method + " differs on " + t.name());
        }
        assertThat(merged.tensors().size()).isGreaterThan(10);
    }

    private static float[] reference(String method, String globals, String tensor, float[] base, float[][] x, int cols,
                                     int firstDim) {
        return switch (method) {
            case "slerp" -> ComposedReference.slerp(base, x[0], tensor.contains("layers.1.") ? 0.9 : 0.2);
            case "nuslerp" -> globals.contains("row_wise: true")
                    ? ComposedReference.nuslerpColumns(base, x[0], x[1], WEIGHTS[0], WEIGHTS[1], firstDim)
                    : ComposedReference.nuslerp(base, x[0], x[1], WEIGHTS[0], WEIGHTS[1],
                    globals.contains("flatten: false") ? cols : 0);
            case "multislerp" -> {
                float[][] v = vectors(base, x);
                double[] w = java.util.Arrays.copyOf(WEIGHTS, x.length);
                float[] c = ComposedReference.multislerpCoefficients(ComposedReference.gram(v), w,
                        !globals.contains("normalize_weights: false"), 1e-8);
                yield ComposedReference.combine(v, c, base);
            }
            case "karcher" -> {
                float[][] v = new float[x.length + 1][];
                System.arraycopy(x, 0, v, 0, x.length);
                v[x.length] = base;
                yield ComposedReference.combine(v, ComposedReference.karcherCoefficients(ComposedReference.gram(v), 10,
                        1e-5), null);
            }
            case "model_stock" -> ComposedReference.modelStock(base, x, globals.contains("filter_wise: true") ? cols : 0);
            case "nearswap" -> ComposedReference.nearswap(base, x[0], 0.004f);
            case "ram" -> ComposedReference.ram(base, x, 0.005f, false, 0, 0);
            case "ramplus_tl" -> ComposedReference.ram(base, x, 0.005f, true, 0.5, 0.3);
            case "sce" -> ComposedReference.sce(base, x, globals.isEmpty() ? 1.0
                    : Double.parseDouble(globals.substring(globals.indexOf(':') + 1).trim()));
            case "arcee_fusion" -> ComposedReference.arceeFusion(base, x[0], cols);
            default -> throw new IllegalArgumentException(method);
        };
    }

    private static float[][] vectors(float[] base, float[][] x) {
        float[][] v = new float[x.length][];
        for (int i = 0; i < x.length; i++) {
            v[i] = base == null ? x[i] : ComposedReference.delta(x[i], base);
        }
        return v;
    }

    static Stream<Arguments> invariance() {
        return Stream.of(
                Arguments.of("slerp", "t: [0.1, 0.7]", 1, true),
                Arguments.of("nuslerp", "nuslerp_flatten: false", 2, true),
                Arguments.of("nuslerp", "nuslerp_flatten: false, nuslerp_row_wise: true", 2, true),
                Arguments.of("multislerp", "", 3, false),
                Arguments.of("karcher", "max_iter: 3", 3, true),
                Arguments.of("model_stock", "", 3, true),
                Arguments.of("ramplus_tl", "epsilon: 0.005", 3, true),
                Arguments.of("sce", "select_topk: 0.4", 3, true),
                Arguments.of("arcee_fusion", "", 1, true));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("invariance")
    void outputBytesAreTheSameForEveryChunkingAndPartitioning(String method, String globals, int modelCount,
                                                              boolean withBase) {
        MergeFixture f = fixtures.get(Dtype.BF16);
        String name = method + "-" + Math.abs(globals.hashCode());
        String config = f.config(name + "-inv.yml", config(method, f.base, f.models.subList(0, modelCount), withBase,
                globals));
        Map<String, String> reference = merge(f, config, name + "-inv-ref", 1 << 20, 1, WriteMode.POSITIONED);
        assertEquals(reference, merge(f, config, name + "-inv-7", 7, 4, WriteMode.POSITIONED), "7-element chunks");
        assertEquals(reference, merge(f, config, name + "-inv-97", 97, 2, WriteMode.PARTS), "97-element chunks, parts");
    }

    private static Map<String, String> merge(MergeFixture f, String config, String name, int chunk, int partitions,
                                             WriteMode mode) {
        String out = f.out(name);
        new MergeJob(TestSpark.context()).run(MergeRequest.of(config, out).withChunkElements(chunk).withWholeTensorStatistics(false)
                .withPartitions(partitions).withWriteMode(mode).withShardBytes(4_000));
        return Tensors.shardDigests(out);
    }
}
