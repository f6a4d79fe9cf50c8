package dev.amalgam.commit;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.amalgam.AmalgamException;
import dev.amalgam.job.MergeJob;
import dev.amalgam.job.MergeRequest;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.testing.MergeFixture;
import dev.amalgam.testing.TestSpark;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** One run per destination; a crashed run's lock does not block the next one forever. */
class DestinationLockTest {
    @TempDir
    Path temp;

    private Path lockOf(String destination) {
        return temp.resolve(".amalgam-lock-" + Path.of(destination).getFileName());
    }

    private void writeLock(Path file, String host, long pid) throws Exception {
        Files.write(file, new ObjectMapper().writeValueAsBytes(new DestinationLock.Owner("other-run", host, pid,
                "someone", Instant.now().toString(), "merge other.yml")));
    }

    @Test
    void aSecondMergeToTheSameDestinationIsRefusedNamingTheHolder() {
        MergeFixture f = MergeFixture.create(temp, Dtype.F32, 2, Long.MAX_VALUE);
        String config = f.config("ta.yml", "merge_method: task_arithmetic\nbase_model: " + f.base + "\nmodels:\n"
                + "  - model: " + f.models.get(0) + "\n    parameters: {weight: 1.0}\n");
        String out = f.out("merged");
        try (DestinationLock held = DestinationLock.acquire(new Configuration(), out, "merge first.yml")) {
            AmalgamException e = assertThrows(AmalgamException.class,
                    () -> new MergeJob(TestSpark.context()).run(MergeRequest.of(config, out)));
            assertEquals(AmalgamException.Kind.BUSY, e.kind());
            assertThat(e.getMessage()).contains("another run is writing here").contains(held.owner().runId())
                    .contains("pid " + ProcessHandle.current().pid()).contains("merge first.yml")
                    .contains(lockOf(out).toString());
            assertFalse(Files.exists(Path.of(out)));
        }
        assertFalse(Files.exists(lockOf(out)), "closing the lock removes it");
        new MergeJob(TestSpark.context()).run(MergeRequest.of(config, out));
        assertFalse(Files.exists(lockOf(out)), "a finished merge leaves no lock");
    }

    @Test
    void theLockOfAProcessThatNoLongerExistsIsTakenOver() throws Exception {
        String out = temp.resolve("merged").toString();
        Process gone = new ProcessBuilder("true").start();
        gone.waitFor();
        writeLock(lockOf(out), java.net.InetAddress.getLocalHost().getHostName(), gone.pid());
        try (DestinationLock lock = DestinationLock.acquire(new Configuration(), out, "merge")) {
            assertEquals(lock.owner().runId(),
                    new ObjectMapper().readValue(lockOf(out).toFile(), DestinationLock.Owner.class).runId());
        }
    }

    @Test
    void aLockOnAnotherHostCountsAsAbandonedOnlyWhenItsHeartbeatIsOld() throws Exception {
        String out = temp.resolve("merged").toString();
        Path file = lockOf(out);
        writeLock(file, "some-other-host", 1);
        AmalgamException busy = assertThrows(AmalgamException.class,
                () -> DestinationLock.acquire(new Configuration(), out, "merge", Duration.ofMinutes(5)));
        assertEquals(AmalgamException.Kind.BUSY, busy.kind());
        assertThat(busy.getMessage()).contains("some-other-host");

        Files.setLastModifiedTime(file, FileTime.from(Instant.now().minus(Duration.ofMinutes(6))));
        try (DestinationLock lock = DestinationLock.acquire(new Configuration(), out, "merge", Duration.ofMinutes(5))) {
            assertTrue(Files.exists(file));
        }
    }

    @Test
    void closingALockTakenOverByAnotherRunLeavesTheirs() throws Exception {
        String out = temp.resolve("merged").toString();
        DestinationLock mine = DestinationLock.acquire(new Configuration(), out, "merge");
        writeLock(lockOf(out), "some-other-host", 1);
        mine.close();
        assertTrue(Files.exists(lockOf(out)));
    }
}
