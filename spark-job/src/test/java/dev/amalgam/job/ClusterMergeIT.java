package dev.amalgam.job;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.testing.FaultyFileSystem;
import dev.amalgam.testing.MergeFixture;
import dev.amalgam.testing.StandaloneCluster;
import dev.amalgam.testing.TestSpark;
import dev.amalgam.testing.Tensors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The job on a real Spark standalone cluster (a master and two workers, each its own JVM, and
 * executors started by the workers), submitted through {@code scripts/submit} and spark-submit
 * in client mode, with executors too small to hold a model. The output must be byte-identical
 * to the local-mode merge, also after a worker or the driver is killed mid-merge.
 */
class ClusterMergeIT {
    @TempDir
    static Path temp;
    static StandaloneCluster cluster;
    static MergeFixture f;
    static Map<String, String> localBytes;
    /** A slow disk for the inputs, so that the merge stage runs long enough to kill something in it. */
    static final int READ_DELAY_MS = 25;
    static final int CHUNK = 96;

    @BeforeAll
    static void start() throws Exception {
        long t = System.nanoTime();
        cluster = StandaloneCluster.start(temp.resolve("cluster"), 2, "1g");
        System.out.printf("cluster: master and 2 workers up in %.1f s%n", (System.nanoTime() - t) / 1e9);
        f = MergeFixture.create(temp.resolve("models"), Dtype.BF16, 2, 6_000);
        String local = f.out("local");
        new MergeJob(TestSpark.context()).run(MergeRequest.of(config("local.yml", ""), local).withChunkElements(CHUNK)
                .withShardBytes(5_000));
        localBytes = Tensors.shardDigests(local);
    }

    @AfterAll
    static void stop() {
        if (cluster != null) {
            cluster.close();
        }
    }

    private static String config(String name, String scheme) {
        return f.config(name, "merge_method: ties\nbase_model: " + scheme + f.base + "\nmodels:\n"
                + "  - model: " + scheme + f.models.get(0) + "\n    parameters: {weight: 1.0, density: 0.5}\n"
                + "  - model: " + scheme + f.models.get(1) + "\n    parameters: {weight: 0.7, density: 0.6}\n"
                + "parameters: {rescale: true}\n");
    }

    /** scripts/submit to the cluster, in client deploy mode, with 512 MB executors. */
    private static Process submit(String config, String out, int readDelayMs, String log, String... sparkConf)
            throws Exception {
        return submit(config, out, readDelayMs, log, Map.of(), sparkConf);
    }

    /** The same with changes to the cluster's environment; a null value removes the variable. */
    private static Process submit(String config, String out, int readDelayMs, String log, Map<String, String> env,
                                  String... sparkConf) throws Exception {
        Path repo = Path.of("").toAbsolutePath().getParent();
        List<String> command = new ArrayList<>(List.of(repo.resolve("scripts/submit").toString(),
                "--master", cluster.masterUrl(), "--deploy-mode", "client",
                "--executor-memory", "512m", "--conf", "spark.executor.memoryOverhead=384m",
                "--conf", "spark.executor.cores=1", "--total-executor-cores", "2",
                "--conf", "spark.amalgam.executor.memoryLimit=64m",
                "--conf", "spark.hadoop.fs.faulty.impl=" + FaultyFileSystem.class.getName(),
                "--conf", "spark.hadoop.fs.faulty.impl.disable.cache=true",
                "--conf", "spark.hadoop.fs.faulty.readDelayMs=" + readDelayMs));
        for (String c : sparkConf) {
            command.addAll(List.of("--conf", c));
        }
        command.addAll(List.of("--", "merge", config, out, "--chunk-elements", String.valueOf(CHUNK), "--out-shard-size", "5000",
                "--no-progress"));
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(temp.resolve(log).toFile());
        pb.environment().putAll(cluster.environment());
        pb.environment().put("SPARK_SUBMIT", cluster.sparkSubmitScript().toString());
        pb.environment().put("AMALGAM_LOG", temp.resolve(log + ".amalgam.log").toString());
        env.forEach((k, v) -> {
            if (v == null) {
                pb.environment().remove(k);
            } else {
                pb.environment().put(k, v);
            }
        });
        return pb.start();
    }

