package dev.amalgam.merge;

import dev.amalgam.job.MergeJob;
import dev.amalgam.job.MergeRequest;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.testing.FaultyFileSystem;
import dev.amalgam.testing.MergeFixture;
import dev.amalgam.testing.TestSpark;
import dev.amalgam.testing.Tensors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** A task that fails once and is retried by Spark leaves exactly the bytes of an undisturbed run. */
class TaskRetryTest {
    @TempDir
    Path temp;

    @AfterEach
    void heal() {
        FaultyFileSystem.heal();
    }

    @ParameterizedTest
    @ValueSource(ints = {5, 40, 120})
    void aRetriedTaskWritesTheSameBytes(int readsBeforeFault) {
        MergeFixture f = MergeFixture.create(temp, Dtype.BF16, 2, Long.MAX_VALUE);
        String yaml = "merge_method: dare_ties\nbase_model: %s\nmodels:\n"
                + "  - model: %s\n    parameters: {weight: 0.6, density: 0.5}\n"
                + "  - model: %s\n    parameters: {weight: 0.4, density: 0.7}\n";
        String plain = f.config("plain.yml", yaml.formatted(f.base, f.models.get(0), f.models.get(1)));
        String faulty = f.config("faulty.yml", yaml.formatted("faulty://" + f.base, "faulty://" + f.models.get(0),
                "faulty://" + f.models.get(1)));
        new MergeJob(TestSpark.context()).run(MergeRequest.of(plain, f.out("undisturbed")).withChunkElements(50).withWholeTensorStatistics(false)
                .withPartitions(4));
        FaultyFileSystem.failOnceAfter(readsBeforeFault);
        new MergeJob(TestSpark.context()).run(MergeRequest.of(faulty, f.out("retried")).withChunkElements(50).withWholeTensorStatistics(false)
                .withPartitions(4));
        assertEquals(1, FaultyFileSystem.injected(), "one read failed and its task was retried");
        assertEquals(Tensors.shardDigests(f.out("undisturbed")), Tensors.shardDigests(f.out("retried")));
    }
}
