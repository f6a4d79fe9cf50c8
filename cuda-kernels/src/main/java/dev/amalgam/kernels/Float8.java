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
