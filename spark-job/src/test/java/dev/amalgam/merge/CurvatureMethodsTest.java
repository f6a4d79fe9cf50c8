package dev.amalgam.merge;

import dev.amalgam.AmalgamException;
import dev.amalgam.job.MergeJob;
import dev.amalgam.job.MergeRequest;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.testing.MergeFixture;
import dev.amalgam.testing.TestSpark;
import dev.amalgam.testing.Tensors;
import dev.amalgam.testing.WholeModelReference;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
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
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * OTA and its mask variant (Fast Fisher Grafting), merged from the fine-tunes' second-moment
 * companions, against straightforward whole-tensor references, bit for bit on bf16, f16 and f32
 * in single- and multi-chunk plans.
 */
class CurvatureMethodsTest {
    @TempDir
    static Path temp;
    private static Map<Dtype, MergeFixture> fixtures;

    @BeforeAll
    static void generate() {
        fixtures = MergeFixture.perDtype(temp, 3, 6_000);
    }

    private static String moment(String model) {
        return dev.amalgam.cli.ExampleConfigs.companion(model, "second_moment");
    }

    static Stream<Arguments> chunkings() {
        List<Arguments> cases = new ArrayList<>();
        for (Dtype dtype : Dtype.floats()) {
            cases.add(Arguments.of(dtype, 37));
            cases.add(Arguments.of(dtype, 1 << 20));
        }
        return cases.stream();
    }

    private static Map<String, dev.amalgam.format.StoredTensor> run(MergeFixture f, String name, String yaml, int chunk) {
        String out = f.out(name);
        new MergeJob(TestSpark.context()).run(MergeRequest.of(f.config(name + ".yml", yaml), out)
                .withChunkElements(chunk).withPartitions(3));
        return Tensors.open(out).byName();
    }

    @ParameterizedTest(name = "{0}, chunks of {1}")
    @MethodSource("chunkings")
    void otaAveragesTheModelsByTheRootsOfTheirSecondMoments(Dtype dtype, int chunk) {
        MergeFixture f = fixtures.get(dtype);
        StringBuilder yaml = new StringBuilder("merge_method: ota\nmodels:\n");
        for (int i = 0; i < 3; i++) {
            yaml.append("  - model: ").append(f.models.get(i)).append("\n    second_moment: ")
                    .append(moment(f.models.get(i))).append("\n");
        }
        yaml.append("parameters: {epsilon: 0.001}\n");
        Map<String, dev.amalgam.format.StoredTensor> merged = run(f, "ota-" + dtype + "-" + chunk, yaml.toString(),
                chunk);

        List<Map<String, float[]>> models = f.models.stream().map(Tensors::all).toList();
        List<Map<String, float[]>> moments = f.models.stream().map(m -> Tensors.all(moment(m))).toList();
        assertEquals(models.get(0).keySet(), merged.keySet());
        for (String t : merged.keySet()) {
            float[][] x = models.stream().map(m -> m.get(t)).toArray(float[][]::new);
            float[][] v = moments.stream().map(m -> m.get(t)).toArray(float[][]::new);
            assertArrayEquals(Tensors.encode(WholeModelReference.ota(x, v, 0.001f), dtype),
                    Tensors.bytes(merged.get(t)), "ota differs on " + t);
        }
    }

    private static String graftConfig(MergeFixture f, int model, double density) {
        return "merge_method: ffg\nbase_model: " + f.base + "\nmodels:\n  - model: " + f.models.get(model)
                + "\n    second_moment: " + moment(f.models.get(model)) + "\nparameters: {density: " + density + "}\n";
    }

    static Stream<Arguments> graftCases() {
        List<Arguments> cases = new ArrayList<>();
        for (Dtype dtype : Dtype.floats()) {
            cases.add(Arguments.of(dtype, 0.3, 37));
            cases.add(Arguments.of(dtype, 0.55, 1 << 20));
        }
        cases.add(Arguments.of(Dtype.BF16, 0.0005, 37));
        cases.add(Arguments.of(Dtype.F16, 1.0, 37));
        cases.add(Arguments.of(Dtype.F32, 0.0, 1 << 20));
        return cases.stream();
    }

