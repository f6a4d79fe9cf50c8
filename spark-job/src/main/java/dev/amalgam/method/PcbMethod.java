package dev.amalgam.method;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.Operand;
import dev.amalgam.kernels.Primitive;

import java.util.ArrayList;
import java.util.List;

/**
 * {@code pcb}: PCB-merging (Du et al. 2024, "Parameter Competition Balancing for Model Merging"),
 * as the authors' {@code pcb_merging} computes it over the whole flattened model
 * (docs/methods.md). Each model's |delta| is clamped to its whole-model quantiles
 * ({@value #CLAMP_RATIO} from either end); its balance {@code exp(M s^2) tanh(d S)} (intra:
 * the normalized clamped magnitude; inter: agreement with the sum of all deltas) is clamped below
 * at its whole-model {@code 1 - pcb_ratio} quantile and normalized into the model's scale; the
 * merge is the scale-weighted mean of the clamped deltas.
 *
 * <p>Statistics: round 0, each model's two clamp bounds (order statistics of |delta| over the
 * whole model); round 1, the balance's signed quantile and maximum. The balance is signed and the
 * order statistics select on magnitude, so it is reduced as its positive and negative parts: with
 * their non-zero counts, a signed position is a position of one part.
 */
final class PcbMethod extends DeclaredMethod {
    /** The fraction clamped off each end of |delta| (the authors' constant). */
    static final double CLAMP_RATIO = 0.0001;

    PcbMethod() {
        super("pcb", "intra- and inter-model balancing of whole-model clamped deltas, dropping the least balanced",
                Inputs.base(1, Integer.MAX_VALUE),
                List.of(Parameter.number("pcb_ratio", Parameter.Scope.GLOBAL, 0.1, Parameter.Range.openClosed(0, 1),
                                false, "fraction of each model's entries (by balance over the whole model) that keep a scale"),
                        Parameter.number("lambda", Parameter.Scope.GLOBAL, 1.0, Parameter.Range.ANY, true,
                                "scale of the merged delta")),
                Primitive.DELTA_ORDER, Primitive.COUNT, Primitive.PCB);
    }

    @Override
    public boolean wideStatistics(MethodTensor tensor) {
        return true;
    }

    static long lowPosition(long n) {
        return (long) (n * CLAMP_RATIO);
    }

    static long highPosition(long n) {
        return (long) (n * (1.0 - CLAMP_RATIO) - 1.0);
    }

    private long dropPosition(MethodTensor t) {
        return dropPosition(t.extent().elements(), global(t, "pcb_ratio"));
    }

    /** The signed balance's position below which scales are 0, {@code int(n * (1 - ratio))} in double. */
    static long dropPosition(long n, double ratio) {
        return (long) (n * (1.0 - ratio));
    }

    private static StatisticRequest magnitudeAt(int model, long position) {
        return StatisticRequest.order(new Operand.Delta(model), position).over(Scope.MODEL);
    }

    private static float valueOf(TensorStatistics stats, StatisticRequest r) {
        return Float.intBitsToFloat(stats.order(r).valueBits());
    }

    /** Model {@code i}'s |delta| clamp bounds, from round 0. */
    private static Operand.Balance part(MethodTensor t, TensorStatistics stats, int i, boolean positive) {
        long n = t.extent().elements();
        return new Operand.Balance(i, valueOf(stats, magnitudeAt(i, lowPosition(n))),
                valueOf(stats, magnitudeAt(i, highPosition(n))), positive);
    }

    /** The requests that order model {@code i}'s signed balance at ascending position {@code p}. */
    private static List<StatisticRequest> signedOrder(Operand.Balance positive, Operand.Balance negative, long n, long p) {
        return List.of(StatisticRequest.order(positive, p).over(Scope.MODEL),
                StatisticRequest.order(negative, n - 1 - p).over(Scope.MODEL));
    }

    /**
     * The signed balance at ascending position {@code p}: negatives (most negative first), zeros,
     * positives. Past the negatives and zeros it is the positive part's entry at {@code p}; among
     * the negatives, minus the negative part's entry at {@code n - 1 - p}.
     */
    private static float signedAt(TensorStatistics stats, Operand.Balance positive, Operand.Balance negative, long n,
                                  long p) {
        long positives = (long) stats.value(StatisticRequest.nonzero(positive).over(Scope.MODEL));
        long negatives = (long) stats.value(StatisticRequest.nonzero(negative).over(Scope.MODEL));
        List<StatisticRequest> r = signedOrder(positive, negative, n, p);
        if (p >= n - positives) {
            return valueOf(stats, r.get(0));
        }
        return p >= negatives ? 0.0f : -valueOf(stats, r.get(1));
    }

    @Override
    public List<StatisticRequest> statistics(MethodTensor tensor, int round, TensorStatistics known) {
        long n = tensor.extent().elements();
        List<StatisticRequest> requests = new ArrayList<>();
        if (n == 0 || round > 1) {
            return requests;
        }
        for (int i = 0; i < tensor.modelCount(); i++) {
            if (round == 0) {
                requests.add(magnitudeAt(i, lowPosition(n)));
                requests.add(magnitudeAt(i, highPosition(n)));
                continue;
            }
            Operand.Balance positive = part(tensor, known, i, true);
            Operand.Balance negative = part(tensor, known, i, false);
            requests.add(StatisticRequest.nonzero(positive).over(Scope.MODEL));
            requests.add(StatisticRequest.nonzero(negative).over(Scope.MODEL));
            requests.addAll(signedOrder(positive, negative, n, dropPosition(tensor)));
            requests.addAll(signedOrder(positive, negative, n, n - 1));
        }
        return requests;
    }

    @Override
    public void merge(ChunkKernels kernels, MethodTensor tensor, long chunkStart, int count, TensorStatistics stats,
                      MethodSettings settings, ChunkMetrics metrics) {
        int m = tensor.modelCount();
        long n = tensor.extent().elements();
        float[] lo = new float[m];
        float[] hi = new float[m];
        float[] low = new float[m];
        float[] high = new float[m];
        for (int i = 0; i < m; i++) {
            Operand.Balance positive = part(tensor, stats, i, true);
            Operand.Balance negative = part(tensor, stats, i, false);
            lo[i] = positive.lo();
            hi[i] = positive.hi();
            low[i] = signedAt(stats, positive, negative, n, dropPosition(tensor));
            high[i] = signedAt(stats, positive, negative, n, n - 1);
        }
        kernels.pcb(lo, hi, low, high, (float) global(tensor, "lambda"), count, metrics);
    }
}
