package dev.amalgam.stats;

import dev.amalgam.kernels.ExactDot;
import dev.amalgam.kernels.ExactSum;
import dev.amalgam.method.Reduction;

/**
 * A sum, dot product or count over part of a tensor. Every kind is exact (integer bins or an
 * integer count), so partials of any chunking merge to the same total, rounded once at the end.
 */
public final class Partial {
    private final Reduction reduction;
    private final ExactSum magnitudes;
    private final ExactDot products;
    private long count;

    public Partial(Reduction reduction) {
        this.reduction = reduction;
        this.magnitudes = reduction == Reduction.ABS_SUM ? new ExactSum() : null;
        this.products = reduction == Reduction.DOT || reduction == Reduction.SUM ? new ExactDot() : null;
    }

    ExactSum magnitudes() {
        return magnitudes;
    }

    ExactDot products() {
        return products;
    }

    void addCount(long n) {
        count += n;
    }

    public Partial merge(Partial other) {
        switch (reduction) {
            case ABS_SUM -> magnitudes.merge(other.magnitudes);
            case DOT, SUM -> products.merge(other.products);
            case NONZERO, SIGN_SUM -> count += other.count;
            case ORDER -> throw new IllegalStateException("order statistics are not partial sums");
        }
        return this;
    }

    /**
     * The total: sums and dot products rounded once to float32 (and widened, exactly), counts
     * exact (a double holds every count below 2^53).
     */
    public double value() {
        return switch (reduction) {
            case ABS_SUM -> magnitudes.toFloat();
            case DOT, SUM -> products.toFloat();
            case NONZERO, SIGN_SUM -> (double) count;
            case ORDER -> throw new IllegalStateException("order statistics are not partial sums");
        };
    }
}
