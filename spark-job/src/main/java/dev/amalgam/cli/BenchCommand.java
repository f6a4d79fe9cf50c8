package dev.amalgam.cli;

import dev.amalgam.job.MergeJob;
import dev.amalgam.job.MergeRequest;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.executor.ExecutorMemory;
import dev.amalgam.method.MergeMethods;
import dev.amalgam.plan.PlanOptions;
import dev.amalgam.sample.SampleCheckpoints;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaSparkContext;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.File;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "bench", description = "Generates checkpoints of a requested size and measures each method end to end.")
final class BenchCommand implements Callable<Integer> {
    @Option(names = "--size", defaultValue = "1G", converter = Sizes.class,
            description = "size of each generated model (default: ${DEFAULT-VALUE})")
    long size;

    @Option(names = "--models", defaultValue = "2", description = "fine-tuned models besides the base (default: ${DEFAULT-VALUE})")
    int models;

    @Option(names = "--dtype", defaultValue = "bfloat16", description = "storage dtype (default: ${DEFAULT-VALUE})")
    String dtype;

    @Option(names = "--methods", split = ",", description = "methods to measure (default: every method)")
    List<String> methods;

    @Option(names = "--chunk-elements", defaultValue = "" + PlanOptions.DEFAULT_CHUNK_ELEMENTS,
            description = "elements per chunk (default: ${DEFAULT-VALUE})")
    int chunkElements;

    @Option(names = "--work-dir", defaultValue = "amalgam-bench", description = "scratch directory (default: ${DEFAULT-VALUE})")
    File workDir;

    @Option(names = "--runs", defaultValue = "2",
            description = "runs per method: the first is reported as cold, the median of the others as warm (default: ${DEFAULT-VALUE})")
    int runs;

    @Mixin
    SparkOptions spark;

    @Override
    public Integer call() throws Exception {
        Dtype storage = Dtype.fromConfigName(dtype).orElseThrow(() -> new IllegalArgumentException("unknown dtype " + dtype));
        Configuration hadoop = new Configuration();
        String root = workDir.getAbsolutePath();
        SampleCheckpoints.delete(hadoop, root);
        SampleCheckpoints.Shape shape = SampleCheckpoints.Shape.ofBytes(size, storage);
        long started = System.nanoTime();
        List<String> dirs = SampleCheckpoints.write(hadoop, root, shape, storage, models, 7, 2_000_000_000L);
        System.out.printf("generated base + %d models of %d layers (%s) in %.1f s%n", models, shape.layers(),
                storage.torchName(), (System.nanoTime() - started) / 1e9);
        System.out.printf("%-18s %10s %10s %12s %14s %14s %14s %12s %6s%n", "method", "cold s", "warm s", "input GB/s",
                "elements/s", "arrow peak MB", "heap peak MB", "stats reads", "iters");
        if (methods == null || methods.isEmpty()) {
            methods = List.copyOf(MergeMethods.names());
        }
        try (JavaSparkContext sc = spark.start()) {
            for (String method : methods) {
                if (MergeMethods.byName(method).isEmpty()) {
                    throw new IllegalArgumentException("unknown method " + method);
                }
                File config = new File(workDir, method + ".yml");
                Files.writeString(config.toPath(), ExampleConfigs.of(MergeMethods.byName(method).get(), root + "/base",
                        dirs), StandardCharsets.UTF_8);
                resetPeaks();
                // The first run includes JIT compilation (the SIMD loops are slow until C2 compiles
                // them); the median of the later runs is what a long merge runs at.
                double cold = time(sc, config, root + "/out-" + method);
                double[] warmRuns = new double[Math.max(1, runs - 1)];
                for (int r = 0; r < warmRuns.length; r++) {
                    warmRuns[r] = time(sc, config, root + "/out-" + method);
                }
                java.util.Arrays.sort(warmRuns);
                double warm = warmRuns[warmRuns.length / 2];
                long inputBytes = lastReport.path("input_bytes").asLong();
                long elements = lastReport.path("output_bytes").asLong() / storage.byteSize();
                // Statistics reads as a multiple of the inputs (1.0: one extra read), and the most
                // iterations an iterative method took on any tensor.
                int iterations = 0;
                for (com.fasterxml.jackson.databind.JsonNode t : lastReport.path("tensors")) {
                    iterations = Math.max(iterations, t.path("iterations").asInt(0));
                }
                System.out.printf("%-18s %10.2f %10.2f %12.3f %14.3e %14.1f %14.1f %12.2f %6s%n", method, cold, warm,
                        inputBytes / 1e9 / warm, elements / warm, ExecutorMemory.peak() / 1e6, heapPeak() / 1e6,
                        lastReport.path("bytes_read_statistics").asLong() / (double) inputBytes,
                        iterations == 0 ? "-" : Integer.toString(iterations));
                SampleCheckpoints.delete(hadoop, root + "/out-" + method);
            }
        }
        return 0;
    }

    private com.fasterxml.jackson.databind.JsonNode lastReport;

    private double time(JavaSparkContext sc, File config, String out) {
        long t = System.nanoTime();
        MergeJob.Result result = new MergeJob(sc).run(MergeRequest.of(config.getAbsolutePath(), out)
                .withChunkElements(chunkElements).withOverwrite(true));
        lastReport = result.report();
        return (System.nanoTime() - t) / 1e9;
    }

    private static void resetPeaks() {
        for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
            pool.resetPeakUsage();
        }
    }

    private static long heapPeak() {
        long peak = 0;
        for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
            if (pool.getType() == MemoryType.HEAP) {
                peak += pool.getPeakUsage().getUsed();
            }
        }
        return peak;
    }
}
