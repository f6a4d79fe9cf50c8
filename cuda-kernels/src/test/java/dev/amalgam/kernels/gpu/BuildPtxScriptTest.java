package dev.amalgam.kernels.gpu;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What scripts/build-ptx.sh does on a build host without nvcc: warn and go on, or fail when asked to. */
class BuildPtxScriptTest {
    @TempDir
    Path temp;

    /** The script's own search: $NVCC, PATH, $CUDA_HOME/bin, /usr/local/cuda/bin. */
    static boolean nvccOnThisMachine() {
        String cudaHome = System.getenv().getOrDefault("CUDA_HOME", "/usr/local/cuda");
        if (Files.isExecutable(Path.of(cudaHome, "bin", "nvcc")) || System.getenv("NVCC") != null) {
            return true;
        }
        for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, "nvcc"))) {
                return true;
            }
        }
        return false;
    }

    private record Result(int exit, String stderr) {
    }

    private Result buildWithoutNvcc(String required) throws Exception {
        ProcessBuilder pb = new ProcessBuilder("bash", Path.of("scripts/build-ptx.sh").toAbsolutePath().toString(),
                temp.resolve("out").toString(), required);
        pb.environment().put("PATH", "/usr/bin:/bin");
        pb.environment().put("CUDA_HOME", temp.resolve("no-cuda").toString());
        pb.environment().remove("NVCC");
        pb.environment().remove("AMALGAM_REQUIRE_PTX");
        Process p = pb.start();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        return new Result(p.exitValue(), new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8));
    }

    @Test
    void withoutNvccTheBuildWarnsAndPackagesNoKernels() throws Exception {
        Result r = buildWithoutNvcc("false");
        assertEquals(0, r.exit(), r.stderr());
        assertTrue(r.stderr().contains("WARNING nvcc not found: this build has no GPU kernels"), r.stderr());
        assertFalse(Files.exists(temp.resolve("out/amalgam_kernels.ptx")));
    }

    @Test
    void withoutNvccARequiredPtxFailsTheBuild() throws Exception {
        Result r = buildWithoutNvcc("true");
        assertEquals(1, r.exit());
        assertTrue(r.stderr().contains("nvcc not found (set NVCC or put it on PATH) and the PTX is required"), r.stderr());
    }
}
