package dev.amalgam.job;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.amalgam.AmalgamException;
import dev.amalgam.staging.ChunkManifest;
import dev.amalgam.commit.DestinationLock;
import dev.amalgam.commit.HtmlReport;
import dev.amalgam.commit.ModelCard;
import dev.amalgam.commit.TensorTable;
import dev.amalgam.commit.OutputCommitter;
import dev.amalgam.staging.OutputTarget;
import dev.amalgam.commit.ShardAssemblyStage;
import dev.amalgam.commit.SideFiles;
import dev.amalgam.config.MergeConfig;
import dev.amalgam.config.MergeConfigParser;
import dev.amalgam.format.CheckpointReader;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.executor.ChunkFailedException;
import dev.amalgam.executor.ExecutorKernels;
import dev.amalgam.merge.ChunkReport;
import dev.amalgam.merge.MergeStage;
import dev.amalgam.plan.MergeFingerprint;
import dev.amalgam.plan.MergePlan;
import dev.amalgam.plan.Planner;
import dev.amalgam.plan.ResourceCheck;
import dev.amalgam.stats.StatisticsResult;
import dev.amalgam.stats.PassListener;
import dev.amalgam.stats.StatisticsStage;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.SparkConf;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.util.LongAccumulator;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The driver's side of a merge: inspect and validate, plan, then under the destination's lock
 * statistics, merge, commit. The destination is only ever replaced whole; a run that fails or
 * is killed leaves its finished chunks in the staging directory for the next run to reuse.
 */
public final class MergeJob {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(MergeJob.class);
    private final JavaSparkContext sc;

    public MergeJob(JavaSparkContext sc) {
        this.sc = sc;
    }

    /** What a finished merge reports: where it went and the run report it wrote there. */
    public record Result(String destination, ObjectNode report) {
    }

    /**
     * A validated merge, before any data moves: the config, the plan, and the fingerprint of
     * everything the result depends on.
     */
    public record Inspection(MergeConfig config, Planner.Planned planned, String tokenizerSource, String fingerprint,
                             double seconds) {
    }

    public Result run(MergeRequest request) {
        Inspection inspection = inspect(request);
        dev.amalgam.executor.KernelWarmup.stopUnlessWorthwhile(inspection.planned().plan().inputBytes());
        return run(request, inspection);
    }

    /** Parses the config, reads every header, plans, and fingerprints the inputs; reads no tensor data. */
    public Inspection inspect(MergeRequest request) {
        return inspect(sc.hadoopConfiguration(), sc.getConf(), request);
    }

