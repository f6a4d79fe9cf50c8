package dev.amalgam.kernels;

import org.apache.arrow.memory.ArrowBuf;

import java.math.BigInteger;

/**
 * An exact, signed sum of products of float32 pairs. A float32 is {@code m * 2^e} with a signed
 * 24-bit integer {@code m}, so a product is {@code (ma * mb) * 2^(ea + eb)} with a 48-bit integer
 * significand; its low and high 24 bits are added into signed 64-bit bins, one per power of two.
 * Integer additions are associative, so partial sums from any chunking merge to the same
 * total, which is rounded once (to nearest, ties to even). A bin takes at least 2^39 products
 * before it could overflow. The same scheme sums plain values (b = 1) and squares (a = b).
 */
public final class ExactDot {
    /** Exponent of the least significant bit of bin 0: the smallest product exponent, 2 x (-149). */
    static final int MIN_EXPONENT = -298;
    public static final int BINS = 232 + 24 - MIN_EXPONENT + 1;

    private final long[] bins = new long[BINS];
    private boolean nan;
    private boolean positiveInfinity;
    private boolean negativeInfinity;

    /** Adds {@code a * b}. */
    public void add(float a, float b) {
        int ba = Float.floatToRawIntBits(a);
        int bb = Float.floatToRawIntBits(b);
        int ea = (ba >>> 23) & 0xff;
        int eb = (bb >>> 23) & 0xff;
        if (ea == 0xff || eb == 0xff) {
            addSpecial(a * b);
            return;
        }
        long ma = significand(ba, ea);
        long mb = significand(bb, eb);
        long p = ma * mb;
        if (p == 0) {
            return;
        }
        int e = Math.max(ea, 1) + Math.max(eb, 1) - 300 - MIN_EXPONENT;
        bins[e] += p & 0xffffff;
        bins[e + 24] += p >> 24;
    }

    private static long significand(int bits, int exponent) {
        long m = (bits & 0x7fffff) | (exponent == 0 ? 0 : 0x800000);
        return bits < 0 ? -m : m;
    }

    private void addSpecial(float product) {
        if (Float.isNaN(product)) {
            nan = true;
        } else if (product > 0) {
            positiveInfinity = true;
        } else {
            negativeInfinity = true;
        }
    }

    /** Adds {@code sum_j a[j] * b[j]} over the first {@code count} floats of two buffers. */
    public void addProducts(ArrowBuf a, ArrowBuf b, int count) {
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            add(a.getFloat(at), b.getFloat(at));
        }
    }

    /**
     * Adds per-bin sums computed elsewhere (a GPU's bins, in this class's layout: bin k sums
     * signed integers in units of 2^(k - 298)) and what it saw of NaN and infinities.
     */
    public void addBins(long[] signedBins, boolean sawNaN, boolean sawPositiveInfinity, boolean sawNegativeInfinity) {
        for (int i = 0; i < BINS; i++) {
            bins[i] += signedBins[i];
        }
        nan |= sawNaN;
        positiveInfinity |= sawPositiveInfinity;
        negativeInfinity |= sawNegativeInfinity;
    }

    public void merge(ExactDot other) {
        for (int i = 0; i < BINS; i++) {
            bins[i] += other.bins[i];
        }
        nan |= other.nan;
        positiveInfinity |= other.positiveInfinity;
        negativeInfinity |= other.negativeInfinity;
    }

    /** The exact sum rounded once to float32. */
    public float toFloat() {
        if (nan || (positiveInfinity && negativeInfinity)) {
            return Float.NaN;
        }
        if (positiveInfinity) {
            return Float.POSITIVE_INFINITY;
        }
        if (negativeInfinity) {
            return Float.NEGATIVE_INFINITY;
        }
        BigInteger total = BigInteger.ZERO;
        for (int i = 0; i < BINS; i++) {
            if (bins[i] != 0) {
                total = total.add(BigInteger.valueOf(bins[i]).shiftLeft(i));
            }
        }
        return roundToFloat(total, MIN_EXPONENT);
    }

    /** {@code value * 2^exponent} rounded to nearest float32, ties to even (subnormals and overflow included). */
    static float roundToFloat(BigInteger value, int exponent) {
        int sign = value.signum();
        if (sign == 0) {
            return 0.0f;
        }
        BigInteger magnitude = value.abs();
        int drop = Math.max(magnitude.bitLength() - 24, -149 - exponent);
        float rounded;
        if (drop <= 0) {
            rounded = Math.scalb((float) magnitude.longValueExact(), exponent);
        } else {
            BigInteger q = magnitude.shiftRight(drop);
            BigInteger rest = magnitude.subtract(q.shiftLeft(drop));
            int cmp = rest.compareTo(BigInteger.ONE.shiftLeft(drop - 1));
            if (cmp > 0 || (cmp == 0 && q.testBit(0))) {
                q = q.add(BigInteger.ONE);
            }
            rounded = Math.scalb((float) q.longValueExact(), drop + exponent);
        }
        return sign < 0 ? -rounded : rounded;
    }
}