    @ParameterizedTest(name = "{0} density {1}, chunks of {2}")
    @MethodSource("graftCases")
    void ffgGraftsTheDeltasOfHighestSalienceOntoTheBase(Dtype dtype, double density, int chunk) {
        MergeFixture f = fixtures.get(dtype);
        Map<String, dev.amalgam.format.StoredTensor> merged = run(f, "ffg-" + dtype + "-" + density + "-" + chunk,
                graftConfig(f, 1, density), chunk);

        Map<String, float[]> base = Tensors.all(f.base);
        Map<String, float[]> x = Tensors.all(f.models.get(1));
        Map<String, float[]> v = Tensors.all(moment(f.models.get(1)));
        assertEquals(base.keySet(), merged.keySet());
        for (String t : merged.keySet()) {
            assertArrayEquals(Tensors.encode(WholeModelReference.graft(base.get(t), x.get(t), v.get(t), density), dtype),
                    Tensors.bytes(merged.get(t)), "ffg differs on " + t);
        }
    }

    @Test
    void ffgCutsTiesAtTheThresholdByFlatIndex() {
        // The generated deltas and second moments repeat values, so equal saliences straddle the cut.
        MergeFixture f = fixtures.get(Dtype.BF16);
        double density = 0.3;
        Map<String, float[]> base = Tensors.all(f.base);
        Map<String, float[]> x = Tensors.all(f.models.get(1));
        Map<String, float[]> v = Tensors.all(moment(f.models.get(1)));
        int straddling = 0;
        for (String t : base.keySet()) {
            float[] g = WholeModelReference.graft(base.get(t), x.get(t), v.get(t), density);
            java.util.Set<Float> kept = new java.util.HashSet<>();
            java.util.Set<Float> dropped = new java.util.HashSet<>();
            for (int j = 0; j < g.length; j++) {
                float d = x.get(t)[j] - base.get(t)[j];
                float score = (d * d) * v.get(t)[j];
                boolean grafted = Float.floatToRawIntBits(g[j]) != Float.floatToRawIntBits(base.get(t)[j]) || d == 0;
                (grafted ? kept : dropped).add(score);
            }
            kept.retainAll(dropped);
            straddling += kept.isEmpty() ? 0 : 1;
        }
        assertThat(straddling).as("tensors whose threshold salience is both grafted and not").isPositive();
        Map<String, dev.amalgam.format.StoredTensor> merged = run(f, "ffg-ties", graftConfig(f, 1, density), 37);
        for (String t : base.keySet()) {
            assertArrayEquals(Tensors.encode(WholeModelReference.graft(base.get(t), x.get(t), v.get(t), density),
                    Dtype.BF16), Tensors.bytes(merged.get(t)), "ffg differs on " + t);
        }
    }

    @Test
    void ffgNeedsASecondMomentCheckpoint() {
        MergeFixture f = fixtures.get(Dtype.F32);
        String config = f.config("ffg-missing.yml", "merge_method: ffg\nbase_model: " + f.base + "\nmodels:\n"
                + "  - model: " + f.models.get(0) + "\n");
        assertThatThrownBy(() -> new MergeJob(TestSpark.context()).run(MergeRequest.of(config, f.out("fgm"))))
                .isInstanceOf(AmalgamException.class)
                .hasMessageContaining("models[0] (" + f.models.get(0) + ") has no 'second_moment' checkpoint");
    }

    @Test
    void ffgGraftsExactlyOneFineTune() {
        MergeFixture f = fixtures.get(Dtype.F32);
        String config = f.config("ffg-two.yml", "merge_method: ffg\nbase_model: " + f.base + "\nmodels:\n"
                + "  - model: " + f.models.get(0) + "\n    second_moment: " + moment(f.models.get(0)) + "\n"
                + "  - model: " + f.models.get(1) + "\n    second_moment: " + moment(f.models.get(1)) + "\n");
        assertThatThrownBy(() -> new MergeJob(TestSpark.context()).run(MergeRequest.of(config, f.out("fg2"))))
                .isInstanceOf(AmalgamException.class)
                .hasMessageContaining("merge_method ffg takes base_model plus exactly 1 model");
    }
}
