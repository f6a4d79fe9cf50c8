package dev.amalgam.kernels;

import org.junit.jupiter.api.Test;

import java.math.BigDecimal;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Encoding rounds to nearest, ties to even, checked against an exhaustive nearest-value search. */
class ElementCodecTest {

    @Test
    void everyHalfDecodesAndEncodesBackToItself() {
        for (int h = 0; h < 0x10000; h++) {
            float f = ElementCodec.halfToFloat((short) h);
            if (Float.isNaN(f)) {
                assertTrue(Float.isNaN(ElementCodec.halfToFloat(ElementCodec.floatToHalf(f))));
                continue;
            }
            assertEquals((short) h, ElementCodec.floatToHalf(f), "half 0x" + Integer.toHexString(h));
        }
    }

    @Test
    void everyBfloat16DecodesAndEncodesBackToItself() {
        for (int h = 0; h < 0x10000; h++) {
            float f = ElementCodec.bfloat16ToFloat((short) h);
            if (Float.isNaN(f)) {
                assertTrue(Float.isNaN(ElementCodec.bfloat16ToFloat(ElementCodec.floatToBfloat16(f))));
                continue;
            }
            assertEquals((short) h, ElementCodec.floatToBfloat16(f));
        }
    }

    @Test
    void halfEncodingIsTheNearestHalfWithTiesToEven() {
        SplittableRandom random = new SplittableRandom(1);
        for (int i = 0; i < 200_000; i++) {
            float f = randomFloatInHalfRange(random);
            assertEquals(nearest(f, true), ElementCodec.floatToHalf(f), "float " + f + " bits 0x"
                    + Integer.toHexString(Float.floatToRawIntBits(f)));
        }
    }

    @Test
    void bfloat16EncodingIsTheNearestWithTiesToEven() {
        SplittableRandom random = new SplittableRandom(2);
        for (int i = 0; i < 200_000; i++) {
            float f = Float.intBitsToFloat(random.nextInt() & 0xbf7fffff);
            assertEquals(nearest(f, false), ElementCodec.floatToBfloat16(f));
        }
    }

    @Test
    void exactHalfwayValuesRoundToEven() {
        // 1 + 2^-11 lies halfway between half 1.0 (even) and 1.0009765625 (odd): rounds down.
        assertEquals((short) 0x3c00, ElementCodec.floatToHalf(1.0f + 0x1.0p-11f));
        // 1 + 3 * 2^-11 lies halfway between an odd and an even mantissa: rounds up to even.
        assertEquals((short) 0x3c02, ElementCodec.floatToHalf(1.0f + 3 * 0x1.0p-11f));
        assertEquals((short) 0x7c00, ElementCodec.floatToHalf(65520.0f));
        assertEquals((short) 0x7bff, ElementCodec.floatToHalf(65519.99f));
        assertEquals((short) 0x0000, ElementCodec.floatToHalf(0x1.0p-25f));
        assertEquals((short) 0x0001, ElementCodec.floatToHalf(0x1.0p-25f + 0x1.0p-40f));
        assertEquals((short) 0x3f80, ElementCodec.floatToBfloat16(1.0f + 0x1.0p-8f));
        assertEquals((short) 0x3f82, ElementCodec.floatToBfloat16(1.0f + 3 * 0x1.0p-8f));
    }

    private static float randomFloatInHalfRange(SplittableRandom random) {
        // Exponents from deep subnormal to just past the largest half, both signs.
        int exponent = 100 + random.nextInt(45);
        int bits = (random.nextBoolean() ? 0x80000000 : 0) | (exponent << 23) | random.nextInt(1 << 23);
        return Float.intBitsToFloat(bits);
    }

    /**
     * The encoding whose decoded value is nearest to f, ties to the even bit pattern: a binary
     * search over the (monotone) positive encodings for the two neighbours of |f|, compared
     * exactly in BigDecimal.
     */
    private static short nearest(float f, boolean half) {
        int sign = (Float.floatToRawIntBits(f) >>> 16) & 0x8000;
        BigDecimal target = new BigDecimal(Math.abs(f));
        int infinity = half ? 0x7c00 : 0x7f80;
        int lo = 0;
        int hi = infinity - 1;
        while (lo < hi) {
            int mid = (lo + hi + 1) >>> 1;
            if (new BigDecimal(value(mid, half)).compareTo(target) <= 0) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        int up = lo + 1;
        BigDecimal below = target.subtract(new BigDecimal(value(lo, half)));
        BigDecimal above;
        if (up == infinity) {
            // Past the largest finite value, infinity sits where the next value would be.
            double max = value(lo, half);
            double step = max - value(lo - 1, half);
            above = new BigDecimal(max + step).subtract(target);
        } else {
            above = new BigDecimal(value(up, half)).subtract(target);
        }
        int c = below.compareTo(above);
        int chosen = c < 0 ? lo : c > 0 ? up : ((lo & 1) == 0 ? lo : up);
        return (short) (sign | chosen);
    }

    private static double value(int bits, boolean half) {
        return half ? ElementCodec.halfToFloat((short) bits) : ElementCodec.bfloat16ToFloat((short) bits);
    }
}
