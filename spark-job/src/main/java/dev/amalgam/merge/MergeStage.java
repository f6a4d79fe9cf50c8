package dev.amalgam.merge;

import dev.amalgam.method.MergeMethod;
import dev.amalgam.method.MergeMethods;
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
        List<Integer> chunks = IntStream.range(0, plan.chunks().length).boxed().toList();
        if (chunks.isEmpty()) {
            return List.of();
        }
        int slices = Math.max(1, Math.min(partitions, chunks.size()));
        return sc.parallelize(new ArrayList<>(chunks), slices).mapPartitions(it -> {
            MergePlan p = planB.value();
            StatisticsResult stats = statsB.value();
            MergeMethod method = MergeMethods.byName(p.settings().method()).orElseThrow();
            Configuration hadoop = ExecutorHadoop.configuration();
            TaskContext task = TaskContext.get();
            String name = "merge-task-" + (task == null ? 0 : task.taskAttemptId());
            int attempt = task == null ? 0 : task.attemptNumber();
            ChunkManifest manifest = ChunkManifest.open(target.stagingDir(), hadoop);
            LocalStatistics local = new LocalStatistics();
            List<ChunkReport> reports = new ArrayList<>();
            try (ChunkLoader loader = new ChunkLoader(ExecutorKernels.forTask(p.primitives()), ExecutorMemory.root(),
                    hadoop, name, largest, p.modelCount(), p.settings().hasBase());
                 ChunkSink sink = ChunkSink.open(target, hadoop, name)) {
                ChunkKernels kernels = loader.kernels();
                // Chunks whose kernels are queued but whose bytes are not written yet: on a GPU the
                // next chunk is read and copied up while the previous one computes.
                ArrayDeque<InFlight> inFlight = new ArrayDeque<>();
                while (it.hasNext()) {
                    ChunkPlan chunk = p.chunks()[it.next()];
                    TensorPlan tensor = p.tensors()[chunk.tensor()];
                    long outBytes = (long) chunk.count() * tensor.outDtype().byteSize();
                    // A retried task may find chunks its failed attempt finished; a resumed run, those of the killed run.
                    if (attempt > 0 || recorded.get(chunk.index())) {
                        Optional<ChunkReport> done = verified(manifest, sink, tensor, chunk, outBytes);
                        if (done.isPresent()) {
                            reports.add(done.get().reusedBy(attempt));
                            progress.chunks().add(1);
                            continue;
                        }
                    }
                    long readBefore = loader.bytesRead();
                    ChunkMetrics metrics = new ChunkMetrics(p.modelCount());
                    try {
                        loader.load(tensor, chunk, null);
                        // A single-chunk tensor's statistics rounds run here, on the chunk already decoded.
                        StatisticsResult tensorStats = LocalStatistics.isLocal(tensor, chunk)
                                ? local.compute(method, p, tensor, chunk, kernels) : stats;
                        method.merge(kernels, tensor, chunk.start(), chunk.count(),
                                tensorStats.view(tensor.index(), chunk.index()), p.settings(), metrics);
                        inFlight.add(new InFlight(chunk, tensor, outBytes, metrics,
                                kernels.encodeOut(tensor.outDtype(), chunk.count())));
                    } catch (RuntimeException e) {
                        throw new ChunkFailedException(tensor.name(), chunk.start(), chunk.count(), e);
                    }
                    progress.bytesRead().add(loader.bytesRead() - readBefore);
                    if (inFlight.size() >= kernels.inFlightLimit()) {
                        reports.add(finish(inFlight.poll(), sink, manifest, name, attempt, kernels.backend(), progress));
                    }
                }
                while (!inFlight.isEmpty()) {
                    reports.add(finish(inFlight.poll(), sink, manifest, name, attempt, kernels.backend(), progress));
                }
            }
            return reports.iterator();
        }).collect();
    }

    /** A chunk whose merge is queued on the task's kernels. */
    private record InFlight(ChunkPlan chunk, TensorPlan tensor, long outBytes, ChunkMetrics metrics,
                            ChunkKernels.PendingChunk pending) {
    }

    /** Waits for the chunk's bytes, writes them, and records the chunk in the manifest. */
    private static ChunkReport finish(InFlight f, ChunkSink sink, ChunkManifest manifest, String task, int attempt,
                                      String kernels, Progress progress) {
        try {
            long writtenBefore = sink.bytesWritten();
            ArrowBuf encoded = f.pending().await();
            sink.write(f.tensor(), f.chunk(), encoded, f.outBytes());
            ChunkMetrics m = f.metrics();
            ChunkReport report = new ChunkReport(f.chunk().index(), f.tensor().index(), m.kept, m.deltaSquares,
                    m.signConflicts, m.elements, m.iterations, attempt, false, kernels);
            manifest.record(new ChunkManifest.Entry(f.chunk().index(), f.outBytes(),
                    Checksums.crc32c(encoded, f.outBytes()), report.toBytes()), task);
            progress.chunks().add(1);
            progress.bytesWritten().add(sink.bytesWritten() - writtenBefore);
            return report;
        } catch (RuntimeException e) {
            throw new ChunkFailedException(f.tensor().name(), f.chunk().start(), f.chunk().count(), e);
        }
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
        ChunkReport report = ChunkReport.fromBytes(entry.get().report());
        return report.chunk() == chunk.index() ? Optional.of(report) : Optional.empty();
    }
}
