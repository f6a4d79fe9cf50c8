package dev.amalgam.kernels;

/**
 * The two OCP FP8 formats as lookup tables: every one of the 256 bytes decodes exactly to a
 * float32, so a table is both the fastest and the most obviously correct decoder.
 */
public final class Float8 {
    private static final float[] E4M3 = new float[256];
    private static final float[] E5M2 = new float[256];

    static {
        for (int b = 0; b < 256; b++) {
            E4M3[b] = e4m3(b);
            E5M2[b] = e5m2(b);
        }
    }

    private Float8() {
    }

    static float[] table(Dtype dtype) {
        return switch (dtype) {
            case F8_E4M3 -> E4M3;
            case F8_E5M2 -> E5M2;
            default -> throw new IllegalArgumentException(dtype + " is not an FP8 dtype");
        };
    }

    public static float decode(Dtype dtype, byte b) {
        return table(dtype)[b & 0xff];
    }

    /** The largest finite value: 448 (E4M3), 57344 (E5M2). */
    public static float max(Dtype dtype) {
        return switch (dtype) {
            case F8_E4M3 -> 448.0f;
            case F8_E5M2 -> 57344.0f;
            default -> throw new IllegalArgumentException(dtype + " is not an FP8 dtype");
        };
    }

    /**
     * The byte nearest to {@code f}, ties to the even byte (round to nearest even, as a cast does),
     * saturating at the largest finite value: a block's values are scaled into range first, and
     * a scale rounded to a narrower type may leave one a hair outside. NaN stays NaN.
     */
    public static byte encode(Dtype dtype, float f) {
        int mantissaBits = dtype == Dtype.F8_E4M3 ? 3 : 2;
        int bias = dtype == Dtype.F8_E4M3 ? 7 : 15;
        int sign = Float.floatToRawIntBits(f) < 0 ? 0x80 : 0;
        if (Float.isNaN(f)) {
            return (byte) (dtype == Dtype.F8_E4M3 ? 0x7f : 0x7e);
        }
        double a = Math.abs((double) f);
        double max = max(dtype);
        if (a >= max) {
            return (byte) (sign | (dtype == Dtype.F8_E4M3 ? 0x7e : 0x7b));
        }
        int minExponent = 1 - bias;
        int code;
        if (a < Math.scalb(1.0, minExponent)) {
            // Subnormals are multiples of 2^(minExponent - mantissaBits); 2^mantissaBits rounds up to the smallest normal.
            code = (int) Math.rint(Math.scalb(a, mantissaBits - minExponent));
        } else {
            int exponent = Math.getExponent(a);
            int mantissa = (int) Math.rint(Math.scalb(a, mantissaBits - exponent)) - (1 << mantissaBits);
            // A mantissa that rounds up to 2^mantissaBits carries into the exponent: the sum does it.
            code = ((exponent + bias) << mantissaBits) + mantissa;
        }
        return (byte) (sign | code);
    }

    /** E4M3 "fn": bias 7, no infinities, S.1111.111 is NaN; the largest finite value is 448. */
    private static float e4m3(int b) {
        float sign = (b & 0x80) != 0 ? -1.0f : 1.0f;
        int exponent = (b >>> 3) & 0xf;
        int mantissa = b & 0x7;
        if (exponent == 0xf && mantissa == 0x7) {
            return Float.NaN;
        }
        if (exponent == 0) {
            return sign * Math.scalb((float) mantissa, -9);
        }
        return sign * Math.scalb((float) (8 + mantissa), exponent - 10);
    }

    /** E5M2: bias 15, IEEE-like, with infinities and NaNs at exponent 31. */
    private static float e5m2(int b) {
        float sign = (b & 0x80) != 0 ? -1.0f : 1.0f;
        int exponent = (b >>> 2) & 0x1f;
        int mantissa = b & 0x3;
        if (exponent == 0x1f) {
            return mantissa == 0 ? sign * Float.POSITIVE_INFINITY : Float.NaN;
        }
        if (exponent == 0) {
            return sign * Math.scalb((float) mantissa, -16);
        }
        return sign * Math.scalb((float) (4 + mantissa), exponent - 17);
    }
}