    /**
     * The same without a running Spark application ({@code amalgam plan}): {@code conf} gives the
     * memory settings the plan is checked against, {@code hadoop} the file systems.
     */
    public static Inspection inspect(Configuration hadoop, SparkConf conf, MergeRequest request) {
        long started = System.nanoTime();
        MergeConfig config = MergeConfigParser.parse(request.configFile(), readConfig(hadoop, request.configFile()));
        if (request.randomSeed() != null) {
            config = config.withRandomSeed(request.randomSeed());
        }
        ResourceCheck.Settings settings = ResourceSettings.of(conf);
        Planner.Planned planned = new Planner(new CheckpointReader(hadoop), settings).plan(request.configFile(), config,
                request.planOptions());
        List<String> resources = ResourceCheck.problems(planned.plan(), settings);
        if (!resources.isEmpty()) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, resources);
        }
        logBackendGap(conf, planned.plan());
        String tokenizerSource = checkTokenizerSource(hadoop, request.configFile(), config,
                tokenizerSource(config, planned));
        String fingerprint = MergeFingerprint.of(hadoop, config.source(), planned.plan(), planned,
                request.planOptions(), Set.of(tokenizerSource), request.contentChecksums());
        return new Inspection(config, planned, tokenizerSource, fingerprint, seconds(started));
    }

    /**
     * Merges what {@code inspection} planned into the request's destination, holding its lock.
     * A failure keeps the finished chunks in the staging directory, so rerunning the same
     * command resumes; the destination is untouched either way.
     */
    public Result run(MergeRequest request, Inspection inspection) {
        try {
            return runStarted(request, inspection);
        } catch (IllegalStateException e) {
            if (sc.sc().isStopped()) {
                throw stoppedBySpark(request, e);
            }
            throw e;
        }
    }

    /**
     * Spark stops the context itself when the cluster manager gives the application up; every
     * later call then fails with a message about a stopped context that names no cause.
     */
    private AmalgamException stoppedBySpark(MergeRequest request, Throwable cause) {
        return new AmalgamException(AmalgamException.Kind.EXECUTION, "Spark ended the application before the merge "
                + "finished, so nothing was published to " + request.destination() + ": the cluster manager ("
                + sc.master() + ") gave it up. A secured standalone cluster does this to a driver without its shared "
                + "secret or with a wrong one: check AMALGAM_SPARK_SECRET_FILE (README, \"Security and bad input\"); "
                + "Spark's reason is in the log.", cause);
    }

    private Result runStarted(MergeRequest request, Inspection inspection) {
        Map<String, Double> timings = new LinkedHashMap<>();
        Instant startedAt = Instant.now();
        Configuration hadoop = sc.hadoopConfiguration();
        MergeConfig config = inspection.config();
        Planner.Planned planned = inspection.planned();
        MergePlan plan = planned.plan();
        timings.put("inspect_and_plan", inspection.seconds());
        int partitions = request.partitions() > 0 ? request.partitions()
                : defaultPartitions(plan.chunks().length, sc.defaultParallelism());
        try (DestinationLock lock = DestinationLock.acquire(hadoop, request.destination(),
                "merge " + request.configFile())) {
            OutputCommitter committer = new OutputCommitter(hadoop, request.destination(), request.overwrite());
            committer.checkDestination();
            committer.requireSpace(plan, request.writeMode());
            OutputTarget target;
            try {
                target = committer.prepare(plan, request.writeMode(), inspection.fingerprint()
                        + " chunks=" + plan.chunkLayout());
            } catch (IOException e) {
                committer.abort();
                throw new AmalgamException(AmalgamException.Kind.OUTPUT, committer.staging()
                        + ": cannot prepare the staging directory: " + e.getMessage(), e);
            }
            TaskFailures failures = new TaskFailures();
            sc.sc().addSparkListener(failures);
            try {
                return merge(request, inspection, committer, target, partitions, timings, startedAt);
            } catch (AmalgamException e) {
                throw e;
            } catch (Exception e) {
                if (sc.sc().isStopped()) {
                    throw stoppedBySpark(request, e);
                }
                int kept = ChunkManifest.open(target.stagingDir(), hadoop).recorded().cardinality();
                List<String> problems = new ArrayList<>();
                problems.add("the merge failed and nothing was published to " + request.destination() + ": "
                        + rootMessage(e) + "\n" + kept + " of " + plan.chunks().length + " chunks finished and are kept in "
                        + committer.staging() + ": rerunning the same command resumes from them (delete that "
                        + "directory to start over)");
                problems.addAll(failures.lines());
                throw new AmalgamException(AmalgamException.Kind.EXECUTION, problems, e);
            } finally {
                sc.sc().removeSparkListener(failures);
            }
        }
    }

    private Result merge(MergeRequest request, Inspection inspection, OutputCommitter committer, OutputTarget target,
                         int partitions, Map<String, Double> timings, Instant startedAt) throws IOException {
        Configuration hadoop = sc.hadoopConfiguration();
        MergeConfig config = inspection.config();
        Planner.Planned planned = inspection.planned();
        MergePlan plan = planned.plan();
        Broadcast<MergePlan> planB = sc.broadcast(plan);

        long t = System.nanoTime();
        LongAccumulator statisticsRead = sc.sc().longAccumulator("amalgam.statisticsBytesRead");
        Optional<StatisticsResult> saved = committer.resumed()
                ? committer.savedStatistics().flatMap(StatisticsResult::fromBytes) : Optional.empty();
        StatisticsResult stats;
        if (saved.isPresent()) {
            stats = saved.get();
        } else {
            PassListener listener = request.progress()
                    ? (pass, chunks, done, read) -> new ProgressLine(pass, done, read, chunks) : PassListener.SILENT;
            stats = StatisticsStage.run(sc, planB, plan, planned.method(), partitions, statisticsRead,
                    sc.getConf().getBoolean(StatisticsStage.ONE_PASS_KEY, true), listener);
            committer.saveStatistics(stats.toBytes());
        }
        timings.put("statistics", seconds(t));

        t = System.nanoTime();
        BitSet recorded = committer.resumed() ? ChunkManifest.open(target.stagingDir(), hadoop).recorded() : new BitSet();
        Broadcast<StatisticsResult> statsB = sc.broadcast(stats);
        MergeStage.Progress progress = MergeStage.Progress.register(sc);
        List<ChunkReport> reports;
        try (ProgressLine ignored = request.progress()
                ? new ProgressLine("merge", progress.chunks(), progress.bytesRead(), plan.chunks().length) : null) {
            reports = MergeStage.run(sc, planB, statsB, target, recorded, partitions, progress);
        }
        timings.put("merge", seconds(t));
        NonFiniteCounts nonFinite = NonFiniteCounts.of(plan, reports);
        checkNonFinite(request, planned, committer, nonFinite);

        t = System.nanoTime();
        String assembly = target.positioned() ? "in-place"
                : ShardAssemblyStage.run(sc, planB, target, committer.assembler());
        committer.writeIndex(plan);
        // An MoE assembly writes every tensor in one dtype, which the plan chose.
        Dtype uniformOut = planned.moe() != null ? plan.tensors()[0].outDtype() : config.effectiveOutDtype();
        // FP8 output keeps the inputs' quantization_config (same format and blocks) and torch_dtype.
        SideFiles.writeConfig(committer, hadoop, planned.reference().sideFileDirectory(),
                uniformOut != null && uniformOut.writable() ? uniformOut : null,
                plan.quantized() && !plan.quantizedOutput(), planned.layerOrigins(), configEdits(planned));
        List<String> tokenizer = planned.vocabulary() != null
                ? SideFiles.writeTokenizer(committer, hadoop, planned.vocabulary().tokenizer())
                : SideFiles.copyTokenizer(committer, inspection.tokenizerSource());
        committer.writeFile("amalgam-config.yml", config.source().getBytes(StandardCharsets.UTF_8));
        timings.put("commit", seconds(t));
        ObjectNode report = RunReport.build(request, config, planned, reports, nonFinite, progress,
                statisticsRead.value(),
                timings, startedAt, new RunReport.Run(sc.sc().applicationId(), sc.master(), partitions,
                        target.positioned(), assembly, inspection.fingerprint(), committer.resumed(),
                        saved.isPresent()), tokenizer);
        committer.writeFile("amalgam-report.json",
                new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsBytes(report));
        committer.writeFile("README.md", ModelCard.render(config, plan, report).getBytes(StandardCharsets.UTF_8));
        committer.writeFile(HtmlReport.FILE, HtmlReport.render(report, config.source()).getBytes(StandardCharsets.UTF_8));
        TensorTable.write(hadoop, report, committer.staging().toString());
        committer.publish();
        planB.destroy();
        statsB.destroy();
        return new Result(committer.destination().toString(), report);
    }

    /**
     * Applies the request's non-finite policy to what the merge stage counted: under ERROR the run
     * stops before anything is assembled or published, its chunks kept for a rerun.
     */
    private static void checkNonFinite(MergeRequest request, Planner.Planned planned, OutputCommitter committer,
                                       NonFiniteCounts counts) {
        if (!counts.any() || request.nonFinite() == NonFinitePolicy.ALLOW) {
            return;
        }
        List<String> inputNames = new ArrayList<>();
        inputNames.addAll(planned.modelNames());
        inputNames.add(planned.reference().directory());
        List<String> lines = counts.lines(inputNames);
        if (request.nonFinite() == NonFinitePolicy.WARN) {
            lines.forEach(line -> LOG.warn("non-finite values: {}", line));
            return;
        }
        List<String> problems = new ArrayList<>();
        problems.add("NaN or infinite values found, so nothing was published to " + request.destination()
                + " (--non-finite error, the default):");
        lines.forEach(line -> problems.add("  " + line));
        problems.add("The merged chunks are kept in " + committer.staging() + ": fix the inputs (and delete that "
                + "directory), or rerun the same command with --non-finite warn to publish this merge as it is "
                + "without merging again.");
        throw new AmalgamException(counts.anyInput() ? AmalgamException.Kind.INPUT : AmalgamException.Kind.EXECUTION,
                problems);
    }

    /** Says once, before any task, when GPU executors will run this merge on their CPUs. */
    private static void logBackendGap(SparkConf conf, MergePlan plan) {
        if ("off".equalsIgnoreCase(conf.get(ExecutorKernels.MODE_KEY, "auto").trim())) {
            return;
        }
        java.util.Set<dev.amalgam.kernels.Primitive> missing = java.util.EnumSet.copyOf(plan.primitives());
        missing.removeAll(dev.amalgam.kernels.gpu.GpuBackend.PRIMITIVES);
        if (!missing.isEmpty()) {
            LOG.info("Amalgam kernels: {} needs {}, which have no CUDA kernel yet; executors with a GPU run this merge "
                    + "on their CPU", plan.settings().method(), missing);
        }
    }

    /**
     * About eight chunks per task, so task overhead stays small and histograms of a tensor's
     * chunks combine inside a task before the shuffle, but at least four tasks per core for
     * balance, and never more tasks than chunks.
     */
    static int defaultPartitions(int chunks, int parallelism) {
        return Math.max(1, Math.min(chunks, Math.max(chunks / 8, 4 * parallelism)));
    }

    /** What config.json gains beyond the dtype and layer counts: an MoE's architecture, a new vocabulary's rows. */
    private static java.util.function.Consumer<com.fasterxml.jackson.databind.node.ObjectNode> configEdits(
            Planner.Planned planned) {
        return config -> {
            if (planned.moe() != null) {
                planned.moe().rewrite(config);
            }
            if (planned.vocabulary() != null && planned.vocabulary().rows() > 0) {
                config.put("vocab_size", planned.vocabulary().rows());
            }
        };
    }

    private static String tokenizerSource(MergeConfig config, Planner.Planned planned) {
        if (planned.vocabulary() != null) {
            return planned.vocabulary().tokenizer().sourceDirectory();
        }
        String source = config.tokenizerSource();
        if (source == null || source.equals("base")) {
            return planned.reference().sideFileDirectory();
        }
        return source;
    }

    /**
     * The directory tokenizer files are copied from. A source the config names explicitly
     * ({@code base} or a model) must hold tokenizer files: a merge that silently wrote none would
     * not load. {@code BASE+ADAPTER} takes the base's (an adapter has no tokenizer of its own).
     */
    private static String checkTokenizerSource(Configuration hadoop, String configFile, MergeConfig config,
                                               String source) {
        if (config.tokenizerSource() == null) {
            return source;
        }
        try {
            Path path = new Path(source);
            FileSystem fs = path.getFileSystem(hadoop);
            int plus = source.lastIndexOf('+');
            if (!fs.exists(path) && plus > 0) {
                return checkTokenizerSource(hadoop, configFile, config, source.substring(0, plus));
            }
            if (!fs.exists(path) || !fs.getFileStatus(path).isDirectory()) {
                throw new AmalgamException(AmalgamException.Kind.CONFIG, configFile + ": tokenizer_source '" + source
                        + "' is not a directory; use 'base' or a model directory holding tokenizer files");
            }
            for (String file : SideFiles.TOKENIZER_FILES) {
                if (fs.exists(new Path(path, file))) {
                    return source;
                }
            }
            throw new AmalgamException(AmalgamException.Kind.CONFIG, configFile + ": tokenizer_source '"
                    + config.tokenizerSource() + "' (" + source + ") holds no tokenizer files (looked for "
                    + String.join(", ", SideFiles.TOKENIZER_FILES) + "); name a model that has them, or remove "
                    + "tokenizer_source to write none");
        } catch (IOException e) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, configFile + ": tokenizer_source '" + source
                    + "' cannot be read: " + e.getMessage());
        }
    }

    /** The config {@code file} names, parsed (either schema: a merge or an MoE assembly); reads no checkpoint. */
    public static MergeConfig parseConfig(Configuration hadoop, String file) {
        return MergeConfigParser.parse(file, readConfig(hadoop, file));
    }

    private static String readConfig(Configuration hadoop, String file) {
        if (file == null || file.isBlank()) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, "the merge config path is empty; give a YAML file");
        }
        try {
            Path path = new Path(file);
            FileSystem fs = path.getFileSystem(hadoop);
            if (fs.exists(path) && !dev.amalgam.format.LocalFiles.regularFile(fs, path)) {
                throw new AmalgamException(AmalgamException.Kind.CONFIG, file + ": is not a regular file (a FIFO, "
                        + "device or directory is never opened); give the merge config's YAML file");
            }
            if (fs.exists(path) && fs.getFileStatus(path).getLen() > MergeConfigParser.MAX_CONFIG_BYTES) {
                throw new AmalgamException(AmalgamException.Kind.CONFIG, file + ": is "
                        + fs.getFileStatus(path).getLen() + " bytes, over the limit of "
                        + MergeConfigParser.MAX_CONFIG_BYTES + " for a merge config");
            }
            try (FSDataInputStream in = fs.open(path)) {
                return new String(in.readAllBytes(), StandardCharsets.UTF_8);
            }
        } catch (IOException | IllegalArgumentException e) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, file + ": cannot read the merge config: "
                    + e.getMessage());
        }
    }

    /**
     * Spark wraps task failures several times; a chunk failure's own message names the tensor
     * and the file, otherwise the innermost message is the most specific.
     */
    static String rootMessage(Throwable e) {
        String message = e.getMessage();
        for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (t instanceof ChunkFailedException) {
                return t.getMessage();
            }
            if (t.getMessage() != null) {
                message = t.getMessage();
            }
        }
        return message;
    }

    private static double seconds(long since) {
        return (System.nanoTime() - since) / 1e9;
    }
}
