package dev.amalgam.merge;

import dev.amalgam.staging.WriteMode;
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
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Output bytes do not depend on how the work was cut: chunk sizes from 7 elements (cutting
 * rows and tensors in many places) to larger than any tensor, one or several partitions, and
 * positioned writes or part files. Compared by the SHA-256 of every shard.
 */
class PartitionInvarianceTest {
    @TempDir
    static Path temp;
    static MergeFixture f;

    @BeforeAll
    static void generate() {
        f = MergeFixture.create(temp, Dtype.BF16, 3, 5_000);
    }

    private Map<String, String> merge(String config, String name, int chunk, int partitions, WriteMode mode) {
        return merge(config, name, chunk, partitions, mode, false);
    }

    private Map<String, String> merge(String config, String name, int chunk, int partitions, WriteMode mode,
                                      boolean wholeTensorStatistics) {
        String out = f.out(name);
        new MergeJob(TestSpark.context()).run(MergeRequest.of(config, out).withChunkElements(chunk)
                .withWholeTensorStatistics(wholeTensorStatistics)
                .withPartitions(partitions).withWriteMode(mode).withShardBytes(4_000));
        return Tensors.shardDigests(out);
    }

    @ParameterizedTest
    @ValueSource(strings = {"ties", "dare_ties", "breadcrumbs_ties", "della", "linear"})
    void outputBytesAreTheSameForEveryChunkingPartitioningAndWriteMode(String method) {
        String config = f.config(method + ".yml", "merge_method: " + method + "\n"
                + (method.equals("linear") ? "" : "base_model: " + f.base + "\n")
                + "models:\n"
                + "  - model: " + f.models.get(0) + "\n    parameters: {weight: 0.7" + density(method, "0.4") + "}\n"
                + "  - model: " + f.models.get(1) + "\n    parameters: {weight: 0.5" + density(method, "0.6") + "}\n"
                + "  - model: " + f.models.get(2) + "\n    parameters: {weight: 0.3" + density(method, "0.3") + "}\n"
                + (method.equals("ties") ? "parameters: {rescale: true}\n" : ""));
        Map<String, String> reference = merge(config, method + "-ref", 1 << 20, 1, WriteMode.POSITIONED);
        assertThat(reference).hasSizeGreaterThan(1);
        assertEquals(reference, merge(config, method + "-7", 7, 4, WriteMode.POSITIONED), "7-element chunks");
        assertEquals(reference, merge(config, method + "-97", 97, 1, WriteMode.POSITIONED), "97-element chunks, one partition");
        assertEquals(reference, merge(config, method + "-parts", 97, 3, WriteMode.PARTS), "part files");
        assertEquals(reference, merge(config, method + "-whole", 7, 4, WriteMode.POSITIONED, true),
                "statistics tensors kept whole, the rest in 7-element chunks");
    }

    private static String density(String method, String value) {
        return method.equals("linear") ? "" : ", density: " + value;
    }
}
