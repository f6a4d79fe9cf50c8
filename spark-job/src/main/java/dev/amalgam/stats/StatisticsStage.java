package dev.amalgam.stats;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ExactSum;
import dev.amalgam.kernels.KeepRule;
import dev.amalgam.kernels.MagnitudeHistogram;
import dev.amalgam.merge.ChunkFailedException;
import dev.amalgam.merge.ChunkLoader;
import dev.amalgam.merge.ExecutorHadoop;
import dev.amalgam.merge.ExecutorKernels;
import dev.amalgam.merge.ExecutorMemory;
import dev.amalgam.merge.MergeMethod;
import dev.amalgam.merge.MergeMethods;
import dev.amalgam.merge.OrderStatistic;
import dev.amalgam.merge.Sparsifier;
import dev.amalgam.plan.ChunkPlan;
import dev.amalgam.plan.MergePlan;
import dev.amalgam.plan.TensorPlan;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.util.LongAccumulator;
import scala.Tuple2;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * The statistics stage: distributed passes over the chunks of the multi-chunk tensors that need
 * them, each reduced per tensor and model, never gathering a tensor anywhere. (Single-chunk
 * tensors get the same statistics from {@link LocalStatistics} inside their merge task.)
 *
 * <ol>
 *   <li>High-16-bit histograms of |delta|: the bucket of each requested order position.</li>
 *   <li>Low-16-bit histograms inside that bucket: the exact value, and how many entries are
 *       below and equal to it.</li>
 *   <li>Only where equal values straddle a position: per-chunk counts of entries equal to the
 *       value, turned into prefix sums so each chunk knows the equal-rank of its entries.</li>
 *   <li>Only with rescale: exact L1 sums of each delta before and after sparsification.</li>
 * </ol>
 */
public final class StatisticsStage {
    private StatisticsStage() {
    }

    /** Everything the passes share. */
    private record Pass(JavaSparkContext sc, Broadcast<MergePlan> plan, int partitions, int maxChunk,
                        LongAccumulator bytesRead) {
    }

    /** Runs the rounds the method needs; {@code bytesRead} counts the input bytes the rounds read. */
    public static StatisticsResult run(JavaSparkContext sc, Broadcast<MergePlan> planBroadcast, MergePlan plan,
                                       MergeMethod method, int partitions, LongAccumulator bytesRead) {
        int maxChunk = 0;
        for (ChunkPlan c : plan.chunks()) {
            maxChunk = Math.max(maxChunk, c.count());
        }
        Pass pass = new Pass(sc, planBroadcast, partitions, maxChunk, bytesRead);
        int m = plan.modelCount();
        List<Integer> orderChunks = new ArrayList<>();
        List<Integer> rescaleChunks = new ArrayList<>();
        boolean[] orderTensor = new boolean[plan.tensors().length];
        boolean[] rescaleTensor = new boolean[plan.tensors().length];
        for (TensorPlan t : plan.tensors()) {
            for (int i = 0; i < m; i++) {
                long[] p = method.orderPositions(t, i);
                orderTensor[t.index()] |= p[0] != Sparsifier.UNUSED || p[1] != Sparsifier.UNUSED;
                rescaleTensor[t.index()] |= method.needsRescale(t, i, plan.settings());
            }
        }
        for (ChunkPlan c : plan.chunks()) {
            if (LocalStatistics.isLocal(plan.tensors()[c.tensor()], c)) {
                // A single-chunk tensor gets its statistics inside its merge task.
                continue;
            }
            if (orderTensor[c.tensor()]) {
                orderChunks.add(c.index());
            }
            if (rescaleTensor[c.tensor()]) {
                rescaleChunks.add(c.index());
            }
        }
        StatisticsResult result = StatisticsResult.empty();
        if (!orderChunks.isEmpty()) {
            HashMap<Long, long[]> buckets = highBuckets(pass, orderChunks);
            result.orders().putAll(exactValues(pass, orderChunks, buckets));
            result.equalsBefore().putAll(equalPrefixes(pass, plan, method, result.orders()));
        }
        if (!rescaleChunks.isEmpty()) {
            Broadcast<StatisticsResult> partial = sc.broadcast(result);
            result.scales().putAll(rescaleFactors(pass, rescaleChunks, partial));
            partial.unpersist();
        }
        return result;
    }

