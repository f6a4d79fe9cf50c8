package dev.amalgam.kernels;

import org.apache.arrow.memory.ArrowBuf;

import java.nio.ByteOrder;
import java.nio.LongBuffer;

/**
 * Counts NaN and infinite values in stored bytes by their bit patterns, without decoding: a
 * value is non-finite when all its exponent bits are set (E4M3, which has no infinities, only
 * when its exponent and mantissa are). Eight bytes are tested at once, so the count costs far
 * less than the decode beside it (whole vectors at once where the Vector API is present); it
 * runs on the host buffers every backend reads into.
 */
public final class NonFinite {
    private static final long SEGMENT = 1L << 30;

    private NonFinite() {
    }

    /** Non-finite values among the first {@code count} values of {@code dtype} in {@code raw}. */
    public static long count(ArrowBuf raw, Dtype dtype, int count) {
        return count(raw, dtype, count, Simd.ENABLED);
    }

    /** The same, with the SIMD loop or without it (the tests compare both with decoding). */
    static long count(ArrowBuf raw, Dtype dtype, int count, boolean simd) {
        return switch (dtype) {
            case F32 -> lanes(raw, count, 4, 0x7F800000L, 0x7F800000L, simd);
            case F16 -> lanes(raw, count, 2, 0x7C00L, 0x7C00L, simd);
            case BF16 -> lanes(raw, count, 2, 0x7F80L, 0x7F80L, simd);
            case F8_E4M3 -> lanes(raw, count, 1, 0x7FL, 0x7FL, simd);
            case F8_E5M2 -> lanes(raw, count, 1, 0x7CL, 0x7CL, simd);
            // MXFP4's packed E2M1 values are always finite; its scales are counted with them.
            case U8 -> 0;
        };
    }

    /**
     * Non-finite values among {@code count} block-quantized values once scaled: a non-finite
     * stored value or scale, or a product past the float32 range.
     */
    public static long countScaled(BlockScales scales, ArrowBuf raw, Dtype dtype, int count) {
        if (scales instanceof BlockScales.Mxfp4 m) {
            return countMxfp4(m, raw, count);
        }
        BlockScales.Fp8 f = (BlockScales.Fp8) scales;
        boolean suspicious = count(raw, dtype, count) > 0;
        float limit = Float.MAX_VALUE / Float8.max(dtype);
        for (float s : f.scales()) {
            suspicious |= !(Math.abs(s) <= limit);
        }
        if (!suspicious) {
            return 0;
        }
        long n = 0;
        long row = f.chunkStart() / f.cols();
        int col = (int) (f.chunkStart() % f.cols());
        int i = 0;
        while (i < count) {
            int run = Math.min(count - i, f.cols() - col);
            int base = (int) (f.gridRow(row) - f.firstGridRow()) * f.gridCols();
            for (int k = 0; k < run; k++) {
                float v = Float8.decode(dtype, raw.getByte(i + k)) * f.scales()[base + (col + k) / f.blockCols()];
                n += Float.isFinite(v) ? 0 : 1;
            }
            i += run;
            row++;
            col = 0;
        }
        return n;
    }

    private static long countMxfp4(BlockScales.Mxfp4 m, ArrowBuf raw, int count) {
        long n = 0;
        byte[] e = m.exponents();
        for (int block = 0; block * BlockScales.Mxfp4.BLOCK < count; block++) {
            int biased = e[block] & 0xff;
            // 6 * 2^(e - 127) passes the float32 range from e = 253; e = 255 is NaN.
            if (biased < 253) {
                continue;
            }
            int first = block * BlockScales.Mxfp4.BLOCK;
            int last = Math.min(count, first + BlockScales.Mxfp4.BLOCK);
            float scale = biased == 255 ? Float.NaN : Math.scalb(1.0f, biased - 127);
            for (int i = first; i < last; i++) {
                int packed = raw.getByte(i >>> 1) & 0xff;
                float v = BlockScales.FP4[(i & 1) == 0 ? packed & 0xf : packed >>> 4] * scale;
                n += Float.isFinite(v) ? 0 : 1;
            }
        }
        return n;
    }

    /**
     * Counts the lanes of {@code width} bytes whose bits under {@code mask} equal {@code pattern},
     * eight bytes at a time: a lane matches when {@code (lane & mask) ^ pattern} is zero, and the
     * zero lanes of a word are found exactly (no borrow between lanes) by the high-bit test below.
     */
    private static long lanes(ArrowBuf raw, int count, int width, long mask, long pattern, boolean simd) {
        int bits = width * 8;
        long m = 0;
        long p = 0;
        long low = 0;
        for (int shift = 0; shift < 64; shift += bits) {
            m |= mask << shift;
            p |= pattern << shift;
            low |= ((1L << (bits - 1)) - 1) << shift;
        }
        long bytes = (long) count * width;
        long n = 0;
        long vectored = 0;
        // The SIMD loop takes whole vectors (a multiple of 8 bytes and of every lane width), the
        // word loop below the rest.
        while (simd && vectored < bytes) {
            int length = SimdKernels.countBound((int) Math.min(SEGMENT, bytes - vectored));
            if (length == 0) {
                break;
            }
            n += SimdKernels.countLanes(raw, vectored, length, width, mask, pattern);
            vectored += length;
        }
        long whole = vectored + ((bytes - vectored) & ~7L);
        // nioBuffer takes int lengths: whole-tensor chunks pass 2 GB, so words go in 1 GiB segments.
        for (long from = vectored; from < whole; from += SEGMENT) {
            int length = (int) Math.min(SEGMENT, whole - from);
            LongBuffer words = raw.nioBuffer(from, length).order(ByteOrder.LITTLE_ENDIAN).asLongBuffer();
            for (int w = 0, end = length >>> 3; w < end; w++) {
                long t = (words.get(w) & m) ^ p;
                long zero = ~(((t & low) + low) | t | low);
                n += Long.bitCount(zero);
            }
        }
        for (long at = whole; at < bytes; at += width) {
            long lane = switch (width) {
                case 4 -> raw.getInt(at) & 0xFFFFFFFFL;
                case 2 -> raw.getShort(at) & 0xFFFFL;
                default -> raw.getByte(at) & 0xFFL;
            };
            n += (lane & mask) == pattern ? 1 : 0;
        }
        return n;
    }
}
