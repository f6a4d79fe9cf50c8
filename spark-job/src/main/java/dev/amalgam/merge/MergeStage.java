package dev.amalgam.merge;

import dev.amalgam.executor.SparkWorkNames;

import dev.amalgam.method.MergeMethod;
import dev.amalgam.executor.ExecutorKernels;
import dev.amalgam.executor.ChunkLoader;
import dev.amalgam.executor.ChunkFailedException;
import dev.amalgam.executor.ExecutorHadoop;
import dev.amalgam.executor.ExecutorMemory;

import dev.amalgam.staging.Checksums;
import dev.amalgam.staging.ChunkManifest;
import dev.amalgam.staging.ChunkSink;
import dev.amalgam.staging.OutputTarget;
import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.plan.ChunkPlan;
import dev.amalgam.plan.MergePlan;
import dev.amalgam.plan.OutputQuantization;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.kernels.Fp8BlockQuantizer;
import dev.amalgam.kernels.NonFinite;
import dev.amalgam.plan.TensorPlan;
import dev.amalgam.stats.LocalStatistics;
import dev.amalgam.stats.StatisticsResult;
import org.apache.arrow.memory.ArrowBuf;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.util.LongAccumulator;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.stream.IntStream;

/**
 * The merge stage: every chunk is read, decoded, merged by the method's kernel, encoded and
 * written to its place, on executors, and then recorded in the staging directory's manifest
 * with its checksum. Returns one small report per chunk. The kernels run on the backend
 * {@link ExecutorKernels} chose for the executor (CPU, or a GPU with two chunks in flight).
 */
public final class MergeStage {
    private MergeStage() {
    }

    /** Counters the driver's progress line reads while the stage runs. */
    public record Progress(LongAccumulator chunks, LongAccumulator bytesRead, LongAccumulator bytesWritten)
            implements java.io.Serializable {
        public static Progress register(JavaSparkContext sc) {
            return new Progress(sc.sc().longAccumulator("amalgam.chunks"), sc.sc().longAccumulator("amalgam.bytesRead"),
                    sc.sc().longAccumulator("amalgam.bytesWritten"));
        }
    }

    /**
     * @param recorded chunks with an entry in the manifest (left by a killed run): they are
     *                 verified against their stored bytes and skipped when those still match
     */
    public static List<ChunkReport> run(JavaSparkContext sc, Broadcast<MergePlan> planB, Broadcast<StatisticsResult> statsB,
                                        OutputTarget target, BitSet recorded, int partitions, Progress progress) {
        MergePlan plan = planB.value();
        int maxChunk = 0;
        for (ChunkPlan c : plan.chunks()) {
            maxChunk = Math.max(maxChunk, c.count());
        }
        int largest = maxChunk;
        // An FP8 weight's scales are written by the weight's chunks, not scheduled on their own.
        List<Integer> chunks = IntStream.range(0, plan.chunks().length)
                .filter(i -> !plan.tensors()[plan.chunks()[i].tensor()].derived()).boxed().toList();
        if (chunks.isEmpty()) {
            return List.of();
        }
        int slices = Math.max(1, Math.min(partitions, chunks.size()));
        try (SparkWorkNames.Step step = SparkWorkNames.start(sc, "merge", SparkWorkNames.chunkRange(plan, chunks))) {
            return mergeChunks(sc, planB, statsB, target, recorded, chunks, slices, largest, progress);
        }
    }

