package dev.amalgam.job;

import dev.amalgam.AmalgamException;
import dev.amalgam.commit.DestinationLock;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.testing.MergeFixture;
import dev.amalgam.testing.TestSpark;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Scheduled merges: skip when nothing changed, a new directory and a moved pointer when something did. */
class NightlyRunTest {
    @TempDir
    Path temp;
    MergeFixture f;
    String config;
    String root;

    @BeforeEach
    void generate() {
        f = MergeFixture.create(temp, Dtype.BF16, 2, Long.MAX_VALUE);
        config = writeConfig(1.0);
        root = f.out("nightly");
    }

    private String writeConfig(double weight) {
        return f.config("nightly.yml", "merge_method: ties\nbase_model: " + f.base + "\nmodels:\n"
                + "  - model: " + f.models.get(0) + "\n    parameters: {weight: " + weight + ", density: 0.5}\n"
                + "  - model: " + f.models.get(1) + "\n    parameters: {weight: 0.5, density: 0.5}\n");
    }

    private NightlyRun.Outcome nightly(int keep) {
        return new NightlyRun(TestSpark.context()).run(MergeRequest.of(config, "ignored"), root, keep);
    }

    private Path latest() throws Exception {
        Path link = Path.of(root, "latest");
        assertTrue(Files.isSymbolicLink(link));
        return Path.of(root).resolve(Files.readSymbolicLink(link));
    }

    @Test
    void theFirstRunMergesIntoAFingerprintedDirectoryAndPointsLatestAtIt() throws Exception {
        NightlyRun.Outcome first = nightly(3);
        assertTrue(first.merged());
        Path merged = local(first.destination());
        assertThat(merged.getFileName().toString()).matches("\\d{8}T\\d{6}Z-" + first.fingerprint().substring(0, 12));
        assertEquals(merged, latest());
        assertTrue(Files.exists(latest().resolve("model.safetensors")));
        assertEquals(first.fingerprint(), first.result().report().get("fingerprint").asText());
    }

    @Test
    void aRunWithNothingChangedDoesNothing() throws Exception {
        NightlyRun.Outcome first = nightly(3);
        NightlyRun.Outcome second = nightly(3);
        assertFalse(second.merged());
        assertEquals(first.destination(), second.destination());
        assertEquals(1, merges());
    }

    @Test
    void aChangedInputOrConfigGivesANewMergeAndMovesLatest() throws Exception {
        NightlyRun.Outcome first = nightly(3);
        Thread.sleep(1100); // directory names carry the time to the second
        Path input = Path.of(f.models.get(0), "model.safetensors");
        Files.setLastModifiedTime(input, FileTime.fromMillis(Files.getLastModifiedTime(input).toMillis() + 5_000));
        NightlyRun.Outcome second = nightly(3);
        assertTrue(second.merged());
        assertThat(second.fingerprint()).isNotEqualTo(first.fingerprint());
        assertEquals(local(second.destination()), latest());

        Thread.sleep(1100);
        config = writeConfig(0.8);
        NightlyRun.Outcome third = nightly(3);
        assertTrue(third.merged());
        assertEquals(local(third.destination()), latest());
        assertEquals(3, merges());
    }

    @Test
    void onlyTheNewestMergesAreKept() throws Exception {
        NightlyRun.Outcome first = nightly(1);
        Thread.sleep(1100);
        config = writeConfig(0.8);
        NightlyRun.Outcome second = nightly(1);
        assertEquals(1, merges());
        assertFalse(Files.exists(local(first.destination())));
        assertThat(second.removed()).containsExactly(local(first.destination()).getFileName().toString());
    }

    @Test
    void aSecondNightlyOnTheSameRootIsRefusedWhileTheFirstRuns() {
        try (DestinationLock held = DestinationLock.acquire(new Configuration(), root + "/.nightly", "nightly other")) {
            AmalgamException e = assertThrows(AmalgamException.class, () -> nightly(3));
            assertEquals(AmalgamException.Kind.BUSY, e.kind());
            assertThat(e.getMessage()).contains("nightly other");
        }
    }

    private static Path local(String qualified) {
        return Path.of(java.net.URI.create(qualified));
    }

    private long merges() throws Exception {
        try (Stream<Path> dirs = Files.list(Path.of(root))) {
            return dirs.filter(p -> p.getFileName().toString().matches("\\d{8}T\\d{6}Z-[0-9a-f]{12}")).count();
        }
    }
}
