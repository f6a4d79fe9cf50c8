package dev.amalgam.testing;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs the amalgam CLI in its own JVM, as a user would, and captures exit code and output. */
public final class CliProcess {

    /** What a CLI run printed and returned. */
    public record Run(int exitCode, String stdout, String stderr) {
    }

    private CliProcess() {
    }

    public static Run run(Path workDir, String... args) throws Exception {
        return run(List.of(), workDir, args);
    }

    /**
     * Runs the CLI in a fresh JVM with {@code jvmArgs}, logging as the launcher script does
     * (conf/log4j2.properties: Spark to {@code workDir/amalgam.log}, Amalgam to stderr).
     */
    public static Run run(List<String> jvmArgs, Path workDir, String... args) throws Exception {
        String classpath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.addAll(Arrays.asList(System.getProperty("amalgam.jvm.flags", "").trim().split("\\s+")));
        command.add("-Xmx1g");
        Path log4j = Path.of(System.getProperty("user.dir")).resolve("../conf/log4j2.properties").normalize();
        if (Files.exists(log4j)) {
            command.add("-Dlog4j2.configurationFile=" + log4j);
            command.add("-Damalgam.log.file=" + workDir.resolve("amalgam.log"));
        }
        command.addAll(jvmArgs);
        command.add("-cp");
        command.add(classpath);
        command.add("dev.amalgam.cli.AmalgamCli");
        command.addAll(Arrays.asList(args));
        if (!args[0].equals("inspect")) {
            command.add("--master=local[2]");
        }
        command.removeIf(String::isEmpty);
        File out = workDir.resolve("cli-stdout-" + System.nanoTime()).toFile();
        File err = workDir.resolve("cli-stderr-" + System.nanoTime()).toFile();
        ProcessBuilder pb = new ProcessBuilder(command).directory(workDir.toFile())
                .redirectOutput(out).redirectError(err);
        pb.environment().put("SPARK_LOCAL_IP", "127.0.0.1");
        Process p = pb.start();
        if (!p.waitFor(180, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("amalgam " + String.join(" ", args) + " did not finish in 180 s");
        }
        return new Run(p.exitValue(), Files.readString(out.toPath(), StandardCharsets.UTF_8),
                Files.readString(err.toPath(), StandardCharsets.UTF_8));
    }
}
