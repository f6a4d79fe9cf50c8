package dev.amalgam.kernels;

import org.apache.arrow.memory.ArrowBuf;

/**
 * Converts stored elements to float32 and back. Decoding is exact for every supported dtype;
 * encoding rounds to nearest, ties to even, as PyTorch's casts do, so the same float32 result
 * gives the same stored bytes on every backend.
 */
public final class ElementCodec {
    private ElementCodec() {
    }

    /** Decodes {@code count} little-endian elements of {@code dtype} from {@code src} into float32 {@code dst}. */
    public static void decode(ArrowBuf src, Dtype dtype, ArrowBuf dst, int count) {
        decode(Simd.ENABLED, src, dtype, dst, count);
    }

    static void decode(boolean simd, ArrowBuf src, Dtype dtype, ArrowBuf dst, int count) {
        switch (dtype) {
            case F32 -> dst.setBytes(0, src, 0, (long) count * 4);
            case BF16 -> {
                int from = 0;
                if (simd) {
                    SimdKernels.decodeBf16(src, dst, count);
                    from = SimdKernels.intBound(count);
                }
                for (int i = from; i < count; i++) {
                    dst.setInt((long) i << 2, (src.getShort((long) i << 1) & 0xffff) << 16);
                }
            }
            case F16 -> {
                for (int i = 0; i < count; i++) {
                    dst.setFloat((long) i << 2, halfToFloat(src.getShort((long) i << 1)));
                }
            }
            case F8_E4M3, F8_E5M2 -> {
                float[] table = Float8.table(dtype);
                for (int i = 0; i < count; i++) {
                    dst.setFloat((long) i << 2, table[src.getByte(i) & 0xff]);
                }
            }
            case U8 -> throw new IllegalArgumentException("U8 holds packed MXFP4 blocks; decode it with its scales");
        }
    }

    /** Encodes {@code count} float32 values from {@code src} as {@code dtype} into {@code dst}. */
    public static void encode(ArrowBuf src, Dtype dtype, ArrowBuf dst, int count) {
        encode(Simd.ENABLED, src, dtype, dst, count);
    }

    static void encode(boolean simd, ArrowBuf src, Dtype dtype, ArrowBuf dst, int count) {
        switch (dtype) {
            case F32 -> dst.setBytes(0, src, 0, (long) count * 4);
            case BF16 -> {
                int from = 0;
                if (simd) {
                    SimdKernels.encodeBf16(src, dst, count);
                    from = SimdKernels.intBound(count);
                }
                for (int i = from; i < count; i++) {
                    dst.setShort((long) i << 1, floatToBfloat16(src.getFloat((long) i << 2)));
                }
            }
            case F16 -> {
                for (int i = 0; i < count; i++) {
                    dst.setShort((long) i << 1, floatToHalf(src.getFloat((long) i << 2)));
                }
            }
            case F8_E4M3, F8_E5M2, U8 -> throw new IllegalArgumentException(dtype.safetensorsName()
                    + " is an input layout; merge output is written as F32, F16 or BF16");
        }
    }

    public static float bfloat16ToFloat(short h) {
        return Float.intBitsToFloat((h & 0xffff) << 16);
    }

    public static short floatToBfloat16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if ((bits & 0x7fffffff) > 0x7f800000) {
            // Keep NaN a NaN (quiet) rather than letting rounding carry it into infinity.
            return (short) ((bits >>> 16) | 0x0040);
        }
        int rounded = bits + 0x7fff + ((bits >>> 16) & 1);
        return (short) (rounded >>> 16);
    }

    public static float halfToFloat(short h) {
        int bits = h & 0xffff;
        int sign = (bits & 0x8000) << 16;
        int exponent = (bits >>> 10) & 0x1f;
        int mantissa = bits & 0x3ff;
        if (exponent == 0x1f) {
            return Float.intBitsToFloat(sign | 0x7f800000 | (mantissa << 13));
        }
        if (exponent == 0) {
            // Subnormal half: mantissa * 2^-24, exact in float32.
            float magnitude = mantissa * 0x1.0p-24f;
            return sign == 0 ? magnitude : -magnitude;
        }
        return Float.intBitsToFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
    }

    public static short floatToHalf(float f) {
        int bits = Float.floatToRawIntBits(f);
        int sign = (bits >>> 16) & 0x8000;
        int abs = bits & 0x7fffffff;
        if (abs > 0x7f800000) {
            return (short) (sign | 0x7e00 | ((abs >>> 13) & 0x3ff));
        }
        if (abs >= 0x47800000) {
            return (short) (sign | 0x7c00);
        }
        if (abs >= 0x38800000) {
            // Normal half. Rebias the exponent, then round at bit 13; a carry out of the
            // mantissa correctly bumps the exponent (and reaches infinity above 65504).
            int v = abs - (112 << 23);
            v = v + 0xfff + ((v >>> 13) & 1);
            return (short) (sign | (v >>> 13));
        }
        int exponent = abs >>> 23;
        if (exponent < 102) {
            return (short) sign;
        }
        int mantissa = (abs & 0x7fffff) | 0x800000;
        int shift = 126 - exponent;
        int n = mantissa >>> shift;
        int rem = mantissa & ((1 << shift) - 1);
        int half = 1 << (shift - 1);
        if (rem > half || (rem == half && (n & 1) == 1)) {
            n++;
        }
        return (short) (sign | n);
    }
}
