package dev.amalgam.stats;

import dev.amalgam.executor.ChunkFailedException;
import dev.amalgam.executor.ChunkLoader;
import dev.amalgam.executor.ExecutorHadoop;
import dev.amalgam.executor.ExecutorKernels;
import dev.amalgam.executor.ExecutorMemory;
import dev.amalgam.kernels.MagnitudeHistogram;
import dev.amalgam.kernels.Operand;
import dev.amalgam.method.MergeMethod;
import dev.amalgam.method.MergeMethods;
import dev.amalgam.method.OrderStatistic;
import dev.amalgam.method.Reduction;
import dev.amalgam.method.StatisticRequest;
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
 * The statistics stage: runs the rounds of statistics every method asks of its tensors
 * ({@link MergeMethod#statistics}), each round as distributed passes over the chunks of the
 * tensors that asked, reduced per tensor, never gathering a tensor anywhere. A round's requests
 * may depend on the results of the rounds before (a rescale needs the keep rule, which needs
 * the order statistics). Tensors that fit in one chunk run the same rounds inside their merge
 * task ({@link LocalStatistics}) and are skipped here.
 *
 * <p>A round reads its chunks once for its sums, dot products, counts and the first step of its
 * order statistics, and again only for order statistics:
 * <ol>
 *   <li>high-16-bit histograms of |operand|: the bucket of each requested order position, together
 *       with every exact partial sum the round asked for;</li>
 *   <li>low-16-bit histograms inside that bucket: the exact value, and how many entries are
 *       below and equal to it;</li>
 *   <li>only where equal values straddle a position: per-chunk counts of entries equal to the
 *       value, turned into prefix sums so each chunk knows the equal-rank of its entries.</li>
 * </ol>
 */
public final class StatisticsStage {
    /** Rounds a method may ask for; iterative methods iterate on the driver over one round's results. */
    public static final int MAX_ROUNDS = 8;

    private StatisticsStage() {
    }

    /** Everything the passes of one round share. */
    private record Pass(JavaSparkContext sc, Broadcast<MergePlan> plan, Broadcast<StatisticsResult> known,
                        int round, int partitions, int maxChunk, LongAccumulator bytesRead) {
    }

    /** Fails loudly when a method keeps asking: rounds are bounded. */
    static void checkRound(MergeMethod method, TensorPlan tensor, int round) {
        if (round >= MAX_ROUNDS) {
            throw new IllegalStateException(method.name() + " asked for more than " + MAX_ROUNDS
                    + " statistics rounds on tensor '" + tensor.name() + "'");
        }
    }

    /** The operand whose |values| an order request selects from: a delta or a derived quantity. */
    static Operand ordered(StatisticRequest r) {
        if (r.a() instanceof Operand.Delta || r.a() instanceof Operand.Variance || r.a() instanceof Operand.Importance) {
            return r.a();
        }
        throw new IllegalArgumentException("order statistics of " + r.a() + " are not supported; order a delta, "
                + "a variance or an importance");
    }

    /** Runs every round; {@code bytesRead} counts the input bytes the rounds read. */
    public static StatisticsResult run(JavaSparkContext sc, Broadcast<MergePlan> planBroadcast, MergePlan plan,
                                       MergeMethod method, int partitions, LongAccumulator bytesRead) {
        int maxChunk = 0;
        boolean[] multiChunk = new boolean[plan.tensors().length];
        for (ChunkPlan c : plan.chunks()) {
            maxChunk = Math.max(maxChunk, c.count());
            multiChunk[c.tensor()] |= !LocalStatistics.isLocal(plan.tensors()[c.tensor()], c);
        }
        StatisticsResult result = StatisticsResult.empty();
        for (int round = 0; ; round++) {
            boolean[] asking = new boolean[plan.tensors().length];
            boolean any = false;
            for (TensorPlan t : plan.tensors()) {
                if (multiChunk[t.index()] && !method.statistics(t, round, result.view(t.index(), -1)).isEmpty()) {
                    checkRound(method, t, round);
                    asking[t.index()] = true;
                    any = true;
                }
            }
            if (!any) {
                return result;
            }
            List<Integer> chunks = new ArrayList<>();
            for (ChunkPlan c : plan.chunks()) {
                if (asking[c.tensor()]) {
                    chunks.add(c.index());
                }
            }
            Broadcast<StatisticsResult> known = sc.broadcast(result);
            Pass pass = new Pass(sc, planBroadcast, known, round, partitions, maxChunk, bytesRead);
            StatisticsResult found = firstPass(pass, chunks);
            if (!found.orders().isEmpty()) {
                // found.orders holds (bucket, below) per request so far; the low pass makes them exact.
                HashMap<StatisticKey, OrderStatistic> exact = exactValues(pass, chunks, found.orders());
                found.orders().clear();
                found.orders().putAll(exact);
                found.equalsBefore().putAll(equalPrefixes(pass, plan, exact));
            }
            known.unpersist();
            result.putAll(found);
        }
    }

    /** This round's requests for a tensor, as the driver and every executor see them. */
    private static List<StatisticRequest> requests(MergeMethod method, TensorPlan tensor, int round,
                                                   StatisticsResult known, int chunk) {
        return method.statistics(tensor, round, known.view(tensor.index(), chunk));
    }

    /**
     * Pass 1: the round's exact sums, dot products and counts, and per order request the high
     * bucket holding its position and the count below it (kept as a provisional OrderStatistic
     * of valueBits = bucket, below, equal = -1).
     */
    private static StatisticsResult firstPass(Pass pass, List<Integer> chunks) {
        Broadcast<MergePlan> planB = pass.plan();
        Broadcast<StatisticsResult> knownB = pass.known();
        int round = pass.round();
        int maxChunk = pass.maxChunk();
        LongAccumulator read = pass.bytesRead();
        List<Tuple2<StatisticKey, Object>> reduced = pass.sc().parallelize(chunks, slices(pass, chunks))
                .mapPartitionsToPair(it -> {
                    MergePlan plan = planB.value();
                    MergeMethod method = MergeMethods.byName(plan.settings().method()).orElseThrow();
                    StatisticsResult known = knownB.value();
                    Map<StatisticKey, Object> partials = new HashMap<>();
                    java.util.Set<StatisticKey> seen = new java.util.HashSet<>();
                    forEachChunk(plan, it, maxChunk, read, method, known, round, (tensor, chunk, loader, requests) -> {
                        Map<StatisticRequest, Partial> sums = new HashMap<>();
                        ChunkSums.add(loader.kernels(), method, plan, tensor, chunk, requests,
                                known.view(tensor.index(), chunk.index()), sums);
                        sums.forEach((r, p) -> partials.merge(new StatisticKey(tensor.index(), r), p,
                                StatisticsStage::combine));
                        for (StatisticRequest r : requests) {
                            if (r.reduction() != Reduction.ORDER) {
                                continue;
                            }
                            // Requests on one operand share its high histogram, filed under the operand.
                            StatisticKey operandKey = new StatisticKey(tensor.index(), StatisticRequest.order(r.a(), 0));
                            if (!seen.add(operandKey)) {
                                continue;
                            }
                            long[] h = new long[MagnitudeHistogram.BINS];
                            loader.kernels().histogramHigh(ordered(r), chunk.count(), h);
                            partials.merge(operandKey, h, StatisticsStage::combine);
                        }
                        seen.clear();
                    });
                    List<Tuple2<StatisticKey, Object>> out = new ArrayList<>();
                    partials.forEach((k, v) -> out.add(new Tuple2<>(k, v)));
                    return out.iterator();
                })
                .reduceByKey(StatisticsStage::combine)
                .flatMapToPair(entry -> {
                    StatisticKey key = entry._1();
                    List<Tuple2<StatisticKey, Object>> out = new ArrayList<>();
                    if (entry._2() instanceof Partial p) {
                        out.add(new Tuple2<>(key, p.value()));
                        return out.iterator();
                    }
                    MergePlan plan = planB.value();
                    MergeMethod method = MergeMethods.byName(plan.settings().method()).orElseThrow();
                    TensorPlan tensor = plan.tensors()[key.owner()];
                    for (StatisticRequest r : requests(method, tensor, round, knownB.value(), -1)) {
                        if (r.reduction() == Reduction.ORDER && r.a().equals(key.request().a())) {
                            MagnitudeHistogram.Selection s = MagnitudeHistogram.select((long[]) entry._2(), r.position());
                            out.add(new Tuple2<>(new StatisticKey(key.owner(), r), new long[]{s.bucket(), s.below()}));
                        }
                    }
                    return out.iterator();
                })
                .collect();
        StatisticsResult found = StatisticsResult.empty();
        for (Tuple2<StatisticKey, Object> t : reduced) {
            if (t._2() instanceof Double f) {
                found.values().put(t._1(), f);
            } else {
                long[] s = (long[]) t._2();
                found.orders().put(t._1(), new OrderStatistic((int) s[0], s[1], -1));
            }
        }
        return found;
    }

    private static Object combine(Object a, Object b) {
        if (a instanceof Partial p) {
            return p.merge((Partial) b);
        }
        long[] x = (long[]) a;
        long[] y = (long[]) b;
        for (int i = 0; i < x.length; i++) {
            x[i] += y[i];
        }
        return x;
    }

    /** Pass 2: the exact value at each position, from low-16-bit histograms inside its bucket. */
    private static HashMap<StatisticKey, OrderStatistic> exactValues(Pass pass, List<Integer> chunks,
                                                                     HashMap<StatisticKey, OrderStatistic> buckets) {
        Broadcast<MergePlan> planB = pass.plan();
        Broadcast<StatisticsResult> knownB = pass.known();
        Broadcast<HashMap<StatisticKey, OrderStatistic>> bucketsB = pass.sc().broadcast(buckets);
        int round = pass.round();
        int maxChunk = pass.maxChunk();
        LongAccumulator read = pass.bytesRead();
        List<Tuple2<StatisticKey, OrderStatistic>> values = pass.sc().parallelize(chunks, slices(pass, chunks))
                .mapPartitionsToPair(it -> {
                    MergePlan plan = planB.value();
                    MergeMethod method = MergeMethods.byName(plan.settings().method()).orElseThrow();
                    HashMap<StatisticKey, OrderStatistic> bucketOf = bucketsB.value();
                    Map<StatisticKey, long[]> histograms = new HashMap<>();
                    forEachChunk(plan, it, maxChunk, read, method, knownB.value(), round, (tensor, chunk, loader, requests) -> {
                        for (StatisticRequest r : requests) {
                            StatisticKey key = new StatisticKey(tensor.index(), r);
                            OrderStatistic bucket = bucketOf.get(key);
                            if (bucket == null) {
                                continue;
                            }
                            long[] h = histograms.computeIfAbsent(key, k -> new long[MagnitudeHistogram.BINS]);
                            loader.kernels().histogramLow(ordered(r), chunk.count(), bucket.valueBits(), h);
                        }
                    }, true);
                    List<Tuple2<StatisticKey, long[]>> out = new ArrayList<>();
                    histograms.forEach((k, v) -> out.add(new Tuple2<>(k, v)));
                    return out.iterator();
                })
                .reduceByKey((a, b) -> (long[]) combine(a, b))
                .mapToPair(entry -> {
                    StatisticKey key = entry._1();
                    OrderStatistic bucket = bucketsB.value().get(key);
                    MagnitudeHistogram.Selection s = MagnitudeHistogram.select(entry._2(),
                            key.request().position() - bucket.below());
                    return new Tuple2<>(key, new OrderStatistic((bucket.valueBits() << 16) | s.bucket(),
                            bucket.below() + s.below(), s.inBucket()));
                })
                .collect();
        bucketsB.unpersist();
        HashMap<StatisticKey, OrderStatistic> orders = new HashMap<>();
        for (Tuple2<StatisticKey, OrderStatistic> v : values) {
            orders.put(v._1(), v._2());
        }
        return orders;
    }

    /**
     * Pass 3: where a position falls inside a run of equal magnitudes, each chunk needs to know
     * how many of those equal entries precede it in the tensor (ties go by lower flat index).
     */
    private static Map<StatisticKey, Long> equalPrefixes(Pass pass, MergePlan plan,
                                                         HashMap<StatisticKey, OrderStatistic> orders) {
        HashMap<StatisticKey, Integer> split = new HashMap<>();
        for (Map.Entry<StatisticKey, OrderStatistic> e : orders.entrySet()) {
            if (e.getKey().request().position() - e.getValue().below() > 0) {
                split.put(e.getKey(), e.getValue().valueBits());
            }
        }
        Map<StatisticKey, Long> prefixes = new HashMap<>();
        if (split.isEmpty()) {
            return prefixes;
        }
        boolean[] splitTensor = new boolean[plan.tensors().length];
        split.keySet().forEach(k -> splitTensor[k.owner()] = true);
        List<Integer> chunks = new ArrayList<>();
        for (ChunkPlan c : plan.chunks()) {
            if (splitTensor[c.tensor()]) {
                chunks.add(c.index());
            }
        }
        Broadcast<MergePlan> planB = pass.plan();
        Broadcast<StatisticsResult> knownB = pass.known();
        Broadcast<HashMap<StatisticKey, Integer>> splitB = pass.sc().broadcast(split);
        int round = pass.round();
        int maxChunk = pass.maxChunk();
        LongAccumulator read = pass.bytesRead();
        List<Tuple2<StatisticKey, Long>> counts = pass.sc().parallelize(chunks, slices(pass, chunks))
                .mapPartitions(it -> {
                    MergePlan p = planB.value();
                    MergeMethod method = MergeMethods.byName(p.settings().method()).orElseThrow();
                    HashMap<StatisticKey, Integer> valueOf = splitB.value();
                    List<Tuple2<StatisticKey, Long>> out = new ArrayList<>();
                    forEachChunk(p, it, maxChunk, read, method, knownB.value(), round, (tensor, chunk, loader, requests) -> {
                        for (StatisticRequest r : requests) {
                            Integer bits = valueOf.get(new StatisticKey(tensor.index(), r));
                            if (bits != null) {
                                long equal = loader.kernels().countEqual(ordered(r), chunk.count(), bits);
                                out.add(new Tuple2<>(new StatisticKey(chunk.index(), r), equal));
                            }
                        }
                    }, true);
                    return out.iterator();
                })
                .collect();
        splitB.unpersist();
        Map<StatisticKey, Long> countOf = new HashMap<>();
        for (Tuple2<StatisticKey, Long> c : counts) {
            countOf.put(c._1(), c._2());
        }
        // Chunks are planned in tensor order with rising ordinals, so one walk builds every prefix.
        Map<StatisticKey, Long> running = new HashMap<>();
        for (ChunkPlan c : plan.chunks()) {
            if (!splitTensor[c.tensor()]) {
                continue;
            }
            for (StatisticKey tensorKey : split.keySet()) {
                if (tensorKey.owner() != c.tensor()) {
                    continue;
                }
                StatisticKey chunkKey = new StatisticKey(c.index(), tensorKey.request());
                long before = running.getOrDefault(tensorKey, 0L);
                prefixes.put(chunkKey, before);
                running.put(tensorKey, before + countOf.getOrDefault(chunkKey, 0L));
            }
        }
        return prefixes;
    }

    /** Work on one decoded chunk with the round's requests for its tensor. */
    private interface ChunkVisitor {
        void visit(TensorPlan tensor, ChunkPlan chunk, ChunkLoader loader, List<StatisticRequest> requests);
    }

    private static void forEachChunk(MergePlan plan, Iterator<Integer> chunks, int maxChunk, LongAccumulator read,
                                     MergeMethod method, StatisticsResult known, int round, ChunkVisitor visitor) {
        forEachChunk(plan, chunks, maxChunk, read, method, known, round, visitor, false);
    }

    /** @param ordersOnly load only what the round's order requests read (the passes after the first) */
    private static void forEachChunk(MergePlan plan, Iterator<Integer> chunks, int maxChunk, LongAccumulator read,
                                     MergeMethod method, StatisticsResult known, int round, ChunkVisitor visitor,
                                     boolean ordersOnly) {
        try (ChunkLoader loader = loader(plan, maxChunk)) {
            while (chunks.hasNext()) {
                ChunkPlan chunk = plan.chunks()[chunks.next()];
                TensorPlan tensor = plan.tensors()[chunk.tensor()];
                List<StatisticRequest> requests = requests(method, tensor, round, known, chunk.index());
                List<StatisticRequest> loaded = ordersOnly
                        ? requests.stream().filter(r -> r.reduction() == Reduction.ORDER).toList() : requests;
                try {
                    loader.load(tensor, chunk, ChunkSums.modelsNeeded(plan.modelCount(), loaded));
                    visitor.visit(tensor, chunk, loader, requests);
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
        return new ChunkLoader(ExecutorKernels.forTask(plan.primitives()), ExecutorMemory.root(),
                ExecutorHadoop.configuration(), name, maxChunk, plan.modelCount(), plan.settings().hasBase());
    }

    private static int slices(Pass pass, List<Integer> chunks) {
        return Math.max(1, Math.min(pass.partitions(), chunks.size()));
    }
}