    /** Round 1: per (tensor, model, slot), the high bucket holding the position and the count below it. */
    private static HashMap<Long, long[]> highBuckets(Pass pass, List<Integer> chunks) {
        Broadcast<MergePlan> planB = pass.plan();
        int maxChunk = pass.maxChunk();
        LongAccumulator read = pass.bytesRead();
        List<long[]> selected = pass.sc().parallelize(chunks, slices(pass, chunks))
                .mapPartitionsToPair(it -> {
                    MergePlan plan = planB.value();
                    MergeMethod method = MergeMethods.byName(plan.settings().method()).orElseThrow();
                    Map<Long, long[]> histograms = new HashMap<>();
                    forEachDelta(plan, method, it, maxChunk, read, (tensor, model, kernels, count, positions) -> {
                        long[] h = histograms.computeIfAbsent(StatisticKeys.of(tensor.index(), model, 0),
                                k -> new long[MagnitudeHistogram.BINS]);
                        kernels.histogramHigh(model, count, h);
                    });
                    return tuples(histograms);
                })
                .reduceByKey(StatisticsStage::addInto)
                .flatMap(entry -> {
                    MergePlan plan = planB.value();
                    MergeMethod method = MergeMethods.byName(plan.settings().method()).orElseThrow();
                    long key = entry._1();
                    TensorPlan tensor = plan.tensors()[StatisticKeys.tensorOrChunk(key)];
                    int model = StatisticKeys.model(key);
                    long[] positions = method.orderPositions(tensor, model);
                    List<long[]> out = new ArrayList<>();
                    for (int slot = 0; slot < 2; slot++) {
                        if (positions[slot] != Sparsifier.UNUSED) {
                            MagnitudeHistogram.Selection s = MagnitudeHistogram.select(entry._2(), positions[slot]);
                            out.add(new long[]{StatisticKeys.of(tensor.index(), model, slot), s.bucket(), s.below()});
                        }
                    }
                    return out.iterator();
                })
                .collect();
        HashMap<Long, long[]> buckets = new HashMap<>();
        for (long[] s : selected) {
            buckets.put(s[0], new long[]{s[1], s[2]});
        }
        return buckets;
    }

    /** Round 2: the exact value at each position, from low-16-bit histograms inside its bucket. */
    private static Map<Long, OrderStatistic> exactValues(Pass pass, List<Integer> chunks, HashMap<Long, long[]> buckets) {
        Broadcast<MergePlan> planB = pass.plan();
        Broadcast<HashMap<Long, long[]>> bucketsB = pass.sc().broadcast(buckets);
        int maxChunk = pass.maxChunk();
        LongAccumulator read = pass.bytesRead();
        List<long[]> values = pass.sc().parallelize(chunks, slices(pass, chunks))
                .mapPartitionsToPair(it -> {
                    MergePlan plan = planB.value();
                    MergeMethod method = MergeMethods.byName(plan.settings().method()).orElseThrow();
                    HashMap<Long, long[]> bucketOf = bucketsB.value();
                    Map<Long, long[]> histograms = new HashMap<>();
                    forEachDelta(plan, method, it, maxChunk, read, (tensor, model, kernels, count, positions) -> {
                        for (int slot = 0; slot < 2; slot++) {
                            if (positions[slot] == Sparsifier.UNUSED) {
                                continue;
                            }
                            long key = StatisticKeys.of(tensor.index(), model, slot);
                            long[] h = histograms.computeIfAbsent(key, k -> new long[MagnitudeHistogram.BINS]);
                            kernels.histogramLow(model, count, (int) bucketOf.get(key)[0], h);
                        }
                    });
                    return tuples(histograms);
                })
                .reduceByKey(StatisticsStage::addInto)
                .map(entry -> {
                    MergePlan plan = planB.value();
                    MergeMethod method = MergeMethods.byName(plan.settings().method()).orElseThrow();
                    long key = entry._1();
                    long[] bucket = bucketsB.value().get(key);
                    TensorPlan tensor = plan.tensors()[StatisticKeys.tensorOrChunk(key)];
                    long position = method.orderPositions(tensor, StatisticKeys.model(key))[StatisticKeys.slot(key)];
                    MagnitudeHistogram.Selection s = MagnitudeHistogram.select(entry._2(), position - bucket[1]);
                    return new long[]{key, (bucket[0] << 16) | s.bucket(), bucket[1] + s.below(), s.inBucket()};
                })
                .collect();
        bucketsB.unpersist();
        Map<Long, OrderStatistic> orders = new HashMap<>();
        for (long[] v : values) {
            orders.put(v[0], new OrderStatistic((int) v[1], v[2], v[3]));
        }
        return orders;
    }

