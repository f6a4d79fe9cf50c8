package dev.amalgam.job;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.testing.MergeFixture;
import dev.amalgam.testing.Tensors;
import dev.amalgam.testing.TestSpark;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** amalgam-report.json accounts for the bytes read by each stage and describes every tensor. */
class RunReportTest {
    @TempDir
    static Path temp;
    static MergeFixture f;

    @BeforeAll
    static void generate() {
        f = MergeFixture.create(temp, Dtype.BF16, 2, Long.MAX_VALUE);
    }

    private JsonNode merge(String method, String name) throws Exception {
        return merge(method, name, false);
    }

    private JsonNode merge(String method, String name, boolean wholeTensorStatistics) throws Exception {
        String config = f.config(name + ".yml", "merge_method: " + method + "\nbase_model: " + f.base + "\nmodels:\n"
                + "  - model: " + f.models.get(0) + "\n    parameters: {weight: 1.0" + (method.equals("ties") ? ", density: 0.4" : "") + "}\n"
                + "  - model: " + f.models.get(1) + "\n    parameters: {weight: 0.5" + (method.equals("ties") ? ", density: 0.6" : "") + "}\n");
        new MergeJob(TestSpark.context()).run(MergeRequest.of(config, f.out(name)).withChunkElements(100)
                .withWholeTensorStatistics(wholeTensorStatistics).withPartitions(3));
        return new ObjectMapper().readTree(Path.of(f.out(name), "amalgam-report.json").toFile());
    }

    @Test
    void statisticsRoundsAreCountedApartFromTheMergeStage() throws Exception {
        JsonNode ties = merge("ties", "ties");
        assertEquals(ties.path("input_bytes").asLong(), ties.path("bytes_read_merge").asLong());
        assertThat(ties.path("bytes_read_statistics").asLong()).isPositive();
        assertEquals(ties.path("bytes_read_statistics").asLong() + ties.path("bytes_read_merge").asLong(),
                ties.path("bytes_read").asLong());

        JsonNode plain = merge("task_arithmetic", "plain");
        assertEquals(0, plain.path("bytes_read_statistics").asLong());
        assertEquals(plain.path("output_bytes").asLong(), plain.path("bytes_written").asLong());
    }

    @Test
    void tensorsKeptWholeForTheirStatisticsAreReadOnce() throws Exception {
        JsonNode ties = merge("ties", "ties-whole", true);
        assertEquals(0, ties.path("bytes_read_statistics").asLong());
        assertEquals(ties.path("input_bytes").asLong(), ties.path("bytes_read").asLong());
        assertEquals(ties.path("tensors").size(), ties.path("chunks").asInt(), "one chunk per tensor");
    }

    @Test
    void everyTensorCarriesKeptDensityNormsAndConflicts() throws Exception {
        JsonNode report = merge("ties", "tensors");
        assertThat(report.path("timings_seconds").has("statistics")).isTrue();
        assertThat(report.path("timings_seconds").has("merge")).isTrue();
        for (JsonNode t : report.path("tensors")) {
            assertEquals(2, t.path("models").size(), t.path("name").asText());
            double kept = t.path("models").get(0).path("kept_density").asDouble();
            long n = 1;
            for (JsonNode d : t.path("shape")) {
                n *= d.asLong();
            }
            assertEquals(Math.floor(0.4 * n) / n, kept, 1e-12, "exact top-k in " + t.path("name").asText());
            assertThat(t.path("sign_conflict_fraction").asDouble()).isBetween(0.0, 1.0);
            assertThat(t.path("models").get(1).path("delta_l2_norm").asDouble()).isPositive();
        }
    }

    @Test
    void cosinesBetweenTheModelsDeltasAreThoseOfTheWholeUnsparsifiedDeltas() throws Exception {
        JsonNode report = merge("ties", "cosines");
        Map<String, float[]> base = Tensors.all(f.base);
        Map<String, float[]> first = Tensors.all(f.models.get(0));
        Map<String, float[]> second = Tensors.all(f.models.get(1));
        for (JsonNode t : report.path("tensors")) {
            String name = t.path("name").asText();
            double dot = 0;
            double a = 0;
            double b = 0;
            for (int j = 0; j < base.get(name).length; j++) {
                double d0 = first.get(name)[j] - base.get(name)[j];
                double d1 = second.get(name)[j] - base.get(name)[j];
                dot += d0 * d1;
                a += d0 * d0;
                b += d1 * d1;
            }
            double expected = dot / Math.sqrt(a * b);
            JsonNode models = t.path("models");
            assertEquals(expected, models.get(0).path("delta_cosine").get(1).asDouble(), 1e-5, name);
            assertEquals(expected, models.get(1).path("delta_cosine").get(0).asDouble(), 1e-5, name);
            assertEquals(1.0, models.get(0).path("delta_cosine").get(0).asDouble(), name);
        }
    }
}
