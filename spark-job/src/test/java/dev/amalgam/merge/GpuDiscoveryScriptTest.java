package dev.amalgam.merge;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * conf/gpu-discovery.sh tells Spark the CUDA ordinals an executor may open, in the JSON Spark
 * reads; a fake nvidia-smi stands in for the driver's.
 */
class GpuDiscoveryScriptTest {
    @TempDir
    Path temp;

    private record Result(int exit, String stdout, String stderr) {
    }

    private Result discover(Map<String, String> env, boolean withNvidiaSmi) throws Exception {
        Path bin = temp.resolve("bin");
        Files.createDirectories(bin);
        if (withNvidiaSmi) {
            Path smi = bin.resolve("nvidia-smi");
            Files.writeString(smi, "#!/bin/sh\nprintf '0\\n1\\n2\\n'\n");
            Files.setPosixFilePermissions(smi, PosixFilePermissions.fromString("rwxr-xr-x"));
        }
        Path script = Path.of("").toAbsolutePath().getParent().resolve("conf/gpu-discovery.sh");
        ProcessBuilder pb = new ProcessBuilder("bash", script.toString());
        pb.environment().put("PATH", bin + ":/usr/bin:/bin");
        pb.environment().remove("CUDA_VISIBLE_DEVICES");
        pb.environment().putAll(env);
        Process p = pb.start();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        return new Result(p.exitValue(), new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim(),
                new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8).trim());
    }

    @Test
    void listsEveryGpuNvidiaSmiSeesAsAnOrdinal() throws Exception {
        Result r = discover(Map.of(), true);
        assertEquals(0, r.exit(), r.stderr());
        assertEquals("{\"name\": \"gpu\", \"addresses\": [\"0\", \"1\", \"2\"]}", r.stdout());
    }

    @Test
    void underCudaVisibleDevicesTheOrdinalsAreRenumberedFromZero() throws Exception {
        Result r = discover(Map.of("CUDA_VISIBLE_DEVICES", "3,5"), false);
        assertEquals(0, r.exit(), r.stderr());
        assertEquals("{\"name\": \"gpu\", \"addresses\": [\"0\", \"1\"]}", r.stdout());
    }

    @Test
    void withoutTheDriverToolsItFailsSayingWhy() throws Exception {
        Result r = discover(Map.of(), false);
        assertEquals(1, r.exit());
        assertThat(r.stderr()).contains("nvidia-smi not found");
    }
}
