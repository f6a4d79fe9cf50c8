package dev.amalgam.merge;

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
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * WIDEN against a whole-tensor reference written from the authors' code, bit for bit on bf16,
 * f16 and f32: matrices by column, the input embedding by row, other tensors by element, with
 * the element path's tensors cut into chunks of 37 over three partitions or whole.
 */
class WidenMethodTest {
    @TempDir
    static Path temp;
    private static Map<Dtype, MergeFixture> fixtures;

    @BeforeAll
    static void generate() {
        fixtures = MergeFixture.perDtype(temp, 3, 6_000);
    }

    static Stream<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>();
        for (Dtype dtype : Dtype.floats()) {
            cases.add(Arguments.of(dtype, 1.0f, 1.0f, 37));
            cases.add(Arguments.of(dtype, 0.8f, 0.6f, 1 << 20));
        }
        cases.add(Arguments.of(Dtype.BF16, 1.2f, 2.0f, 37));
        return cases.stream();
    }

    private static Map<String, dev.amalgam.format.StoredTensor> merge(MergeFixture f, String name, float ratio,
                                                                      float calibration, int chunk) {
        StringBuilder yaml = new StringBuilder("merge_method: widen\nbase_model: " + f.base + "\nmodels:\n");
        for (int i = 0; i < 3; i++) {
            yaml.append("  - model: ").append(f.models.get(i)).append("\n");
        }
        yaml.append("parameters: {above_average_value_ratio: ").append(ratio).append(", score_calibration_value: ")
                .append(calibration).append("}\n");
        String out = f.out(name);
        new MergeJob(TestSpark.context()).run(MergeRequest.of(f.config(name + ".yml", yaml.toString()), out)
                .withChunkElements(chunk).withPartitions(3));
        return Tensors.open(out).byName();
    }

    @ParameterizedTest(name = "{0} ratio {1} calibration {2}, chunks of {3}")
    @MethodSource("cases")
    void widenWeighsEachVectorByItsRankedMagnitudeAndDirectionChange(Dtype dtype, float ratio, float calibration,
                                                                     int chunk) {
        MergeFixture f = fixtures.get(dtype);
        Map<String, dev.amalgam.format.StoredTensor> merged = merge(f, "widen-" + dtype + "-" + ratio + "-" + chunk,
                ratio, calibration, chunk);

        Map<String, float[]> base = Tensors.all(f.base);
        List<Map<String, float[]>> models = f.models.stream().map(Tensors::all).toList();
        assertEquals(base.keySet(), merged.keySet());
        for (String t : merged.keySet()) {
            float[][] x = models.stream().map(m -> m.get(t)).toArray(float[][]::new);
            float[] expected = WholeModelReference.widen(base.get(t), x, merged.get(t).shape(),
                    t.endsWith("embed_tokens.weight"), ratio, calibration);
            assertArrayEquals(Tensors.encode(expected, dtype), Tensors.bytes(merged.get(t)), "widen differs on " + t);
        }
    }

    @Test
    void theFixtureHasMatricesTheEmbeddingAndVectors() {
        Map<String, dev.amalgam.format.StoredTensor> tensors = Tensors.open(fixtures.get(Dtype.F32).base).byName();
        assertThat(tensors.keySet()).anyMatch(t -> t.endsWith("embed_tokens.weight"));
        assertThat(tensors.values()).anyMatch(t -> t.shape().length == 1)
                .anyMatch(t -> t.shape().length == 2 && !t.name().contains("embed"));
    }
}