    /**
     * Round 3: where a position falls inside a run of equal magnitudes, each chunk needs to know
     * how many of those equal entries precede it in the tensor (ties go by lower flat index).
     */
    private static Map<Long, Long> equalPrefixes(Pass pass, MergePlan plan, MergeMethod method,
                                                 Map<Long, OrderStatistic> orders) {
        HashMap<Long, Integer> split = new HashMap<>();
        for (Map.Entry<Long, OrderStatistic> e : orders.entrySet()) {
            long key = e.getKey();
            TensorPlan tensor = plan.tensors()[StatisticKeys.tensorOrChunk(key)];
            long position = method.orderPositions(tensor, StatisticKeys.model(key))[StatisticKeys.slot(key)];
            if (position - e.getValue().below() > 0) {
                split.put(key, e.getValue().valueBits());
            }
        }
        Map<Long, Long> prefixes = new HashMap<>();
        if (split.isEmpty()) {
            return prefixes;
        }
        List<Integer> chunks = new ArrayList<>();
        for (ChunkPlan c : plan.chunks()) {
            for (int i = 0; i < plan.modelCount(); i++) {
                if (split.containsKey(StatisticKeys.of(c.tensor(), i, 0)) || split.containsKey(StatisticKeys.of(c.tensor(), i, 1))) {
                    chunks.add(c.index());
                    break;
                }
            }
        }
        Broadcast<MergePlan> planB = pass.plan();
        Broadcast<HashMap<Long, Integer>> splitB = pass.sc().broadcast(split);
        int maxChunk = pass.maxChunk();
        LongAccumulator read = pass.bytesRead();
        List<long[]> counts = pass.sc().parallelize(chunks, slices(pass, chunks))
                .mapPartitions(it -> {
                    MergePlan p = planB.value();
                    MergeMethod mm = MergeMethods.byName(p.settings().method()).orElseThrow();
                    HashMap<Long, Integer> valueOf = splitB.value();
                    List<long[]> out = new ArrayList<>();
                    forEachDeltaWithChunk(p, mm, it, maxChunk, read, (tensor, chunk, model, kernels, count, positions) -> {
                        for (int slot = 0; slot < 2; slot++) {
                            Integer bits = valueOf.get(StatisticKeys.of(tensor.index(), model, slot));
                            if (bits != null) {
                                long equal = kernels.countEqual(model, count, bits);
                                out.add(new long[]{StatisticKeys.of(chunk.index(), model, slot), equal});
                            }
                        }
                    });
                    return out.iterator();
                })
                .collect();
        splitB.unpersist();
        Map<Long, Long> countOf = new HashMap<>();
        for (long[] c : counts) {
            countOf.put(c[0], c[1]);
        }
        // Chunks are planned in tensor order with rising ordinals, so one walk builds every prefix.
        Map<Long, Long> running = new HashMap<>();
        for (ChunkPlan c : plan.chunks()) {
            for (int i = 0; i < plan.modelCount(); i++) {
                for (int slot = 0; slot < 2; slot++) {
                    Long equal = countOf.get(StatisticKeys.of(c.index(), i, slot));
                    if (equal != null) {
                        long tensorKey = StatisticKeys.of(c.tensor(), i, slot);
                        long before = running.getOrDefault(tensorKey, 0L);
                        prefixes.put(StatisticKeys.of(c.index(), i, slot), before);
                        running.put(tensorKey, before + equal);
                    }
                }
            }
        }
        return prefixes;
    }

