package dev.amalgam.cli;

import dev.amalgam.kernels.Dtype;
import dev.amalgam.kernels.gpu.CudaDriver;
import dev.amalgam.testing.CliProcess;
import dev.amalgam.testing.MergeFixture;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

/**
 * {@code --gpu} from the command line on a machine without a usable GPU (CI's kind): auto runs
 * on the CPU and says why in one log line, on fails at once with a clear message, and neither
 * prints a stack trace. Skipped where a GPU is present (the GPU tests cover that side).
 */
class GpuSelectionCliTest {
    @TempDir
    static Path temp;
    static String config;

    @BeforeAll
    static void generate() {
        MergeFixture f = MergeFixture.create(temp.resolve("models"), Dtype.BF16, 2, 4_000);
        config = f.config("ties.yml", "merge_method: ties\nbase_model: " + f.base + "\nmodels:\n"
                + "  - model: " + f.models.get(0) + "\n    parameters: {weight: 1.0, density: 0.5}\n"
                + "  - model: " + f.models.get(1) + "\n    parameters: {weight: 0.5, density: 0.5}\n");
    }

    private static void assumeNoGpu() {
        CudaDriver.Availability cuda = CudaDriver.probe();
        assumeFalse(cuda.usable(), "this machine has a usable GPU");
    }

    @Test
    void autoRunsOnTheCpuAndSaysWhyInOneLogLine() throws Exception {
        assumeNoGpu();
        Path out = temp.resolve("auto");
        CliProcess.Run run = CliProcess.run(temp, "merge", config, out.toString(), "--chunk-elements", "100",
                "--no-progress");
        assertEquals(0, run.exitCode(), run.stderr());
        assertThat(run.stderr().lines().filter(l -> l.contains("Amalgam kernels:")))
                .singleElement().asString()
                .contains("cpu (Java kernels").contains("because --gpu auto found no usable GPU (Spark schedules no GPUs here,"
                        + " so device 0): ");
        assertFalse(run.stderr().contains("\tat "), run.stderr());
        assertThat(Files.readString(out.resolve("amalgam-report.json"))).contains("\"kernels\" : {\n    \"cpu\" : ");
    }

    @Test
    void onFailsAtOnceNamingTheReasonWithoutAStackTrace() throws Exception {
        assumeNoGpu();
        Path out = temp.resolve("on");
        CliProcess.Run run = CliProcess.run(temp, "merge", config, out.toString(), "--gpu", "on");
        assertEquals(5, run.exitCode(), run.stderr());
        assertThat(run.stderr()).contains("--gpu on, but this machine has no usable GPU: ")
                .contains("use --gpu auto to fall back to the CPU, or --gpu off");
        assertFalse(run.stderr().contains("\tat "), run.stderr());
        assertFalse(Files.exists(out));
    }

    @Test
    void anUnknownGpuModeIsAConfigError() throws Exception {
        CliProcess.Run run = CliProcess.run(temp, "merge", config, temp.resolve("bad").toString(), "--gpu", "maybe");
        assertEquals(2, run.exitCode(), run.stderr());
        assertThat(run.stderr()).contains("--gpu (spark.amalgam.gpu) is 'maybe'; use auto, on or off");
    }
}
