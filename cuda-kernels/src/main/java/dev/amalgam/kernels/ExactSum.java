package dev.amalgam.kernels;

import org.apache.arrow.memory.ArrowBuf;

import java.math.BigDecimal;
import java.math.BigInteger;

/**
 * An exact sum of float32 magnitudes: each value's 24-bit significand is added into a bin of
 * its exponent, so sums merge associatively and the final float is the true sum rounded once.
 * This is what makes rescale factors independent of chunking and reduction order.
 */
public final class ExactSum {
    private final long[] bins = new long[256];
    private boolean infinite;
    private boolean nan;

    public void addMagnitude(float value) {
        int bits = Float.floatToRawIntBits(value) & 0x7fffffff;
        int exponent = bits >>> 23;
        if (exponent == 0xff) {
            if ((bits & 0x7fffff) != 0) {
                nan = true;
            } else {
                infinite = true;
            }
            return;
        }
        int significand = bits & 0x7fffff;
        if (exponent != 0) {
            significand |= 0x800000;
        }
        bins[exponent] += significand;
    }

    /**
     * Adds {@code |values[0, count)|}. Four interleaved sets of bins keep consecutive entries of
     * one exponent from waiting on each other's memory update; integer sums fold exactly.
     */
    public void addMagnitudes(ArrowBuf values, int count) {
        long[] lanes = new long[4 << 8];
        for (int j = 0; j < count; j++) {
            int bits = Float.floatToRawIntBits(values.getFloat((long) j << 2)) & 0x7fffffff;
            int exponent = bits >>> 23;
            if (exponent == 0xff) {
                addMagnitude(Float.intBitsToFloat(bits));
                continue;
            }
            int significand = (bits & 0x7fffff) | (exponent == 0 ? 0 : 0x800000);
            lanes[(exponent << 2) | (j & 3)] += significand;
        }
        for (int e = 0; e < bins.length; e++) {
            bins[e] += lanes[e << 2] + lanes[(e << 2) | 1] + lanes[(e << 2) | 2] + lanes[(e << 2) | 3];
        }
    }

    /**
     * Adds per-exponent significand sums computed elsewhere (a GPU's bins, in the layout of
     * {@link #addMagnitude}: {@code bins[e]} sums the 24-bit significands of exponent {@code e}).
     */
    public void addBins(long[] exponentBins, boolean sawInfinity, boolean sawNaN) {
        for (int e = 0; e < bins.length; e++) {
            bins[e] += exponentBins[e];
        }
        infinite |= sawInfinity;
        nan |= sawNaN;
    }

    public void merge(ExactSum other) {
        for (int e = 0; e < bins.length; e++) {
            bins[e] += other.bins[e];
        }
        infinite |= other.infinite;
        nan |= other.nan;
    }

    /** The exact sum, rounded to nearest float32. */
    public float toFloat() {
        if (nan) {
            return Float.NaN;
        }
        if (infinite) {
            return Float.POSITIVE_INFINITY;
        }
        // bins[e] counts units of 2^(max(e,1) - 150); scale everything to units of 2^-149.
        BigInteger total = BigInteger.ZERO;
        for (int e = 0; e < bins.length; e++) {
            if (bins[e] != 0) {
                total = total.add(BigInteger.valueOf(bins[e]).shiftLeft(Math.max(e, 1) - 1));
            }
        }
        if (total.signum() == 0) {
            return 0.0f;
        }
        return new BigDecimal(total).divide(new BigDecimal(BigInteger.ONE.shiftLeft(149))).floatValue();
    }
}