    private static int await(Process p, String log) throws Exception {
        if (!p.waitFor(300, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("the submitted merge did not finish in 300 s; see " + temp.resolve(log));
        }
        return p.exitValue();
    }

    private static long finishedChunks(String out) {
        Path manifest = Path.of(out).getParent().resolve(".amalgam-staging-" + Path.of(out).getFileName())
                .resolve("_manifest");
        try (Stream<Path> entries = Files.list(manifest)) {
            return entries.filter(p -> p.getFileName().toString().startsWith("chunk-")).count();
        } catch (java.io.IOException notYet) {
            return 0;
        }
    }

    private static void awaitFinishedChunks(String out, long n, Process p) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
        while (finishedChunks(out) < n) {
            assertTrue(p.isAlive(), "the merge ended before " + n + " chunks were written");
            assertTrue(System.nanoTime() < deadline, "fewer than " + n + " chunks after 180 s");
            Thread.sleep(50);
        }
    }

    private static JsonNode report(String out) throws Exception {
        return new ObjectMapper().readTree(new File(out, "amalgam-report.json"));
    }

    @Test
    void aMergeSubmittedToTheClusterGivesTheBytesOfTheLocalMerge() throws Exception {
        String out = f.out("cluster");
        long t = System.nanoTime();
        int exit = await(submit(config("cluster.yml", ""), out, 0, "submit.log"), "submit.log");
        System.out.printf("cluster merge: exit %d in %.1f s (spark-submit to done)%n", exit, (System.nanoTime() - t) / 1e9);
        assertEquals(0, exit, "see " + temp.resolve("submit.log"));
        assertEquals(localBytes, Tensors.shardDigests(out));
        JsonNode report = report(out);
        assertThat(report.get("spark_master").asText()).isEqualTo(cluster.masterUrl());
        assertThat(report.get("spark_application_id").asText()).startsWith("app-");
    }

    @Test
    void theDriverSparkSubmitStartsLogsSparkToTheFileAndAmalgamToTheTerminal() throws Exception {
        String out = f.out("logged");
        assertEquals(0, await(submit(config("logged.yml", ""), out, 0, "logged.log"), "logged.log"));
        // Spark's default configuration would print its INFO lines on the console instead.
        assertThat(Files.readString(temp.resolve("logged.log"))).doesNotContain(" INFO ").contains("merged ties");
        assertTrue(Files.exists(temp.resolve("logged.log.amalgam.log")), "the log file named by AMALGAM_LOG");
    }

    @Test
    void driversWithoutTheClustersSecretOrWithAWrongOneAreRefusedByTheCluster() throws Exception {
        // Both at once: the master's refusal takes Spark's three registration attempts (about 60 s).
        int applications = cluster.applicationCount();
        Map<String, String> noSecret = new java.util.HashMap<>();
        noSecret.put("AMALGAM_SPARK_SECRET_FILE", null);
        Process unauthenticated = submit(config("unauthenticated.yml", ""), f.out("unauthenticated"), 0,
                "unauthenticated.log", noSecret, "spark.authenticate=false", "spark.network.crypto.enabled=false",
                "spark.io.encryption.enabled=false");
        Map<String, String> wrongSecret = new java.util.HashMap<>(noSecret);
        wrongSecret.put("AMALGAM_SPARK_SECRET", "0123456789abcdef0123456789abcdef");
        Process wrong = submit(config("wrong-secret.yml", ""), f.out("wrong-secret"), 0, "wrong-secret.log", wrongSecret);
        for (String run : new String[]{"unauthenticated", "wrong-secret"}) {
            int exit = await(run.equals("wrong-secret") ? wrong : unauthenticated, run + ".log");
            String output = Files.readString(temp.resolve(run + ".log"));
            assertEquals(5, exit, output);
            assertThat(output).as(run).contains("the cluster manager (" + cluster.masterUrl() + ") gave it up")
                    .contains("AMALGAM_SPARK_SECRET_FILE").doesNotContain("\tat ");
            assertFalse(Files.exists(Path.of(f.out(run))), "nothing is published");
        }
        assertEquals(applications, cluster.applicationCount(), "the master registered neither application");
    }