    private static List<ChunkReport> mergeChunks(JavaSparkContext sc, Broadcast<MergePlan> planB,
                                                 Broadcast<StatisticsResult> statsB, OutputTarget target,
                                                 BitSet recorded, List<Integer> chunks, int slices, int largest,
                                                 Progress progress) {
        return sc.parallelize(new ArrayList<>(chunks), slices).mapPartitions(it -> {
            MergePlan p = planB.value();
            StatisticsResult stats = statsB.value();
            int[] firstChunk = p.firstChunks();
            Configuration hadoop = ExecutorHadoop.configuration();
            TaskContext task = TaskContext.get();
            String name = "merge-task-" + (task == null ? 0 : task.taskAttemptId());
            int attempt = task == null ? 0 : task.attemptNumber();
            ChunkManifest manifest = ChunkManifest.open(target.stagingDir(), hadoop);
            LocalStatistics local = new LocalStatistics();
            List<ChunkReport> reports = new ArrayList<>();
            try (ChunkLoader loader = new ChunkLoader(ExecutorKernels.forTask(p.primitives()), ExecutorMemory.root(),
                    hadoop, name, largest, p.modelCount(), p.settings().hasBase(), p.companionSlots());
                 ChunkSink sink = ChunkSink.open(target, hadoop, name);
                 Fp8Buffers fp8 = new Fp8Buffers()) {
                ChunkKernels kernels = loader.kernels();
                // Chunks whose kernels are queued but whose bytes are not written yet: on a GPU the
                // next chunk is read and copied up while the previous one computes.
                ArrayDeque<InFlight> inFlight = new ArrayDeque<>();
                while (it.hasNext()) {
                    ChunkPlan chunk = p.chunks()[it.next()];
                    TensorPlan tensor = p.tensors()[chunk.tensor()];
                    long outBytes = (long) chunk.count() * tensor.outDtype().byteSize();
                    Scales scales = tensor.outQuantization() instanceof OutputQuantization.Weight w
                            ? new Scales(w, p.tensors()[w.scalesTensor()],
                            p.chunks()[firstChunk[w.scalesTensor()] + chunk.ordinal()]) : null;
                    // A retried task may find chunks its failed attempt finished; a resumed run, those of the killed run.
                    if (attempt > 0 || recorded.get(chunk.index())) {
                        Optional<ChunkReport> done = verified(manifest, sink, tensor, chunk, outBytes);
                        Optional<ChunkReport> scalesDone = scales == null ? Optional.empty()
                                : verified(manifest, sink, scales.tensor(), scales.chunk(), scales.bytes());
                        if (done.isPresent() && (scales == null || scalesDone.isPresent())) {
                            reports.add(done.get().reusedBy(attempt));
                            scalesDone.ifPresent(r -> reports.add(r.reusedBy(attempt)));
                            progress.chunks().add(scales == null ? 1 : 2);
                            continue;
                        }
                    }
                    long readBefore = loader.bytesRead();
                    MergeMethod method = p.methodOf(tensor);
                    ChunkMetrics metrics = new ChunkMetrics(p.modelCount());
                    try {
                        loader.load(tensor, chunk, null);
                        // A single-chunk tensor's statistics rounds run here, on the chunk already decoded.
                        StatisticsResult tensorStats = LocalStatistics.isLocal(method, tensor, chunk)
                                ? local.compute(method, p, tensor, chunk, kernels) : stats;
                        method.merge(kernels, tensor, chunk.start(), chunk.count(),
                                tensorStats.view(tensor.index(), chunk.index()), p.settings(), metrics);
                        // FP8 output is quantized on the host from the float32 merge, whatever the backend.
                        inFlight.add(new InFlight(chunk, tensor, outBytes, metrics, loader.nonFinite(), scales,
                                kernels.encodeOut(scales == null ? tensor.outDtype() : Dtype.F32, chunk.count())));
                    } catch (RuntimeException e) {
                        throw new ChunkFailedException(tensor.name(), chunk.start(), chunk.count(), e);
                    }
                    progress.bytesRead().add(loader.bytesRead() - readBefore);
                    if (inFlight.size() >= kernels.inFlightLimit()) {
                        reports.addAll(finish(inFlight.poll(), sink, fp8, manifest, name, attempt, kernels.backend(),
                                progress));
                    }
                }
                while (!inFlight.isEmpty()) {
                    reports.addAll(finish(inFlight.poll(), sink, fp8, manifest, name, attempt, kernels.backend(),
                            progress));
                }
            }
            return reports.iterator();
        }).collect();
    }

    /** A chunk whose merge is queued on the task's kernels; {@code scales} when it is written as FP8. */
    private record InFlight(ChunkPlan chunk, TensorPlan tensor, long outBytes, ChunkMetrics metrics,
                            long[] nonFiniteIn, Scales scales, ChunkKernels.PendingChunk pending) {
    }

    /** The block scales an FP8 weight's chunk writes: its grid rows' chunk of the scales tensor. */
    private record Scales(OutputQuantization.Weight weight, TensorPlan tensor, ChunkPlan chunk) {
        long bytes() {
            return (long) chunk.count() * tensor.outDtype().byteSize();
        }
    }

