package dev.amalgam.job;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** scripts/submit refuses, before spark-submit runs, what would expose a cluster's secret. */
class SubmitScriptTest {
    @TempDir
    Path temp;

    /** Runs scripts/submit with a spark-submit that records that it was called. */
    private String[] submit(String... args) throws Exception {
        Path repo = Path.of("").toAbsolutePath().getParent();
        List<String> command = new ArrayList<>(List.of(repo.resolve("scripts/submit").toString()));
        command.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        pb.environment().put("SPARK_SUBMIT", "touch " + temp.resolve("spark-submit-ran"));
        Process p = pb.start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor(60, TimeUnit.SECONDS);
        return new String[]{String.valueOf(p.exitValue()), output};
    }

    @Test
    void aSecretOnTheCommandLineIsRefused() throws Exception {
        String[] run = submit("--master", "spark://head:7077", "--conf", "spark.authenticate.secret=0123456789abcdef",
                "--", "merge", "ties.yml", "/tmp/out");
        assertEquals("2", run[0], run[1]);
        assertThat(run[1]).contains("must not be on the command line").contains("AMALGAM_SPARK_SECRET_FILE")
                .doesNotContain("0123456789abcdef");
        assertThat(temp.resolve("spark-submit-ran")).doesNotExist();
    }

    @Test
    void clusterDeployModeOnASecuredStandaloneClusterIsRefused() throws Exception {
        String[] run = submit("--master", "spark://head:7077", "--deploy-mode", "cluster",
                "--", "merge", "ties.yml", "/tmp/out");
        assertEquals("2", run[0], run[1]);
        assertThat(run[1]).contains("--deploy-mode client");
        assertThat(temp.resolve("spark-submit-ran")).doesNotExist();
    }
}
