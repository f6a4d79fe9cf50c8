package dev.amalgam.kernels;

/**
 * {@code exp} and {@code log} in double from additions, multiplications, divisions and exact
 * scalings only, in a fixed order, so that the CUDA kernels (the same steps with
 * {@code __dadd_rn}-style intrinsics in {@code amalgam_kernels.cu}) get the same bits. Neither
 * {@link Math#exp} nor CUDA's {@code exp} is correctly rounded, and they differ in the last bit.
 * Accuracy is a few units in the last place, far below the float32 rounding of the results.
 */
public final class PortableMath {
    private static final double LN2_HI = 0x1.62e42fee00000p-1;
    private static final double LN2_LO = 0x1.a39ef35793c76p-33;
    private static final double INV_LN2 = 0x1.71547652b82fep+0;
    private static final double SQRT2 = 0x1.6a09e667f3bcdp+0;
    /** 1/k! for k = 13 down to 2: Horner order. */
    private static final double[] EXP = {0x1.6124613a86d09p-33, 0x1.1eed8eff8d898p-29, 0x1.ae64567f544e4p-26,
        0x1.27e4fb7789f5cp-22, 0x1.71de3a556c734p-19, 0x1.a01a01a01a01ap-16, 0x1.a01a01a01a01ap-13,
        0x1.6c16c16c16c17p-10, 0x1.1111111111111p-7, 0x1.5555555555555p-5, 0x1.5555555555555p-3, 0x1.0p-1};
    /** 1/(2k+1) for k = 11 down to 1: Horner order. */
    private static final double[] LOG = {0x1.642c8590b2164p-5, 0x1.8618618618618p-5, 0x1.af286bca1af28p-5,
        0x1.e1e1e1e1e1e1ep-5, 0x1.1111111111111p-4, 0x1.3b13b13b13b14p-4, 0x1.745d1745d1746p-4,
        0x1.c71c71c71c71cp-4, 0x1.2492492492492p-3, 0x1.999999999999ap-3, 0x1.5555555555555p-2};

    private PortableMath() {
    }

    /** e^x: {@code x = k ln2 + r}, {@code |r| <= ln2/2}, a degree-13 Taylor polynomial, scaled by 2^k. */
    public static double exp(double x) {
        if (Double.isNaN(x)) {
            return x;
        }
        if (x > 709.0) {
            return Double.POSITIVE_INFINITY;
        }
        if (x < -745.0) {
            return 0.0;
        }
        double k = Math.rint(x * INV_LN2);
        double r = (x - k * LN2_HI) - k * LN2_LO;
        double p = EXP[0];
        for (int i = 1; i < EXP.length; i++) {
            p = p * r + EXP[i];
        }
        p = p * r + 1.0;
        p = p * r + 1.0;
        return Math.scalb(p, (int) k);
    }

    /**
     * tanh of a float32, rounded to float32: {@code x} itself below 2^-12 in magnitude (the cubic
     * term is under half a float32 unit there), {@code sign(x)} above 20, else
     * {@code (e - 1) / (e + 1)} with {@code e = exp(2x)} in double.
     */
    public static float tanh(float x) {
        float size = Math.abs(x);
        if (!(size >= 0x1p-12f)) {
            return x; // also NaN
        }
        if (size > 20.0f) {
            return Math.copySign(1.0f, x);
        }
        double e = exp(2.0 * x);
        return (float) ((e - 1.0) / (e + 1.0));
    }

    /**
     * ln x for positive normal x: {@code x = m 2^e} with {@code m} in [sqrt(1/2), sqrt(2)),
     * {@code ln m = 2 atanh(f)}, {@code f = (m - 1)/(m + 1)}, by its series to f^23.
     */
    public static double log(double x) {
        if (Double.isNaN(x) || x < 0.0) {
            return Double.NaN;
        }
        if (x == 0.0) {
            return Double.NEGATIVE_INFINITY;
        }
        if (x == Double.POSITIVE_INFINITY) {
            return x;
        }
        int e = Math.getExponent(x);
        if (e < Double.MIN_EXPONENT) {
            // Subnormal: scale into the normal range first (exact).
            x = Math.scalb(x, 64);
            e = Math.getExponent(x) - 64;
            x = Math.scalb(x, -64);
        }
        double m = Math.scalb(x, -e);
        if (m > SQRT2) {
            m = m * 0.5;
            e = e + 1;
        }
        double f = (m - 1.0) / (m + 1.0);
        double s = f * f;
        double p = LOG[0];
        for (int i = 1; i < LOG.length; i++) {
            p = p * s + LOG[i];
        }
        p = p * s + 1.0;
        double de = e;
        return de * LN2_HI + (de * LN2_LO + (f + f) * p);
    }
}
