package dev.amalgam.job;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.amalgam.sample.GeneratedFileSystem;
import dev.amalgam.testing.StandaloneCluster;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A benchmark, not part of CI (its name matches neither *Test nor *IT): a TIES merge of
 * generated checkpoints with a real model's layout (read on the fly from amalgam-gen://)
 * submitted to the standalone cluster of the integration tests, with executors whose Arrow
 * limit is far smaller than one tensor. Prints time, GB/s and reads against input size.
 *
 * <pre>
 * mvn -B verify -pl cuda-kernels,spark-job -Dtest=None -Dsurefire.failIfNoSpecifiedTests=false \
 *   -Dit.test=LayoutClusterBench -Dbench.layout=qwen2-72b -Dbench.hours=3
 * </pre>
 */
class LayoutClusterBench {
    @TempDir
    static Path temp;

    @Test
    void tiesOnAGeneratedLayoutThroughTheStandaloneCluster() throws Exception {
        String layout = System.getProperty("bench.layout", "qwen2-72b-2layers");
        String limit = System.getProperty("bench.executorMemoryLimit", "256m");
        double hours = Double.parseDouble(System.getProperty("bench.hours", "1"));
        String root = GeneratedFileSystem.SCHEME + ":///" + layout;
        Path config = temp.resolve("ties.yml");
        Files.writeString(config, "merge_method: ties\nbase_model: " + root + "/base\nmodels:\n"
                + "  - model: " + root + "/tuned-1\n    parameters: {weight: 0.5, density: 0.5}\n"
                + "  - model: " + root + "/tuned-2\n    parameters: {weight: 0.5, density: 0.5}\n");
        String out = temp.resolve("merged").toString();
        try (StandaloneCluster cluster = StandaloneCluster.start(temp.resolve("cluster"), 2, "2g")) {
            Path repo = Path.of("").toAbsolutePath().getParent();
            List<String> command = List.of(repo.resolve("scripts/submit").toString(),
                    "--master", cluster.masterUrl(), "--deploy-mode", "client",
                    "--executor-memory", "1g", "--conf", "spark.executor.memoryOverhead=768m",
                    "--conf", "spark.executor.cores=1", "--total-executor-cores", "2",
                    "--conf", "spark.amalgam.executor.memoryLimit=" + limit,
                    "--", "merge", config.toString(), out, "--no-progress");
            Path log = temp.resolve("submit.log");
            ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
            pb.environment().putAll(cluster.environment());
            pb.environment().put("SPARK_SUBMIT", cluster.sparkSubmitScript().toString());
            long t = System.nanoTime();
            Process p = pb.start();
            assertTrue(p.waitFor((long) (hours * 3600), TimeUnit.SECONDS), "the merge took longer than " + hours + " h");
            double seconds = (System.nanoTime() - t) / 1e9;
            assertEquals(0, p.exitValue(), Files.readString(log));
            JsonNode report = new ObjectMapper().readTree(new File(out, "amalgam-report.json"));
            long input = report.path("input_bytes").asLong();
            System.out.printf("layout-cluster-bench: %s ties, executors of %s Arrow memory (1 core each, 2 executors): "
                            + "%.1f s spark-submit to done, %.2f GB input, %.3f GB/s, bytes_read/input_bytes %.3f, "
                            + "statistics %.1f s, merge %.1f s%n", layout, limit, seconds, input / 1e9,
                    input / 1e9 / seconds, report.path("bytes_read").asLong() / (double) input,
                    report.path("timings_seconds").path("statistics").asDouble(),
                    report.path("timings_seconds").path("merge").asDouble());
        }
    }
}