    /** Round 4: {@code s = sum|d| / sum|kept d|}, from exact sums, 1 where either is under 1e-7. */
    private static Map<Long, Float> rescaleFactors(Pass pass, List<Integer> chunks, Broadcast<StatisticsResult> statsB) {
        Broadcast<MergePlan> planB = pass.plan();
        int maxChunk = pass.maxChunk();
        LongAccumulator read = pass.bytesRead();
        List<Tuple2<Long, Float>> scales = pass.sc().parallelize(chunks, slices(pass, chunks))
                .mapPartitionsToPair(it -> {
                    MergePlan plan = planB.value();
                    MergeMethod method = MergeMethods.byName(plan.settings().method()).orElseThrow();
                    StatisticsResult stats = statsB.value();
                    Map<Long, ExactSum[]> sums = new HashMap<>();
                    try (ChunkLoader loader = loader(plan, maxChunk)) {
                        while (it.hasNext()) {
                            ChunkPlan chunk = plan.chunks()[it.next()];
                            TensorPlan tensor = plan.tensors()[chunk.tensor()];
                            boolean[] needed = new boolean[plan.modelCount()];
                            for (int i = 0; i < needed.length; i++) {
                                needed[i] = method.needsRescale(tensor, i, plan.settings());
                            }
                            try {
                                loader.load(tensor, chunk, needed);
                                for (int i = 0; i < needed.length; i++) {
                                    if (!needed[i]) {
                                        continue;
                                    }
                                    ExactSum[] pair = sums.computeIfAbsent(StatisticKeys.of(tensor.index(), i, 0),
                                            k -> new ExactSum[]{new ExactSum(), new ExactSum()});
                                    KeepRule rule = stats.rule(method, plan, tensor, chunk, i);
                                    loader.kernels().magnitudeSums(i, chunk.count(), chunk.start(), rule, pair[0], pair[1]);
                                }
                            } catch (RuntimeException e) {
                                throw new ChunkFailedException(tensor.name(), chunk.start(), chunk.count(), e);
                            }
                        }
                        read.add(loader.bytesRead());
                    }
                    List<Tuple2<Long, ExactSum[]>> out = new ArrayList<>();
                    sums.forEach((k, v) -> out.add(new Tuple2<>(k, v)));
                    return out.iterator();
                })
                .reduceByKey((a, b) -> {
                    a[0].merge(b[0]);
                    a[1].merge(b[1]);
                    return a;
                })
                .mapToPair(entry -> new Tuple2<>(entry._1(), RescaleFactor.of(entry._2()[0], entry._2()[1])))
                .collect();
        Map<Long, Float> out = new HashMap<>();
        for (Tuple2<Long, Float> s : scales) {
            out.put(s._1(), s._2());
        }
        return out;
    }

    /** Work on the delta of one model in one chunk, for the models with order positions. */
    private interface DeltaVisitor {
        void visit(TensorPlan tensor, int model, ChunkKernels kernels, int count, long[] positions);
    }

    private interface ChunkDeltaVisitor {
        void visit(TensorPlan tensor, ChunkPlan chunk, int model, ChunkKernels kernels, int count, long[] positions);
    }

    private static void forEachDelta(MergePlan plan, MergeMethod method, Iterator<Integer> chunks, int maxChunk,
                                     LongAccumulator read, DeltaVisitor visitor) {
        forEachDeltaWithChunk(plan, method, chunks, maxChunk, read,
                (tensor, chunk, model, kernels, count, positions) -> visitor.visit(tensor, model, kernels, count, positions));
    }

    private static void forEachDeltaWithChunk(MergePlan plan, MergeMethod method, Iterator<Integer> chunks, int maxChunk,
                                              LongAccumulator read, ChunkDeltaVisitor visitor) {
        try (ChunkLoader loader = loader(plan, maxChunk)) {
            while (chunks.hasNext()) {
                ChunkPlan chunk = plan.chunks()[chunks.next()];
                TensorPlan tensor = plan.tensors()[chunk.tensor()];
                long[][] positions = new long[plan.modelCount()][];
                boolean[] needed = new boolean[plan.modelCount()];
                for (int i = 0; i < needed.length; i++) {
                    positions[i] = method.orderPositions(tensor, i);
                    needed[i] = positions[i][0] != Sparsifier.UNUSED || positions[i][1] != Sparsifier.UNUSED;
                }
                try {
                    loader.load(tensor, chunk, needed);
                    for (int i = 0; i < needed.length; i++) {
                        if (needed[i]) {
                            visitor.visit(tensor, chunk, i, loader.kernels(), chunk.count(), positions[i]);
                        }
                    }
                } catch (RuntimeException e) {
                    throw new ChunkFailedException(tensor.name(), chunk.start(), chunk.count(), e);
                }
            }
            read.add(loader.bytesRead());
        }
    }

    private static ChunkLoader loader(MergePlan plan, int maxChunk) {
        TaskContext task = TaskContext.get();
        String name = "statistics-task-" + (task == null ? 0 : task.taskAttemptId());
        boolean hasBase = plan.tensors().length > 0 && plan.tensors()[0].base() != null;
        return new ChunkLoader(ExecutorKernels.forTask(), ExecutorMemory.root(), ExecutorHadoop.configuration(), name,
                maxChunk, plan.modelCount(), hasBase);
    }

    private static Iterator<Tuple2<Long, long[]>> tuples(Map<Long, long[]> histograms) {
        List<Tuple2<Long, long[]>> out = new ArrayList<>();
        histograms.forEach((k, v) -> out.add(new Tuple2<>(k, v)));
        return out.iterator();
    }

    private static long[] addInto(long[] a, long[] b) {
        for (int i = 0; i < a.length; i++) {
            a[i] += b[i];
        }
        return a;
    }

    private static int slices(Pass pass, List<Integer> chunks) {
        return Math.max(1, Math.min(pass.partitions(), chunks.size()));
    }
}