    @Test
    void tasksScheduledOnGpusRunWhereTheirExecutorSaysAndGiveTheSameBytes() throws Exception {
        // The GPU template's scheduling: one GPU per executor (found by conf/gpu-discovery.sh on
        // the workers), two tasks per GPU. Without a usable GPU here, --gpu auto falls back.
        String out = f.out("gpu-scheduled");
        int exit = await(submit(config("gpu.yml", ""), out, 0, "gpu.log",
                "spark.executor.resource.gpu.amount=1", "spark.task.resource.gpu.amount=0.5",
                "spark.amalgam.gpu=auto"), "gpu.log");
        assertEquals(0, exit, "see " + temp.resolve("gpu.log"));
        assertEquals(localBytes, Tensors.shardDigests(out));
        String executors = cluster.executorLogs();
        assertThat(executors).contains("Amalgam kernels: ").contains("(GPU 0 assigned by Spark");
        assertThat(executors).doesNotContain("\tat dev.amalgam");
        assertThat(report(out).get("kernels").size()).isPositive();
    }

    @Test
    void aWorkerKilledMidMergeCostsOnlyItsRunningChunks() throws Exception {
        String out = f.out("worker-killed");
        Process p = submit(config("worker.yml", "faulty://"), out, READ_DELAY_MS, "worker-killed.log");
        awaitFinishedChunks(out, 12, p);
        long before = finishedChunks(out);
        cluster.killWorker(1);
        assertEquals(0, await(p, "worker-killed.log"), "see " + temp.resolve("worker-killed.log"));
        cluster.restartWorker(1);
        assertEquals(localBytes, Tensors.shardDigests(out));
        JsonNode report = report(out);
        System.out.printf("worker killed after %d of %d chunks: %d merged in retried tasks, %d reused, %d merged in all%n",
                before, report.get("chunks").asLong(), report.get("chunks_merged_in_retried_tasks").asLong(),
                report.get("chunks_reused").asLong(), report.get("chunks_merged").asLong());
        assertThat(before).isLessThan(report.get("chunks").asLong());
    }

    @Test
    void aDriverKilledMidMergeIsResumedByTheSameCommand() throws Exception {
        String out = f.out("driver-killed");
        String config = config("driver.yml", "faulty://");
        Process p = submit(config, out, READ_DELAY_MS, "driver-killed.log");
        awaitFinishedChunks(out, 12, p);
        p.destroyForcibly().waitFor();
        long written = finishedChunks(out);
        assertFalse(Files.exists(Path.of(out)), "a killed run publishes nothing");

        assertEquals(0, await(submit(config, out, 0, "resumed.log"), "resumed.log"), "see " + temp.resolve("resumed.log"));
        assertEquals(localBytes, Tensors.shardDigests(out));
        JsonNode report = report(out);
        System.out.printf("driver killed after %d of %d chunks; rerun reused %d, merged %d, statistics reused: %s%n",
                written, report.get("chunks").asLong(), report.get("chunks_reused").asLong(),
                report.get("chunks_merged").asLong(), report.get("statistics_reused").asBoolean());
        assertTrue(report.get("resumed").asBoolean());
        assertThat(report.get("chunks_reused").asLong()).isGreaterThanOrEqualTo(written - 2);
        assertThat(report.get("chunks_reused").asLong()).isLessThan(report.get("chunks").asLong());
    }
}
