package dev.amalgam.stats;

import dev.amalgam.executor.SparkWorkNames;

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
import dev.amalgam.method.Scope;
import dev.amalgam.method.StatisticRequest;
import dev.amalgam.plan.ChunkPlan;
import dev.amalgam.plan.MergePlan;
import dev.amalgam.plan.TensorPlan;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.storage.StorageLevel;
import org.apache.spark.util.LongAccumulator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
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
 * <p>A round reads its chunks once. With order statistics it first reads a small deterministic
 * sample (1/64 of each chunk, {@link OrderBands}) that brackets each requested position in a band
 * of high buckets; the full read then yields, per chunk, the round's exact sums, dot products and
 * counts, the high-16-bit histogram of each ordered operand, and the exact bit patterns of its
 * entries inside each band. These are kept by Spark (memory, then disk), and two small jobs over
 * them, with no further input read, give the exact value at each position and, where equal values
 * straddle it, how many of the equal entries precede each chunk (ties go by lower flat index).
 *
 * <p>When a position falls outside its band (the sample misled, or the values are spread over
 * more buckets than a band holds), that statistic is found as before the sample existed: a
 * low-16-bit histogram pass inside its bucket, then a pass counting equal entries per chunk. The
 * result is the same bit for bit either way; only the reads differ. {@value #ONE_PASS_KEY}
 * {@code =false} forces the multi-pass way.
 */
public final class StatisticsStage {
    /** Rounds a method may ask for; iterative methods iterate on the driver over one round's results. */
    public static final int MAX_ROUNDS = 8;
    /** Spark setting: whether order statistics use a sample and one read (default) or radix passes. */
    public static final String ONE_PASS_KEY = "spark.amalgam.statistics.onePass";

    private static final Logger LOG = LoggerFactory.getLogger(StatisticsStage.class);

    private StatisticsStage() {
    }

    /** Everything the passes of one round share. */
    private record Pass(JavaSparkContext sc, Broadcast<MergePlan> plan, Broadcast<StatisticsResult> known,
                        Broadcast<OrderTargets> targets, int round, int partitions, int maxChunk,
                        LongAccumulator bytesRead, PassListener listener) {
        AutoCloseable started(String name, long chunks, LongAccumulator done) {
            return listener.started("statistics round " + (round + 1) + ", " + name, chunks, done, bytesRead);
        }
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
        if (r.a() instanceof Operand.Delta || r.a() instanceof Operand.Variance || r.a() instanceof Operand.Importance
                || r.a() instanceof Operand.Salience || r.a() instanceof Operand.Balance) {
            return r.a();
        }
        throw new IllegalArgumentException("order statistics of " + r.a() + " are not supported; order a delta, "
                + "a variance, an importance or a salience");
    }

    /**
     * Runs every round; {@code bytesRead} counts the input bytes the rounds read.
     *
     * @param onePass order statistics from a sample and one full read ({@link #ONE_PASS_KEY})
     */
    public static StatisticsResult run(JavaSparkContext sc, Broadcast<MergePlan> planBroadcast, MergePlan plan,
                                       MergeMethod method, int partitions, LongAccumulator bytesRead,
                                       boolean onePass, PassListener listener) {
        int maxChunk = 0;
        boolean[] multiChunk = new boolean[plan.tensors().length];
        for (ChunkPlan c : plan.chunks()) {
            maxChunk = Math.max(maxChunk, c.count());
            multiChunk[c.tensor()] |= !LocalStatistics.isLocal(method, plan.tensors()[c.tensor()], c);
        }
        StatisticsResult result = StatisticsResult.empty();
        for (int round = 0; ; round++) {
            boolean[] asking = new boolean[plan.tensors().length];
            Map<Integer, List<StatisticRequest>> asked = new HashMap<>();
            boolean any = false;
            boolean orders = false;
            for (TensorPlan t : plan.tensors()) {
                if (!multiChunk[t.index()] || t.derived() || t.copy()) {
                    continue; // a copied tensor is passthrough's, which asks for nothing
                }
                List<StatisticRequest> requests = method.statistics(t, round, result.view(t.index(), -1));
                if (!requests.isEmpty()) {
                    checkRound(method, t, round);
                    asking[t.index()] = true;
                    asked.put(t.index(), requests);
                    any = true;
                    orders |= requests.stream().anyMatch(r -> r.reduction() == Reduction.ORDER);
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
            Broadcast<OrderTargets> targets = sc.broadcast(OrderTargets.of(plan, asked));
            Pass pass = new Pass(sc, planBroadcast, known, targets, round, partitions, maxChunk, bytesRead, listener);
            String range = SparkWorkNames.chunkRange(plan, chunks);
            HashMap<StatisticKey, OrderBands.Band> bands = new HashMap<>();
            if (orders && onePass) {
                try (SparkWorkNames.Step step = SparkWorkNames.start(sc, "statistics round " + round + " (sample)", range)) {
                    bands = sample(pass, chunks);
                }
            }
            StatisticsResult found;
            try (SparkWorkNames.Step step = SparkWorkNames.start(sc, "statistics round " + round, range)) {
                found = fullPass(pass, chunks, bands);
            }
            known.unpersist();
            targets.unpersist();
            result.putAll(found);
        }
    }

    /** This round's requests for a tensor, as the driver and every executor see them. */
    private static List<StatisticRequest> requests(MergeMethod method, TensorPlan tensor, int round,
                                                   StatisticsResult known, int chunk) {
        return method.statistics(tensor, round, known.view(tensor.index(), chunk));
    }

    /**
     * The sample: high-bucket histograms of each ordered operand over evenly spaced blocks of
     * every chunk, reduced per tensor into a band per order request.
     */
    private static HashMap<StatisticKey, OrderBands.Band> sample(Pass pass, List<Integer> chunks) {
        Broadcast<MergePlan> planB = pass.plan();
        Broadcast<StatisticsResult> knownB = pass.known();
        Broadcast<OrderTargets> targetsB = pass.targets();
        int round = pass.round();
        int maxChunk = pass.maxChunk();
        LongAccumulator read = pass.bytesRead();
        LongAccumulator done = pass.sc().sc().longAccumulator("amalgam.statisticsSampleChunks");
        List<Tuple2<StatisticKey, OrderBands.Band>> bands;
        try (AutoCloseable ignored = pass.started("sample", chunks.size(), done)) {
            bands = pass.sc().parallelize(chunks, slices(pass, chunks))
                    .mapPartitionsToPair(it -> {
                        MergePlan plan = planB.value();
                        MergeMethod method = MergeMethods.byName(plan.settings().method()).orElseThrow();
                        StatisticsResult known = knownB.value();
                        return new ChunkStream(plan, it, maxChunk, read, done, method, known, round, true) {
                            private final Map<StatisticKey, long[]> histograms = new HashMap<>();

                            @Override
                            void load(ChunkLoader loader, TensorPlan tensor, ChunkPlan chunk, boolean[] models) {
                                // The blocks are loaded and histogrammed one by one in visit().
                            }

                            @Override
                            void visit(TensorPlan tensor, ChunkPlan chunk, ChunkLoader loader,
                                       List<StatisticRequest> requests, List<Tuple2<StatisticKey, Object>> out) {
                                List<StatisticRequest> ordersOnly = orders(requests);
                                if (ordersOnly.isEmpty()) {
                                    return; // this tensor's round has only sums: nothing to bracket
                                }
                                boolean[] models = ChunkSums.modelsNeeded(plan.modelCount(), plan.companionSlots(), ordersOnly);
                                int row = method.rowAligned() ? Math.max(1, tensor.cols()) : 1;
                                for (ChunkPlan block : OrderBands.blocks(chunk, row)) {
                                    loader.load(tensor, block, models);
                                    for (StatisticRequest h : histograms(ordersOnly)) {
                                        long[] counts = histograms.computeIfAbsent(StatisticKey.of(tensor.index(), h),
                                                k -> new long[MagnitudeHistogram.BINS]);
                                        loader.kernels().histogramHigh(h.a(), block.count(), counts);
                                    }
                                }
                            }

                            @Override
                            void tensorDone(List<Tuple2<StatisticKey, Object>> out) {
                                flush(histograms, out);
                            }
                        };
                    })
                    .reduceByKey(StatisticsStage::combine)
                    .flatMapToPair(entry -> {
                        StatisticKey key = entry._1();
                        OrderTargets targets = targetsB.value();
                        List<Tuple2<StatisticKey, OrderBands.Band>> out = new ArrayList<>();
                        for (StatisticRequest r : targets.requests().get(key)) {
                            OrderBands.Band band = OrderBands.band((SparseCounts) entry._2(), r.position(),
                                    targets.elements().get(key));
                            if (band != null) {
                                out.add(new Tuple2<>(new StatisticKey(key.owner(), r), band));
                            }
                        }
                        return out.iterator();
                    })
                    .collect();
        } catch (Exception e) {
            throw rethrow(e);
        }
        HashMap<StatisticKey, OrderBands.Band> byKey = new HashMap<>();
        bands.forEach(t -> byKey.put(t._1(), t._2()));
        return byKey;
    }

    /**
     * The full read: per chunk the round's exact partial sums, the high histogram of each ordered
     * operand and the candidates inside each band; then the exact statistics from those, with
     * the multi-pass selection for any position its band missed.
     */
    private static StatisticsResult fullPass(Pass pass, List<Integer> chunks,
                                             HashMap<StatisticKey, OrderBands.Band> bands) {
        Broadcast<MergePlan> planB = pass.plan();
        Broadcast<StatisticsResult> knownB = pass.known();
        Broadcast<HashMap<StatisticKey, OrderBands.Band>> bandsB = pass.sc().broadcast(bands);
        Broadcast<OrderTargets> targetsB = pass.targets();
        int round = pass.round();
        int maxChunk = pass.maxChunk();
        LongAccumulator read = pass.bytesRead();
        LongAccumulator done = pass.sc().sc().longAccumulator("amalgam.statisticsChunks");
        JavaPairRDD<StatisticKey, Object> perChunk = pass.sc().parallelize(chunks, slices(pass, chunks))
                .mapPartitionsToPair(it -> {
                    MergePlan plan = planB.value();
                    MergeMethod method = MergeMethods.byName(plan.settings().method()).orElseThrow();
                    StatisticsResult known = knownB.value();
                    HashMap<StatisticKey, OrderBands.Band> bandOf = bandsB.value();
                    return new ChunkStream(plan, it, maxChunk, read, done, method, known, round, false) {
                        private final Map<StatisticKey, Object> partials = new HashMap<>();
                        private final Map<OrderBands.Band, int[]> slots = new HashMap<>();
                        private int[] scratch;

                        @Override
                        void visit(TensorPlan tensor, ChunkPlan chunk, ChunkLoader loader,
                                   List<StatisticRequest> requests, List<Tuple2<StatisticKey, Object>> out) {
                            Map<StatisticRequest, Partial> sums = new HashMap<>();
                            ChunkSums.add(loader.kernels(), method, plan, tensor, chunk, requests,
                                    known.view(tensor.index(), chunk.index()), sums);
                            // A sum of means is reduced per tensor first; the driver adds the means.
                            sums.forEach((r, p) -> partials.merge(r.scope() == Scope.GROUP_MEANS
                                    ? new StatisticKey(tensor.index(), r) : StatisticKey.of(tensor.index(), r), p,
                                    StatisticsStage::combine));
                            List<StatisticRequest> orders = orders(requests);
                            for (StatisticRequest h : histograms(orders)) {
                                long[] counts = (long[]) partials.computeIfAbsent(StatisticKey.of(tensor.index(), h),
                                        k -> new long[MagnitudeHistogram.BINS]);
                                loader.kernels().histogramHigh(h.a(), chunk.count(), counts);
                            }
                            for (StatisticRequest r : orders) {
                                StatisticKey key = StatisticKey.of(tensor.index(), r);
                                OrderBands.Band band = bandOf.get(key);
                                if (band == null) {
                                    continue;
                                }
                                if (scratch == null) {
                                    scratch = new int[OrderBands.MAX_BUCKETS << 16];
                                }
                                loader.kernels().histogramBand(ordered(r), chunk.count(), band.buckets(),
                                        slots.computeIfAbsent(band, OrderBands.Band::slots), scratch);
                                out.add(new Tuple2<>(key, new BandChunk(chunk.index(),
                                        SparseCounts.drain(scratch, band.buckets()))));
                            }
                        }

                        @Override
                        void tensorDone(List<Tuple2<StatisticKey, Object>> out) {
                            partials.forEach((k, v) -> out.add(new Tuple2<>(k,
                                    v instanceof long[] h ? SparseCounts.of(h) : v)));
                            partials.clear();
                        }
                    };
                });
        if (!bands.isEmpty()) {
            // The band candidates feed two more jobs; keep them rather than read the inputs again.
            perChunk = perChunk.persist(StorageLevel.MEMORY_AND_DISK_SER());
        }
        StatisticsResult found = StatisticsResult.empty();
        HashMap<StatisticKey, OrderStatistic> buckets = new HashMap<>();
        List<Tuple2<StatisticKey, Double>> means = new ArrayList<>();
        try (AutoCloseable ignored = pass.started("full read", chunks.size(), done)) {
            List<Tuple2<StatisticKey, Object>> reduced = perChunk
                    .filter(t -> !(t._2() instanceof BandChunk))
                    .reduceByKey(StatisticsStage::combine)
                    .flatMapToPair(entry -> {
                        StatisticKey key = entry._1();
                        List<Tuple2<StatisticKey, Object>> out = new ArrayList<>();
                        if (entry._2() instanceof Partial p) {
                            out.add(new Tuple2<>(key, p.value()));
                            return out.iterator();
                        }
                        SparseCounts high = (SparseCounts) entry._2();
                        for (StatisticRequest r : targetsB.value().requests().get(key)) {
                            long[] s = high.select(r.position());
                            out.add(new Tuple2<>(new StatisticKey(key.owner(), r), new long[]{s[0], s[1], s[2]}));
                        }
                        return out.iterator();
                    })
                    .collect();
            for (Tuple2<StatisticKey, Object> t : reduced) {
                if (t._2() instanceof Double f && t._1().request().scope() == Scope.GROUP_MEANS) {
                    means.add(new Tuple2<>(t._1(), f));
                } else if (t._2() instanceof Double f) {
                    found.values().put(t._1(), f);
                } else {
                    long[] s = (long[]) t._2();
                    if (s[0] < 0) {
                        throw new IllegalStateException("position " + t._1().request().position() + " of "
                                + OrderTargets.describe(planB.value(), t._1()) + " is beyond its " + s[1] + " entries");
                    }
                    buckets.put(t._1(), new OrderStatistic((int) s[0], s[1], -1));
                }
            }
        } catch (Exception e) {
            throw rethrow(e);
        }
        found.values().putAll(sumOfMeans(planB.value(), means));
        HashMap<StatisticKey, OrderStatistic> inBand = new HashMap<>();
        HashMap<StatisticKey, OrderStatistic> missed = new HashMap<>();
        buckets.forEach((k, b) -> {
            OrderBands.Band band = bands.get(k);
            (band != null && band.contains(b.valueBits()) ? inBand : missed).put(k, b);
        });
        if (!inBand.isEmpty()) {
            HashMap<StatisticKey, OrderStatistic> exact = fromBands(pass, perChunk, inBand);
            found.orders().putAll(exact);
            found.equalsBefore().putAll(bandPrefixes(pass, perChunk, exact));
        }
        perChunk.unpersist(false);
        bandsB.unpersist();
        if (!missed.isEmpty()) {
            if (!bands.isEmpty()) {
                LOG.info("statistics round {}: {} of {} order statistics fell outside their sampled band; "
                        + "reading their tensors again to find them", round + 1, missed.size(), buckets.size());
            }
            HashMap<StatisticKey, OrderStatistic> exact = exactValues(pass, chunks, missed);
            found.orders().putAll(exact);
            found.equalsBefore().putAll(equalPrefixes(pass, pass.plan().value(), exact));
        }
        return found;
    }

    /**
     * {@link Scope#GROUP_MEANS} results: per request, the tensors' float32 sums divided by their
     * element counts, added in double in canonical tensor order, filed under the wide key.
     */
    static HashMap<StatisticKey, Double> sumOfMeans(MergePlan plan, List<Tuple2<StatisticKey, Double>> perTensor) {
        Map<StatisticRequest, List<Integer>> tensors = new HashMap<>();
        Map<StatisticKey, Double> valueOf = new HashMap<>();
        for (Tuple2<StatisticKey, Double> t : perTensor) {
            tensors.computeIfAbsent(t._1().request(), r -> new ArrayList<>()).add(t._1().owner());
            valueOf.put(t._1(), t._2());
        }
        HashMap<StatisticKey, Double> out = new HashMap<>();
        tensors.forEach((r, members) -> {
            double sum = 0.0;
            for (int t : OrderTargets.canonical(plan, members)) {
                sum += valueOf.get(new StatisticKey(t, r)) / plan.tensors()[t].elements();
            }
            out.put(StatisticKey.of(0, r), sum);
        });
        return out;
    }

    /** The exact statistic of each in-band position, from the kept candidates in its bucket. */
    private static HashMap<StatisticKey, OrderStatistic> fromBands(Pass pass, JavaPairRDD<StatisticKey, Object> perChunk,
                                                                   HashMap<StatisticKey, OrderStatistic> buckets) {
        Broadcast<HashMap<StatisticKey, OrderStatistic>> bucketsB = pass.sc().broadcast(buckets);
        List<Tuple2<StatisticKey, OrderStatistic>> values = perChunk
                .filter(t -> t._2() instanceof BandChunk && bucketsB.value().containsKey(t._1()))
                .mapToPair(t -> new Tuple2<>(t._1(), (Object) ((BandChunk) t._2()).candidates()
                        .lowBitsOf(bucketsB.value().get(t._1()).valueBits())))
                .reduceByKey(StatisticsStage::combine)
                .mapToPair(entry -> new Tuple2<>(entry._1(),
                        exact(entry._1(), bucketsB.value().get(entry._1()), (SparseCounts) entry._2())))
                .collect();
        bucketsB.unpersist();
        HashMap<StatisticKey, OrderStatistic> orders = new HashMap<>();
        values.forEach(v -> orders.put(v._1(), v._2()));
        return orders;
    }

    /** Per chunk, how many entries equal to each straddled statistic precede it, from the kept candidates. */
    private static Map<StatisticKey, Long> bandPrefixes(Pass pass, JavaPairRDD<StatisticKey, Object> perChunk,
                                                        HashMap<StatisticKey, OrderStatistic> orders) {
        HashMap<StatisticKey, Integer> split = straddled(orders);
        if (split.isEmpty()) {
            return new HashMap<>();
        }
        Broadcast<HashMap<StatisticKey, Integer>> splitB = pass.sc().broadcast(split);
        List<Tuple2<StatisticKey, Long>> counts = perChunk
                .filter(t -> t._2() instanceof BandChunk && splitB.value().containsKey(t._1()))
                .mapToPair(t -> {
                    BandChunk band = (BandChunk) t._2();
                    long equal = band.candidates().countOf(splitB.value().get(t._1()));
                    return new Tuple2<>(new StatisticKey(band.chunk(), t._1().request()), equal);
                })
                .collect();
        splitB.unpersist();
        return prefixes(pass.plan().value(), pass.targets().value(), split, counts);
    }

    /** The statistics whose position falls inside a run of equal values, with the value's bits. */
    private static HashMap<StatisticKey, Integer> straddled(Map<StatisticKey, OrderStatistic> orders) {
        HashMap<StatisticKey, Integer> split = new HashMap<>();
        for (Map.Entry<StatisticKey, OrderStatistic> e : orders.entrySet()) {
            if (e.getKey().request().position() - e.getValue().below() > 0) {
                split.put(e.getKey(), e.getValue().valueBits());
            }
        }
        return split;
    }

    /** The statistic inside its high bucket, from the low-16-bit counts of that bucket's entries. */
    private static OrderStatistic exact(StatisticKey key, OrderStatistic bucket, SparseCounts low) {
        long[] s = low.select(key.request().position() - bucket.below());
        return new OrderStatistic((bucket.valueBits() << 16) | (int) s[0], bucket.below() + s[1], s[2]);
    }

    /** Emits a tensor's dense histograms as sparse records and forgets them. */
    private static void flush(Map<StatisticKey, long[]> histograms, List<Tuple2<StatisticKey, Object>> out) {
        histograms.forEach((k, h) -> out.add(new Tuple2<>(k, SparseCounts.of(h))));
        histograms.clear();
    }

    private static Object combine(Object a, Object b) {
        if (a instanceof Partial p) {
            return p.merge((Partial) b);
        }
        if (a instanceof SparseCounts s) {
            return s.plus((SparseCounts) b);
        }
        long[] x = (long[]) a;
        long[] y = (long[]) b;
        for (int i = 0; i < x.length; i++) {
            x[i] += y[i];
        }
        return x;
    }

    /** Multi-pass step 2: the exact value at each position, from low-16-bit histograms inside its bucket. */
    private static HashMap<StatisticKey, OrderStatistic> exactValues(Pass pass, List<Integer> chunks,
                                                                     HashMap<StatisticKey, OrderStatistic> buckets) {
        Broadcast<MergePlan> planB = pass.plan();
        Broadcast<StatisticsResult> knownB = pass.known();
        Broadcast<HashMap<StatisticKey, OrderStatistic>> bucketsB = pass.sc().broadcast(buckets);
        int round = pass.round();
        int maxChunk = pass.maxChunk();
        LongAccumulator read = pass.bytesRead();
        List<Integer> needed = chunksOf(pass, chunks, buckets.keySet());
        LongAccumulator done = pass.sc().sc().longAccumulator("amalgam.statisticsLowChunks");
        List<Tuple2<StatisticKey, OrderStatistic>> values;
        try (AutoCloseable ignored = pass.started("exact values", needed.size(), done)) {
            values = pass.sc().parallelize(needed, slices(pass, needed))
                    .mapPartitionsToPair(it -> {
                        MergePlan plan = planB.value();
                        MergeMethod method = MergeMethods.byName(plan.settings().method()).orElseThrow();
                        HashMap<StatisticKey, OrderStatistic> bucketOf = bucketsB.value();
                        return new ChunkStream(plan, it, maxChunk, read, done, method, knownB.value(), round, true) {
                            private final Map<StatisticKey, long[]> histograms = new HashMap<>();

                            @Override
                            void visit(TensorPlan tensor, ChunkPlan chunk, ChunkLoader loader,
                                       List<StatisticRequest> requests, List<Tuple2<StatisticKey, Object>> out) {
                                for (StatisticRequest r : requests) {
                                    StatisticKey key = StatisticKey.of(tensor.index(), r);
                                    OrderStatistic bucket = bucketOf.get(key);
                                    if (bucket != null) {
                                        long[] h = histograms.computeIfAbsent(key, k -> new long[MagnitudeHistogram.BINS]);
                                        loader.kernels().histogramLow(ordered(r), chunk.count(), bucket.valueBits(), h);
                                    }
                                }
                            }

                            @Override
                            void tensorDone(List<Tuple2<StatisticKey, Object>> out) {
                                flush(histograms, out);
                            }
                        };
                    })
                    .reduceByKey(StatisticsStage::combine)
                    .mapToPair(entry -> new Tuple2<>(entry._1(),
                            exact(entry._1(), bucketsB.value().get(entry._1()), (SparseCounts) entry._2())))
                    .collect();
        } catch (Exception e) {
            throw rethrow(e);
        }
        bucketsB.unpersist();
        HashMap<StatisticKey, OrderStatistic> orders = new HashMap<>();
        values.forEach(v -> orders.put(v._1(), v._2()));
        return orders;
    }

    /**
     * Multi-pass step 3: where a position falls inside a run of equal magnitudes, each chunk needs
     * to know how many of those equal entries precede it in the tensor (ties go by lower flat index).
     */
    private static Map<StatisticKey, Long> equalPrefixes(Pass pass, MergePlan plan,
                                                         HashMap<StatisticKey, OrderStatistic> orders) {
        HashMap<StatisticKey, Integer> split = straddled(orders);
        if (split.isEmpty()) {
            return new HashMap<>();
        }
        List<Integer> chunks = chunksOf(pass, null, split.keySet());
        Broadcast<MergePlan> planB = pass.plan();
        Broadcast<StatisticsResult> knownB = pass.known();
        Broadcast<HashMap<StatisticKey, Integer>> splitB = pass.sc().broadcast(split);
        int round = pass.round();
        int maxChunk = pass.maxChunk();
        LongAccumulator read = pass.bytesRead();
        LongAccumulator done = pass.sc().sc().longAccumulator("amalgam.statisticsEqualChunks");
        List<Tuple2<StatisticKey, Long>> counts = new ArrayList<>();
        try (AutoCloseable ignored = pass.started("equal counts", chunks.size(), done)) {
            pass.sc().parallelize(chunks, slices(pass, chunks))
                    .mapPartitionsToPair(it -> {
                        MergePlan p = planB.value();
                        MergeMethod method = MergeMethods.byName(p.settings().method()).orElseThrow();
                        HashMap<StatisticKey, Integer> valueOf = splitB.value();
                        return new ChunkStream(p, it, maxChunk, read, done, method, knownB.value(), round, true) {
                            @Override
                            void visit(TensorPlan tensor, ChunkPlan chunk, ChunkLoader loader,
                                       List<StatisticRequest> requests, List<Tuple2<StatisticKey, Object>> out) {
                                for (StatisticRequest r : requests) {
                                    Integer bits = valueOf.get(StatisticKey.of(tensor.index(), r));
                                    if (bits != null) {
                                        long equal = loader.kernels().countEqual(ordered(r), chunk.count(), bits);
                                        out.add(new Tuple2<>(new StatisticKey(chunk.index(), r), equal));
                                    }
                                }
                            }
                        };
                    })
                    .collect()
                    .forEach(t -> counts.add(new Tuple2<>(t._1(), (Long) t._2())));
        } catch (Exception e) {
            throw rethrow(e);
        }
        splitB.unpersist();
        return prefixes(plan, pass.targets().value(), split, counts);
    }

    /**
     * Turns per-chunk equal counts into the count of equal entries in earlier chunks: of the
     * tensor, or for a wide statistic of every tensor it spans, in canonical order.
     */
    private static Map<StatisticKey, Long> prefixes(MergePlan plan, OrderTargets targets,
                                                    HashMap<StatisticKey, Integer> split,
                                                    List<Tuple2<StatisticKey, Long>> counts) {
        Map<StatisticKey, Long> countOf = new HashMap<>();
        counts.forEach(c -> countOf.put(c._1(), c._2()));
        int[] first = plan.firstChunks();
        Map<StatisticKey, Long> prefixes = new HashMap<>();
        for (StatisticKey key : split.keySet()) {
            long before = 0;
            for (int t : targets.tensorsOf(key)) {
                // A tensor's chunks are planned together, in element order.
                for (int c = first[t]; c < plan.chunks().length && plan.chunks()[c].tensor() == t; c++) {
                    StatisticKey chunkKey = new StatisticKey(c, key.request());
                    prefixes.put(chunkKey, before);
                    before += countOf.getOrDefault(chunkKey, 0L);
                }
            }
        }
        return prefixes;
    }

    /** The chunks, among {@code among} (null: all), of the tensors the keys span. */
    private static List<Integer> chunksOf(Pass pass, List<Integer> among, java.util.Set<StatisticKey> keys) {
        MergePlan plan = pass.plan().value();
        OrderTargets targets = pass.targets().value();
        boolean[] wanted = new boolean[plan.tensors().length];
        keys.forEach(k -> {
            for (int t : targets.tensorsOf(k)) {
                wanted[t] = true;
            }
        });
        List<Integer> chunks = new ArrayList<>();
        if (among == null) {
            for (ChunkPlan c : plan.chunks()) {
                if (wanted[c.tensor()]) {
                    chunks.add(c.index());
                }
            }
        } else {
            for (int c : among) {
                if (wanted[plan.chunks()[c].tensor()]) {
                    chunks.add(c);
                }
            }
        }
        return chunks;
    }

    private static List<StatisticRequest> orders(List<StatisticRequest> requests) {
        return requests.stream().filter(r -> r.reduction() == Reduction.ORDER).toList();
    }

    /** The distinct histograms (operand and scope) the order requests select from, in request order. */
    private static List<StatisticRequest> histograms(List<StatisticRequest> orders) {
        return orders.stream().map(OrderTargets::histogramOf).distinct().toList();
    }

    private static RuntimeException rethrow(Exception e) {
        return e instanceof RuntimeException r ? r : new IllegalStateException(e);
    }

    /**
     * A task's chunks, loaded one at a time and turned into records lazily, so a task never holds
     * more than one tensor's worth of results: {@link #tensorDone} flushes what was gathered for a
     * tensor when the next one starts (chunks come in tensor order) and at the end.
     */
    private abstract static class ChunkStream implements Iterator<Tuple2<StatisticKey, Object>> {
        private final MergePlan plan;
        private final Iterator<Integer> chunks;
        private final LongAccumulator read;
        private final LongAccumulator done;
        private final MergeMethod method;
        private final StatisticsResult known;
        private final int round;
        private final boolean ordersOnly;
        private final ChunkLoader loader;
        private final java.util.ArrayDeque<Tuple2<StatisticKey, Object>> ready = new java.util.ArrayDeque<>();
        private int tensor = -1;
        private boolean closed;

        ChunkStream(MergePlan plan, Iterator<Integer> chunks, int maxChunk, LongAccumulator read, LongAccumulator done,
                    MergeMethod method, StatisticsResult known, int round, boolean ordersOnly) {
            this.plan = plan;
            this.chunks = chunks;
            this.read = read;
            this.done = done;
            this.method = method;
            this.known = known;
            this.round = round;
            this.ordersOnly = ordersOnly;
            this.loader = loader(plan, maxChunk);
            TaskContext task = TaskContext.get();
            if (task != null) {
                task.addTaskCompletionListener((org.apache.spark.util.TaskCompletionListener) t -> close());
            }
        }

        /** Loads what the chunk's requests read; {@code models} flags the models needed. */
        void load(ChunkLoader loader, TensorPlan tensor, ChunkPlan chunk, boolean[] models) {
            loader.load(tensor, chunk, models);
        }

        abstract void visit(TensorPlan tensor, ChunkPlan chunk, ChunkLoader loader, List<StatisticRequest> requests,
                            List<Tuple2<StatisticKey, Object>> out);

        void tensorDone(List<Tuple2<StatisticKey, Object>> out) {
        }

        @Override
        public boolean hasNext() {
            while (ready.isEmpty() && !closed) {
                List<Tuple2<StatisticKey, Object>> out = new ArrayList<>();
                if (!chunks.hasNext()) {
                    tensorDone(out);
                    close();
                } else {
                    ChunkPlan chunk = plan.chunks()[chunks.next()];
                    if (chunk.tensor() != tensor && tensor >= 0) {
                        tensorDone(out);
                    }
                    tensor = chunk.tensor();
                    TensorPlan t = plan.tensors()[chunk.tensor()];
                    List<StatisticRequest> requests = requests(method, t, round, known, chunk.index());
                    List<StatisticRequest> loaded = ordersOnly ? orders(requests) : requests;
                    try {
                        load(loader, t, chunk, ChunkSums.modelsNeeded(plan.modelCount(), plan.companionSlots(), loaded));
                        visit(t, chunk, loader, requests, out);
                    } catch (RuntimeException e) {
                        close();
                        throw new ChunkFailedException(t.name(), chunk.start(), chunk.count(), e);
                    }
                    done.add(1);
                }
                ready.addAll(out);
            }
            return !ready.isEmpty();
        }

        @Override
        public Tuple2<StatisticKey, Object> next() {
            if (!hasNext()) {
                throw new java.util.NoSuchElementException();
            }
            return ready.poll();
        }

        private void close() {
            if (!closed) {
                closed = true;
                read.add(loader.bytesRead());
                loader.close();
            }
        }
    }

    private static ChunkLoader loader(MergePlan plan, int maxChunk) {
        TaskContext task = TaskContext.get();
        String name = "statistics-task-" + (task == null ? 0 : task.taskAttemptId());
        return new ChunkLoader(ExecutorKernels.forTask(plan.primitives()), ExecutorMemory.root(),
                ExecutorHadoop.configuration(), name, maxChunk, plan.modelCount(), plan.settings().hasBase(),
                plan.companionSlots());
    }

    private static int slices(Pass pass, List<Integer> chunks) {
        return Math.max(1, Math.min(pass.partitions(), chunks.size()));
    }
}