    /** Waits for the chunk's bytes, writes them (and its scales), and records them in the manifest. */
    private static List<ChunkReport> finish(InFlight f, ChunkSink sink, Fp8Buffers fp8, ChunkManifest manifest,
                                            String task, int attempt, String kernels, Progress progress) {
        try {
            long writtenBefore = sink.bytesWritten();
            ArrowBuf encoded = f.pending().await();
            ChunkMetrics m = f.metrics();
            // Counted on the merged float32 values before FP8 quantization, which would saturate an infinity.
            long nonFiniteOut = NonFinite.count(encoded, f.scales() == null ? f.tensor().outDtype() : Dtype.F32,
                    f.chunk().count());
            ChunkReport report = new ChunkReport(f.chunk().index(), f.tensor().index(), m.kept, m.deltaSquares,
                    m.deltaDots, m.signConflicts, m.elements, m.iterations, attempt, false, kernels, f.nonFiniteIn(), nonFiniteOut);
            List<ChunkReport> reports = new ArrayList<>(2);
            if (f.scales() == null) {
                write(sink, manifest, task, f.tensor(), f.chunk(), encoded, f.outBytes(), report);
            } else {
                Scales s = f.scales();
                int gridCols = s.weight().grid().gridCols();
                ArrowBuf bytes = fp8.bytes(f.outBytes());
                ArrowBuf scales = fp8.scales(s.bytes());
                Fp8BlockQuantizer.quantize(s.weight().grid(), s.chunk().start() / gridCols,
                        s.chunk().count() / gridCols, encoded, f.tensor().outDtype(), s.tensor().outDtype(), bytes,
                        scales);
                write(sink, manifest, task, f.tensor(), f.chunk(), bytes, f.outBytes(), report);
                int models = m.kept.length;
                ChunkReport scalesReport = new ChunkReport(s.chunk().index(), s.tensor().index(), new long[models],
                        new double[models], new double[ChunkMetrics.pairs(models)], 0, 0, 0, attempt, false, kernels, new long[models + 1], 0);
                write(sink, manifest, task, s.tensor(), s.chunk(), scales, s.bytes(), scalesReport);
                reports.add(scalesReport);
            }
            reports.add(0, report);
            progress.chunks().add(reports.size());
            progress.bytesWritten().add(sink.bytesWritten() - writtenBefore);
            return reports;
        } catch (RuntimeException e) {
            throw new ChunkFailedException(f.tensor().name(), f.chunk().start(), f.chunk().count(), e);
        }
    }

    /**
     * A task's buffers for FP8 output (the bytes and the block scales of one chunk), taken from the
     * executor's Arrow memory on the first FP8 chunk and grown only when a larger one comes.
     */
    private static final class Fp8Buffers implements AutoCloseable {
        private ArrowBuf bytes;
        private ArrowBuf scales;

        ArrowBuf bytes(long length) {
            bytes = atLeast(bytes, length);
            return bytes;
        }

        ArrowBuf scales(long length) {
            scales = atLeast(scales, length);
            return scales;
        }

        private static ArrowBuf atLeast(ArrowBuf buf, long length) {
            if (buf != null && buf.capacity() >= length) {
                return buf;
            }
            if (buf != null) {
                buf.close();
            }
            return ExecutorMemory.root().buffer(Math.max(1, length));
        }

        @Override
        public void close() {
            for (ArrowBuf b : new ArrowBuf[]{bytes, scales}) {
                if (b != null) {
                    b.close();
                }
            }
        }
    }

    private static void write(ChunkSink sink, ChunkManifest manifest, String task, TensorPlan tensor, ChunkPlan chunk,
                              ArrowBuf bytes, long length, ChunkReport report) {
        sink.write(tensor, chunk, bytes, length);
        manifest.record(new ChunkManifest.Entry(chunk.index(), length, Checksums.crc32c(bytes, length),
                report.toBytes()), task);
    }

    private static Optional<ChunkReport> verified(ChunkManifest manifest, ChunkSink sink, TensorPlan tensor,
                                                  ChunkPlan chunk, long outBytes) {
        Optional<ChunkManifest.Entry> entry = manifest.read(chunk.index());
        if (entry.isEmpty() || entry.get().length() != outBytes) {
            return Optional.empty();
        }
        OptionalInt stored = sink.storedChecksum(tensor, chunk, outBytes);
        if (stored.isEmpty() || stored.getAsInt() != entry.get().crc32c()) {
            return Optional.empty();
        }
        ChunkReport report;
        try {
            report = ChunkReport.fromBytes(entry.get().report());
        } catch (java.io.UncheckedIOException e) {
            return Optional.empty(); // recorded by an older version: merged again
        }
        return report.chunk() == chunk.index() ? Optional.of(report) : Optional.empty();
    }
}
