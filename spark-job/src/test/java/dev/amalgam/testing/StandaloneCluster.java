package dev.amalgam.testing;

import java.io.File;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A Spark standalone cluster on 127.0.0.1 made of real processes: one master and N workers,
 * each its own JVM started from the project's Maven classpath (no Spark download). Workers
 * start executors as further JVMs. The classpath they get holds Spark, Hadoop and the test
 * helpers but not Amalgam itself: executors get Amalgam from the submitted application jar.
 * The cluster is secured as the README says: the security lines of conf/spark-defaults.conf
 * and a shared secret in the master's and workers' configuration; {@link #environment()} gives
 * a submitting process the secret through {@code AMALGAM_SPARK_SECRET_FILE}.
 */
public final class StandaloneCluster implements AutoCloseable {
    private final Path work;
    private final String classpath;
    private final Path sparkHome;
    private final int port;
    private final int webPort;
    private final Process master;
    private final List<Process> workers = new ArrayList<>();
    private final String workerMemory;
    private final Path secretFile;
    private final Path properties;

    private StandaloneCluster(Path work, int workerCount, String workerMemory) throws Exception {
        this.work = work;
        this.workerMemory = workerMemory;
        this.classpath = clusterClasspath();
        this.sparkHome = Files.createDirectories(work.resolve("spark-home/jars")).getParent();
        this.port = freePort();
        this.webPort = freePort();
        String secret = java.util.HexFormat.of().formatHex(java.security.SecureRandom.getInstanceStrong().generateSeed(32));
        this.secretFile = work.resolve("spark-secret");
        Files.writeString(secretFile, secret + "\n");
        Files.setPosixFilePermissions(secretFile, PosixFilePermissions.fromString("rw-------"));
        this.properties = work.resolve("cluster.conf");
        Files.writeString(properties, securityLines() + "spark.authenticate.secret " + secret + "\n"
                + "spark.worker.resource.gpu.amount 1\n"
                + "spark.worker.resource.gpu.discoveryScript "
                + Path.of("").toAbsolutePath().getParent().resolve("conf/gpu-discovery.sh") + "\n");
        Files.setPosixFilePermissions(properties, PosixFilePermissions.fromString("rw-------"));
        this.master = start("master", List.of("org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                "--port", String.valueOf(port), "--webui-port", String.valueOf(webPort),
                "--properties-file", properties.toString()));
        for (int i = 0; i < workerCount; i++) {
            workers.add(startWorker(i));
        }
        awaitWorkers(workerCount);
    }

    public static StandaloneCluster start(Path work, int workers, String workerMemory) throws Exception {
        return new StandaloneCluster(work, workers, workerMemory);
    }

    public String masterUrl() {
        return "spark://127.0.0.1:" + port;
    }

    /** SIGKILL, as when a machine dies: no shutdown hooks, no goodbye to the master. */
    public void killWorker(int i) throws InterruptedException {
        workers.get(i).destroyForcibly().waitFor();
    }

    public void restartWorker(int i) throws Exception {
        workers.set(i, startWorker(i));
        awaitWorkers(workers.size());
    }

    /**
     * A {@code spark-submit} for this machine: SparkSubmit run by java with the cluster's
     * classpath and the JVM flags Spark 4 needs, as an executable script. Like Spark's own
     * launcher it adds {@code SPARK_SUBMIT_OPTS} to the JVM's options.
     */
    public Path sparkSubmitScript() throws IOException {
        Path script = work.resolve("spark-submit");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Files.writeString(script, "#!/usr/bin/env bash\nexec " + java + " " + System.getProperty("amalgam.jvm.flags", "")
                + " -Xmx1g $SPARK_SUBMIT_OPTS -cp '" + classpath + "' org.apache.spark.deploy.SparkSubmit \"$@\"\n");
        Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwxr-xr-x"));
        return script;
    }

    /** The environment a Spark process here needs (also for the submitting JVM), the secret's file included. */
    public Map<String, String> environment() {
        return Map.of("SPARK_HOME", sparkHome.toString(), "SPARK_DIST_CLASSPATH", classpath,
                "SPARK_SCALA_VERSION", "2.13", "SPARK_LOCAL_IP", "127.0.0.1",
                "AMALGAM_SPARK_SECRET_FILE", secretFile.toString());
    }

    /** The authentication and encryption settings of conf/spark-defaults.conf, which nodes need too. */
    private static String securityLines() throws IOException {
        Path defaults = Path.of("").toAbsolutePath().getParent().resolve("conf/spark-defaults.conf");
        StringBuilder lines = new StringBuilder();
        for (String line : Files.readAllLines(defaults)) {
            if (line.startsWith("spark.authenticate") || line.startsWith("spark.network.crypto")
                    || line.startsWith("spark.io.encryption")) {
                lines.append(line).append('\n');
            }
        }
        if (!lines.toString().contains("spark.authenticate ")) {
            throw new IllegalStateException(defaults + " no longer turns on spark.authenticate");
        }
        return lines.toString();
    }

    /** Applications the master has registered, running and finished. */
    public int applicationCount() throws Exception {
        String json = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + webPort
                + "/json/")).timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.ofString()).body();
        Matcher ids = Pattern.compile("\"id\"\\s*:\\s*\"app-").matcher(json);
        int count = 0;
        while (ids.find()) {
            count++;
        }
        return count;
    }

    /**
     * Workers offer one GPU each, found by conf/gpu-discovery.sh as on a GPU cluster; the
     * environment's CUDA_VISIBLE_DEVICES=0 stands in for nvidia-smi where there is no GPU, so
     * applications that ask for GPUs get address "0" scheduled (executors without a usable one
     * then say so and run on the CPU under --gpu auto).
     */
    private Process startWorker(int i) throws IOException {
        Path dir = Files.createDirectories(work.resolve("worker-" + i));
        return start("worker-" + i, List.of("org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                "--cores", "1", "--memory", workerMemory, "--work-dir", dir.toString(), "--webui-port",
                String.valueOf(freePort()), "--properties-file", properties.toString(), masterUrl()));
    }

    /** The executors' stderr of every application, all workers together. */
    public String executorLogs() throws IOException {
        StringBuilder logs = new StringBuilder();
        try (java.util.stream.Stream<Path> files = Files.walk(work)) {
            for (Path p : files.filter(p -> p.getFileName().toString().equals("stderr")).toList()) {
                logs.append(Files.readString(p));
            }
        }
        return logs.toString();
    }

    private Process start(String name, List<String> mainAndArgs) throws IOException {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.addAll(Arrays.asList(System.getProperty("amalgam.jvm.flags", "").trim().split("\\s+")));
        command.add("-Xmx256m");
        command.add("-cp");
        command.add(classpath);
        command.addAll(mainAndArgs);
        command.removeIf(String::isEmpty);
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(work.resolve(name + "-" + System.nanoTime() + ".log").toFile());
        pb.environment().putAll(environment());
        pb.environment().put("CUDA_VISIBLE_DEVICES", "0");
        return pb.start();
    }

    private void awaitWorkers(int count) throws Exception {
        HttpClient http = HttpClient.newHttpClient();
        Pattern alive = Pattern.compile("\"aliveworkers\"\\s*:\\s*(\\d+)");
        long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        while (System.nanoTime() < deadline) {
            try {
                String json = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + webPort + "/json/"))
                        .timeout(Duration.ofSeconds(2)).build(), HttpResponse.BodyHandlers.ofString()).body();
                Matcher m = alive.matcher(json);
                if (m.find() && Integer.parseInt(m.group(1)) >= count) {
                    return;
                }
            } catch (IOException notUpYet) {
                // The master's web UI is not listening yet.
            }
            if (!master.isAlive()) {
                throw new IllegalStateException("the Spark master exited; see the logs in " + work);
            }
            Thread.sleep(250);
        }
        throw new IllegalStateException(count + " workers did not register with the master in 90 s; logs in " + work);
    }

    /** Spark, Hadoop and the test helpers; not Amalgam's own classes, which travel in the application jar. */
    private static String clusterClasspath() {
        String all = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        List<String> kept = new ArrayList<>();
        for (String entry : all.split(File.pathSeparator)) {
            boolean amalgam = entry.contains("amalgam-spark-job") || entry.contains("amalgam-kernels")
                    || entry.endsWith("spark-job/target/classes") || entry.contains("cuda-kernels/target");
            if (!amalgam && !entry.isBlank()) {
                kept.add(entry);
            }
        }
        return String.join(File.pathSeparator, kept);
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    @Override
    public void close() {
        for (Process w : workers) {
            w.destroyForcibly();
        }
        master.destroyForcibly();
        for (Process w : workers) {
            try {
                w.waitFor();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
