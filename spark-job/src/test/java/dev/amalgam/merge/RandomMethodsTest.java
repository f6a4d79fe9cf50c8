package dev.amalgam.merge;

import com.fasterxml.jackson.databind.JsonNode;
import dev.amalgam.job.MergeJob;
import dev.amalgam.job.MergeRequest;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.testing.MergeFixture;
import dev.amalgam.testing.TestSpark;
import dev.amalgam.testing.Tensors;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/** Random masks: the same seed gives the same bytes, another seed other bytes, the kept fraction near density. */
class RandomMethodsTest {
    @TempDir
    static Path temp;
    static MergeFixture f;

    @BeforeAll
    static void generate() {
        f = MergeFixture.create(temp, Dtype.F32, 2, Long.MAX_VALUE);
    }

    private MergeJob.Result merge(String method, String name, long seed, int chunk) {
        String config = f.config(method + ".yml", "merge_method: " + method + "\nbase_model: " + f.base + "\nmodels:\n"
                + "  - model: " + f.models.get(0) + "\n    parameters: {weight: 1.0, density: 0.3}\n"
                + "  - model: " + f.models.get(1) + "\n    parameters: {weight: 1.0, density: 0.6}\n");
        return new MergeJob(TestSpark.context()).run(MergeRequest.of(config, f.out(name)).withChunkElements(chunk).withWholeTensorStatistics(false)
                .withPartitions(3).withRandomSeed(seed));
    }

    @ParameterizedTest
    @ValueSource(strings = {"dare_ties", "dare_linear", "della", "della_linear"})
    void sameSeedSameBytesOtherSeedOtherBytes(String method) {
        merge(method, method + "-a", 1, 48);
        merge(method, method + "-b", 1, 5000);
        merge(method, method + "-c", 2, 48);
        assertEquals(Tensors.shardDigests(f.out(method + "-a")), Tensors.shardDigests(f.out(method + "-b")));
        assertNotEquals(Tensors.shardDigests(f.out(method + "-a")), Tensors.shardDigests(f.out(method + "-c")));
    }

    @ParameterizedTest
    @ValueSource(strings = {"dare_linear", "della_linear"})
    void keptFractionIsWithinSixSigmaOfDensity(String method) {
        JsonNode report = merge(method, method + "-stats", 3, 1000).report();
        double[] densities = {0.3, 0.6};
        long n = 0;
        double[] kept = new double[2];
        for (JsonNode t : report.path("tensors")) {
            long elements = 1;
            for (JsonNode d : t.path("shape")) {
                elements *= d.asLong();
            }
            n += elements;
            for (int i = 0; i < 2; i++) {
                kept[i] += t.path("models").get(i).path("kept_density").asDouble() * elements;
            }
        }
        for (int i = 0; i < 2; i++) {
            double p = densities[i];
            // DELLA's probabilities average to density over a row, so the same binomial bound holds (loosely).
            assertThat(kept[i] / n).isCloseTo(p, org.assertj.core.data.Offset.offset(6 * Math.sqrt(p * (1 - p) / n)));
        }
    }
}
