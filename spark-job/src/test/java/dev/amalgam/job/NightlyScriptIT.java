package dev.amalgam.job;

import dev.amalgam.kernels.Dtype;
import dev.amalgam.testing.MergeFixture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code scripts/nightly} as cron runs it: a merge the first time, exit 0 and nothing done the second. */
class NightlyScriptIT {
    @TempDir
    Path temp;

    private record Run(int exit, String output) {
    }

    private Run nightly(String config, String root) throws Exception {
        Path repo = Path.of("").toAbsolutePath().getParent();
        Path log = temp.resolve("nightly-" + System.nanoTime() + ".log");
        ProcessBuilder pb = new ProcessBuilder(repo.resolve("scripts/nightly").toString(), config, root, "--keep", "2",
                "--master", "local[2]").redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("JAVA_OPTS", "-Xmx1g");
        Process p = pb.start();
        assertTrue(p.waitFor(180, TimeUnit.SECONDS), "scripts/nightly did not finish in 180 s");
        return new Run(p.exitValue(), Files.readString(log));
    }

    @Test
    void theSecondNightlyWithNothingChangedExitsZeroDoingNothing() throws Exception {
        MergeFixture f = MergeFixture.create(temp, Dtype.BF16, 2, Long.MAX_VALUE);
        String config = f.config("ta.yml", "merge_method: task_arithmetic\nbase_model: " + f.base + "\nmodels:\n"
                + "  - model: " + f.models.get(0) + "\n    parameters: {weight: 1.0}\n");
        String root = f.out("merges");

        Run first = nightly(config, root);
        assertEquals(0, first.exit(), first.output());
        assertThat(first.output()).contains("latest -> ").contains("amalgam nightly: ").contains("end: exit 0");
        Path latest = Path.of(root, "latest");
        assertTrue(Files.isSymbolicLink(latest));
        assertTrue(Files.exists(latest.resolve("model.safetensors")));

        Run second = nightly(config, root);
        assertEquals(0, second.exit(), second.output());
        assertThat(second.output()).contains("nothing changed since " + Files.readSymbolicLink(latest));
    }
}
