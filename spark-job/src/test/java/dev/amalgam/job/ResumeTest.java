package dev.amalgam.job;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.amalgam.AmalgamException;
import dev.amalgam.staging.WriteMode;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.testing.FaultyFileSystem;
import dev.amalgam.testing.MergeFixture;
import dev.amalgam.testing.TestSpark;
import dev.amalgam.testing.Tensors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.Map;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A run that fails part-way keeps its finished chunks; the same command run again verifies
 * and reuses them and gives the bytes of an undisturbed run. Anything that could change the
 * result (config, inputs) makes the rerun start over instead.
 */
class ResumeTest {
    @TempDir
    Path temp;
    MergeFixture f;

    @BeforeEach
    void generate() {
        f = MergeFixture.create(temp, Dtype.BF16, 2, 5_000);
    }

    @AfterEach
    void heal() {
        FaultyFileSystem.heal();
    }

    private String config(String name, double weight) {
        return f.config(name, "merge_method: ties\nbase_model: faulty://" + f.base + "\nmodels:\n"
                + "  - model: faulty://" + f.models.get(0) + "\n    parameters: {weight: " + weight + ", density: 0.5}\n"
                + "  - model: faulty://" + f.models.get(1) + "\n    parameters: {weight: 0.5, density: 0.7}\n");
    }

    private MergeRequest request(String config, String out, WriteMode mode) {
        return MergeRequest.of(config, out).withChunkElements(50).withWholeTensorStatistics(false).withPartitions(2).withShardBytes(4_000)
                .withWriteMode(mode);
    }

    private ObjectNode merge(String config, String out, WriteMode mode) {
        return new MergeJob(TestSpark.context()).run(request(config, out, mode)).report();
    }

    /** An undisturbed merge of {@code config}, as shard digests. */
    private Map<String, String> undisturbed(String config, WriteMode mode) {
        String out = f.out("undisturbed-" + System.nanoTime());
        merge(config, out, mode);
        return Tensors.shardDigests(out);
    }

    /**
     * Fails the merge stage half-way: a whole run reads every chunk of three checkpoints once in
     * the merge stage, after at least twice that in the statistics stage.
     */
    private void failPartWay(String config, String out, WriteMode mode) {
        FaultyFileSystem.failAfter(Integer.MAX_VALUE);
        ObjectNode counted = merge(config, f.out("counted-" + System.nanoTime()), mode);
        int total = FaultyFileSystem.reads();
        FaultyFileSystem.failAfter(total - 3 * counted.get("chunks").asInt() / 2);
        AmalgamException e = assertThrows(AmalgamException.class, () -> merge(config, out, mode));
        assertEquals(AmalgamException.Kind.EXECUTION, e.kind());
        FaultyFileSystem.heal();
        assertFalse(Files.exists(Path.of(out)), "a failed run publishes nothing");
    }

    @Test
    void aFailedRunIsResumedFromItsVerifiedChunksAndGivesTheSameBytes() {
        String config = config("ties.yml", 1.0);
        Map<String, String> undisturbed = undisturbed(config, WriteMode.POSITIONED);
        String out = f.out("merged");
        failPartWay(config, out, WriteMode.POSITIONED);

        ObjectNode report = merge(config, out, WriteMode.POSITIONED);
        assertTrue(report.get("resumed").asBoolean());
        assertTrue(report.get("statistics_reused").asBoolean());
        assertThat(report.get("chunks_reused").asLong()).isPositive();
        assertThat(report.get("chunks_merged").asLong()).isPositive();
        assertEquals(report.get("chunks").asLong(),
                report.get("chunks_reused").asLong() + report.get("chunks_merged").asLong());
        assertEquals(undisturbed, Tensors.shardDigests(out));
        assertNoBookkeepingIn(out);
    }

    @Test
    void partFilesAreResumedToo() {
        String config = config("ties.yml", 1.0);
        Map<String, String> undisturbed = undisturbed(config, WriteMode.PARTS);
        String out = f.out("merged");
        failPartWay(config, out, WriteMode.PARTS);
        ObjectNode report = merge(config, out, WriteMode.PARTS);
        assertThat(report.get("chunks_reused").asLong()).isPositive();
        assertEquals("executor-copy", report.get("shard_assembly").asText());
        assertEquals(undisturbed, Tensors.shardDigests(out));
    }

    @Test
    void aChunkWhoseBytesNoLongerMatchItsChecksumIsMergedAgain() throws Exception {
        String config = config("ties.yml", 1.0);
        Map<String, String> undisturbed = undisturbed(config, WriteMode.PARTS);
        String out = f.out("merged");
        failPartWay(config, out, WriteMode.PARTS);
        Path parts = temp.resolve(".amalgam-staging-merged/_parts");
        long recorded;
        try (Stream<Path> m = Files.list(temp.resolve(".amalgam-staging-merged/_manifest"))) {
            recorded = m.filter(p -> p.getFileName().toString().startsWith("chunk-")).count();
        }
        try (RandomAccessFile part = new RandomAccessFile(parts.resolve("chunk-0000000000.part").toFile(), "rw")) {
            part.seek(0);
            int b = part.read();
            part.seek(0);
            part.write(b ^ 0x40);
        }
        ObjectNode report = merge(config, out, WriteMode.PARTS);
        assertEquals(recorded - 1, report.get("chunks_reused").asLong(), "every recorded chunk but the damaged one");
        assertEquals(undisturbed, Tensors.shardDigests(out));
    }

    @Test
    void aChangedConfigDiscardsTheUnfinishedMerge() {
        String out = f.out("merged");
        failPartWay(config("ties.yml", 1.0), out, WriteMode.POSITIONED);
        String changed = config("ties.yml", 0.8);
        ObjectNode report = merge(changed, out, WriteMode.POSITIONED);
        assertFalse(report.get("resumed").asBoolean());
        assertEquals(0, report.get("chunks_reused").asLong());
        assertEquals(undisturbed(changed, WriteMode.POSITIONED), Tensors.shardDigests(out));
    }

    @Test
    void changedInputsDiscardTheUnfinishedMerge() throws Exception {
        String config = config("ties.yml", 1.0);
        String out = f.out("merged");
        failPartWay(config, out, WriteMode.POSITIONED);
        Path input = Path.of(f.models.get(1));
        try (Stream<Path> files = Files.list(input)) {
            for (Path p : files.toList()) {
                Files.setLastModifiedTime(p, FileTime.fromMillis(Files.getLastModifiedTime(p).toMillis() + 60_000));
            }
        }
        ObjectNode report = merge(config, out, WriteMode.POSITIONED);
        assertFalse(report.get("resumed").asBoolean());
        assertEquals(0, report.get("chunks_reused").asLong());
    }

    private static void assertNoBookkeepingIn(String out) {
        try (Stream<Path> files = Files.list(Path.of(out))) {
            assertThat(files.map(p -> p.getFileName().toString()))
                    .noneMatch(n -> n.startsWith("_") || n.startsWith("."));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
