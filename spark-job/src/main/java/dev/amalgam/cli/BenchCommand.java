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
import dev.amalgam.sample.GeneratedFileSystem;
import dev.amalgam.sample.ModelLayout;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "bench", description = "Generates checkpoints of a requested size and measures each method end to end; the figures are kept for plan's time estimate (~/.amalgam/bench-figures.json, or $AMALGAM_BENCH_FIGURES).")
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

    @Option(names = "--split-statistics-tensors", negatable = false,
            description = "as for merge: statistics tensors cut by --chunk-elements even where memory holds them whole")
    boolean splitStatisticsTensors;

    @Option(names = "--work-dir", defaultValue = "amalgam-bench", description = "scratch directory (default: ${DEFAULT-VALUE})")
    File workDir;

    @Option(names = "--runs", defaultValue = "2",
            description = "runs per method: the first is reported as cold, the median of the others as warm (default: ${DEFAULT-VALUE})")
    int runs;

    @Option(names = "--layout", description = "merge generated checkpoints with a real model's layout, bytes computed on "
            + "read (no disk): qwen2-72b, llama3-70b, mixtral-8x22b, qwen3-235b-a22b, deepseek-v3; append -<N>layers to "
            + "keep the first N layers; 'all' with --plan-only")
    String layout;

    @Option(names = "--plan-only", description = "with --layout: plan only (headers), reporting plan time and driver memory")
    boolean planOnly;

    @Mixin
    SparkOptions spark;

    @Override
    public Integer call() throws Exception {
        if (layout != null) {
            return planOnly ? planLayouts() : mergeLayout();
        }
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
        // Companion checkpoints (Fisher diagonals, second moments) beside each model, for the methods that read them.
        java.util.Set<String> kinds = new java.util.TreeSet<>();
        for (String method : methods) {
            MergeMethods.byName(method).ifPresent(m -> kinds.addAll(m.companions()));
        }
        for (String kind : kinds) {
            for (int i = 0; i < dirs.size(); i++) {
                SampleCheckpoints.writeCompanion(hadoop, ExampleConfigs.companion(dirs.get(i), kind), shape, storage, kind,
                        i + 1, 7);
            }
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
                BenchFigures.record(new BenchFigures.Figure(method, inputBytes / 1e9 / warm, inputBytes / 1e9 / cold,
                        sc.master(), inputBytes / 1e9, null));
                SampleCheckpoints.delete(hadoop, root + "/out-" + method);
            }
        }
        return 0;
    }

    private com.fasterxml.jackson.databind.JsonNode lastReport;

    private List<String> layoutModels(String name) {
        List<String> dirs = new java.util.ArrayList<>();
        for (int i = 1; i <= models; i++) {
            dirs.add(GeneratedFileSystem.SCHEME + ":///" + name + "/tuned-" + i);
        }
        return dirs;
    }

    private File layoutConfig(String name, String method) throws java.io.IOException {
        workDir.mkdirs();
        File config = new File(workDir, name + "-" + method + ".yml");
        Files.writeString(config.toPath(), ExampleConfigs.of(MergeMethods.byName(method).orElseThrow(
                () -> new IllegalArgumentException("unknown method " + method)),
                GeneratedFileSystem.SCHEME + ":///" + name + "/base", layoutModels(name)), StandardCharsets.UTF_8);
        return config;
    }

    /** Plans a merge of each layout (headers only): plan time, tensors, chunks and the driver heap the plan holds. */
    private int planLayouts() throws Exception {
        List<String> names = layout.equals("all")
                ? java.util.Arrays.stream(ModelLayout.values()).map(ModelLayout::id).toList() : List.of(layout);
        String method = methods == null || methods.isEmpty() ? "ties" : methods.get(0);
        System.out.printf("%-18s %9s %9s %10s %8s %10s %14s %16s%n", "layout", "tensors", "chunks", "input GB",
                "plan s", "heap MB", "task arrow MB", "exec. limit/task");
        try (JavaSparkContext sc = spark.start()) {
            for (String name : names) {
                File config = layoutConfig(name, method);
                System.gc();
                long before = usedHeap();
                long t = System.nanoTime();
                MergeJob.Inspection inspection = new MergeJob(sc).inspect(MergeRequest.of(config.getAbsolutePath(),
                        new File(workDir, "never").getAbsolutePath()).withChunkElements(chunkElements)
                        .withWholeTensorStatistics(!splitStatisticsTensors));
                double seconds = (System.nanoTime() - t) / 1e9;
                System.gc();
                long held = usedHeap() - before;
                dev.amalgam.plan.MergePlan plan = inspection.planned().plan();
                long task = dev.amalgam.plan.ResourceCheck.taskHostBytes(plan, false);
                System.out.printf("%-18s %9d %9d %10.1f %8.2f %10.1f %14.1f %16s%n", name, plan.tensors().length,
                        plan.chunks().length, plan.inputBytes() / 1e9, seconds, held / 1e6, task / 1e6,
                        (task * 2 / (1 << 20)) + "m (2 tasks)");
                java.lang.ref.Reference.reachabilityFence(inspection);
            }
        }
        return 0;
    }

    /** Merges generated checkpoints of one layout with each method: time, GB/s and reads against input size. */
    private int mergeLayout() throws Exception {
        List<String> run = methods == null || methods.isEmpty() ? List.of("ties") : methods;
        System.out.printf("%-18s %-18s %10s %10s %12s %12s %12s %14s%n", "layout", "method", "input GB", "s",
                "input GB/s", "reads/input", "stats s", "arrow peak MB");
        try (JavaSparkContext sc = spark.start()) {
            for (String method : run) {
                File config = layoutConfig(layout, method);
                String out = new File(workDir, "out-" + layout + "-" + method).getAbsolutePath();
                resetPeaks();
                double seconds = time(sc, config, out);
                long inputBytes = lastReport.path("input_bytes").asLong();
                System.out.printf("%-18s %-18s %10.2f %10.1f %12.3f %12.3f %12.1f %14.1f%n", layout, method,
                        inputBytes / 1e9, seconds, inputBytes / 1e9 / seconds,
                        lastReport.path("bytes_read").asLong() / (double) inputBytes,
                        lastReport.path("timings_seconds").path("statistics").asDouble(),
                        ExecutorMemory.peak() / 1e6);
                SampleCheckpoints.delete(new Configuration(), out);
            }
        }
        return 0;
    }

    private static long usedHeap() {
        Runtime r = Runtime.getRuntime();
        return r.totalMemory() - r.freeMemory();
    }

    private double time(JavaSparkContext sc, File config, String out) {
        long t = System.nanoTime();
        MergeJob.Result result = new MergeJob(sc).run(MergeRequest.of(config.getAbsolutePath(), out)
                .withChunkElements(chunkElements).withWholeTensorStatistics(!splitStatisticsTensors).withOverwrite(true));
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
