package dev.amalgam.job;

import dev.amalgam.AmalgamException;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.staging.Renames;
import dev.amalgam.testing.FaultyFileSystem;
import dev.amalgam.testing.MergeFixture;
import dev.amalgam.testing.TestSpark;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Free space is checked against the plan before any work, and a publish that fails says why and
 * how many chunks it kept, and can be resumed.
 */
class DiskSpaceAndPublishTest {
    @TempDir
    Path temp;
    MergeFixture f;
    String config;

    @BeforeEach
    void generate() {
        f = MergeFixture.create(temp, Dtype.BF16, 2, Long.MAX_VALUE);
        config = f.config("ta.yml", "merge_method: task_arithmetic\nbase_model: " + f.base + "\nmodels:\n"
                + "  - model: " + f.models.get(0) + "\n    parameters: {weight: 0.5}\n"
                + "  - model: " + f.models.get(1) + "\n    parameters: {weight: 0.5}\n");
    }

    @AfterEach
    void heal() {
        FaultyFileSystem.heal();
    }

    private static boolean anyStaging(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.anyMatch(p -> p.getFileName().toString().startsWith(".amalgam-staging"));
        }
    }

    @Test
    void aDestinationWithoutRoomIsRefusedBeforeAnyWorkWithTheFigures() throws Exception {
        FaultyFileSystem.reportRemaining(10_000);
        String out = "faulty://" + temp.resolve("merged");
        AmalgamException e = assertThrows(AmalgamException.class, () -> new MergeJob(TestSpark.context())
                .run(MergeRequest.of(config, out).withChunkElements(64)));
        assertEquals(AmalgamException.Kind.OUTPUT, e.kind());
        assertThat(e.getMessage()).contains("the merge needs").contains("its file system reports 10000 bytes")
                .contains("as much again while part files are copied into shards")
                .contains("choose another destination");
        assertFalse(anyStaging(temp), "nothing is staged before the check");
    }

    @Test
    void aFailedPublishNamesTheReasonAndTheTrueNumberOfKeptChunksAndTheRerunPublishes() throws Exception {
        FaultyFileSystem.failRenamesTo("merged");
        String out = "faulty://" + temp.resolve("merged");
        AmalgamException e = assertThrows(AmalgamException.class, () -> new MergeJob(TestSpark.context())
                .run(MergeRequest.of(config, out).withChunkElements(64)));
        assertEquals(AmalgamException.Kind.EXECUTION, e.kind());
        assertThat(e.getMessage()).contains("DiskSpace quota").contains("is exceeded")
                .containsPattern("\\n(\\d+) of \\1 chunks finished and are kept in");
        assertFalse(Files.exists(temp.resolve("merged")));
        FaultyFileSystem.heal();
        MergeJob.Result result = new MergeJob(TestSpark.context()).run(MergeRequest.of(config, out).withChunkElements(64));
        assertEquals(0, result.report().get("chunks_merged").asLong());
        assertThat(result.report().get("resumed").asBoolean()).isTrue();
        assertFalse(anyStaging(temp));
    }

    @Test
    void aLocalRenameThatFailsSaysWhatTheOperatingSystemSaid() throws Exception {
        FileSystem local = FileSystem.getLocal(new Configuration()).getRawFileSystem();
        Path from = Files.createDirectories(temp.resolve("from"));
        Path onto = Files.createDirectories(temp.resolve("onto"));
        Files.writeString(onto.resolve("keep"), "x");
        IOException notEmpty = assertThrows(IOException.class, () -> Renames.move(local,
                new org.apache.hadoop.fs.Path(from.toUri()), new org.apache.hadoop.fs.Path(onto.toUri())));
        assertThat(notEmpty.getMessage()).containsAnyOf("Directory not empty", "the target exists and is not empty");
        IOException missing = assertThrows(IOException.class, () -> Renames.move(local,
                new org.apache.hadoop.fs.Path(temp.resolve("absent").toUri()),
                new org.apache.hadoop.fs.Path(temp.resolve("elsewhere").toUri())));
        assertThat(missing.getMessage()).contains("no such file or directory");
    }
}
