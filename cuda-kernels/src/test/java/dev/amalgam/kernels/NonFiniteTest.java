package dev.amalgam.kernels;

import org.apache.arrow.memory.ArrowBuf;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The bit-pattern count agrees with decoding every value and asking whether it is finite. */
class NonFiniteTest {
    private static final BufferAllocator ALLOCATOR = new RootAllocator();

    @AfterAll
    static void close() {
        ALLOCATOR.close();
    }

    /** The reference: decode each value the way the kernels do, then Float.isFinite. */
    private static long decodedCount(ArrowBuf raw, Dtype dtype, int count) {
        long n = 0;
        for (int i = 0; i < count; i++) {
            float v = switch (dtype) {
                case F32 -> raw.getFloat(4L * i);
                case F16 -> ElementCodec.halfToFloat(raw.getShort(2L * i));
                case BF16 -> ElementCodec.bfloat16ToFloat(raw.getShort(2L * i));
                case F8_E4M3, F8_E5M2 -> Float8.decode(dtype, raw.getByte(i));
                case U8 -> 0f;
            };
            n += Float.isFinite(v) ? 0 : 1;
        }
        return n;
    }

    @ParameterizedTest
    @EnumSource(value = Dtype.class, names = {"F16", "BF16", "F8_E4M3", "F8_E5M2"})
    void everyBitPatternIsClassifiedAsItsDecodedValue(Dtype dtype) {
        int patterns = 1 << (8 * dtype.byteSize());
        try (ArrowBuf raw = ALLOCATOR.buffer((long) patterns * dtype.byteSize())) {
            for (int i = 0; i < patterns; i++) {
                if (dtype.byteSize() == 2) {
                    raw.setShort(2L * i, (short) i);
                } else {
                    raw.setByte(i, (byte) i);
                }
            }
            assertEquals(decodedCount(raw, dtype, patterns), NonFinite.count(raw, dtype, patterns, true), "SIMD");
            assertEquals(decodedCount(raw, dtype, patterns), NonFinite.count(raw, dtype, patterns, false), "scalar");
        }
    }

    @ParameterizedTest
    @EnumSource(value = Dtype.class, names = {"F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"})
    void runsOfSpecialValuesAtEveryAlignmentAndTailAreCountedExactly(Dtype dtype) {
        SplittableRandom random = new SplittableRandom(7);
        // Past two AVX-512 vectors of every width, so the SIMD loop, the word loop and the lane tail all run.
        for (int count = 0; count < 300; count++) {
            try (ArrowBuf raw = ALLOCATOR.buffer(Math.max(1, (long) count * dtype.byteSize()))) {
                for (int i = 0; i < count; i++) {
                    int pick = random.nextInt(6);
                    float f = switch (pick) {
                        case 0 -> Float.NaN;
                        case 1 -> Float.POSITIVE_INFINITY;
                        case 2 -> Float.NEGATIVE_INFINITY;
                        case 3 -> 0f;
                        case 4 -> Float.MIN_VALUE;
                        default -> (float) random.nextGaussian();
                    };
                    switch (dtype) {
                        case F32 -> raw.setFloat(4L * i, pick == 4 ? Float.intBitsToFloat(0x7F7FFFFF) : f);
                        case F16 -> raw.setShort(2L * i, ElementCodec.floatToHalf(f));
                        case BF16 -> raw.setShort(2L * i, ElementCodec.floatToBfloat16(f));
                        default -> raw.setByte(i, pick < 3 ? (byte) (dtype == Dtype.F8_E4M3 ? 0x7F : 0xFC)
                                : (byte) random.nextInt(256));
                    }
                }
                assertEquals(decodedCount(raw, dtype, count), NonFinite.count(raw, dtype, count, true),
                        dtype + " x " + count + ", SIMD");
                assertEquals(decodedCount(raw, dtype, count), NonFinite.count(raw, dtype, count, false),
                        dtype + " x " + count + ", scalar");
            }
        }
    }

    @Test
    void aNonFiniteFp8ScaleMakesItsBlockNonFiniteAndAnOverflowingProductCounts() {
        int cols = 4;
        try (ArrowBuf raw = ALLOCATOR.buffer(8)) {
            for (int i = 0; i < 8; i++) {
                raw.setByte(i, Float8.encode(Dtype.F8_E4M3, 1.0f));
            }
            raw.setByte(7, Float8.encode(Dtype.F8_E4M3, 448f));
            // Two rows of four, blocks of 1 x 2: scales per row [finite, NaN] and [finite, 1e36].
            BlockScales.Fp8 scales = new BlockScales.Fp8(new float[]{1f, Float.NaN, 1f, 1e36f}, 0, 2, 1, 2, 2, cols, 0);
            // Row 0: elements 2, 3 under NaN; row 1: element 7 is 448 * 1e36, past float32.
            assertEquals(3, NonFinite.countScaled(scales, raw, Dtype.F8_E4M3, 8));
            BlockScales.Fp8 finite = new BlockScales.Fp8(new float[]{1f, 2f, 3f, 4f}, 0, 2, 1, 2, 2, cols, 0);
            assertEquals(0, NonFinite.countScaled(finite, raw, Dtype.F8_E4M3, 8));
        }
    }

    @Test
    void mxfp4BlocksWithANanScaleOrAnOverflowingScaleCount() {
        try (ArrowBuf raw = ALLOCATOR.buffer(48)) {
            for (int i = 0; i < 48; i++) {
                raw.setByte(i, (byte) 0x7F); // nibbles 6.0 (0xF is -6.0) and 6.0 (0x7)
            }
            // Three blocks of 32: an ordinary scale, NaN (255), and 2^127 (254), where 6 * 2^127 overflows.
            BlockScales.Mxfp4 scales = new BlockScales.Mxfp4(new byte[]{(byte) 127, (byte) 255, (byte) 254});
            assertEquals(64, NonFinite.countScaled(scales, raw, Dtype.U8, 96));
        }
    }
}
