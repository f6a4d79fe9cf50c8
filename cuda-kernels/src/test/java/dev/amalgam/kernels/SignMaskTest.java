package dev.amalgam.kernels;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The branch-free sign tests of the merge kernel agree with the plain float comparisons they replace. */
class SignMaskTest {

    private static List<Float> values() {
        List<Float> v = new ArrayList<>(List.of(0.0f, -0.0f, Float.MIN_VALUE, -Float.MIN_VALUE, Float.MIN_NORMAL,
                -Float.MIN_NORMAL, 1.0f, -1.0f, Float.MAX_VALUE, -Float.MAX_VALUE, Float.POSITIVE_INFINITY,
                Float.NEGATIVE_INFINITY, Float.NaN, Float.intBitsToFloat(0xffc00001), Float.intBitsToFloat(0x7f800001)));
        SplittableRandom random = new SplittableRandom(4);
        for (int i = 0; i < 100_000; i++) {
            v.add(Float.intBitsToFloat(random.nextInt()));
        }
        return v;
    }

    @Test
    void majorityIsNegativeExactlyWhenTheSumIsNotAtLeastZero() {
        for (float s : values()) {
            assertEquals(s >= 0.0f ? 0 : 1, TaskVectorKernel.negativeOrNaN(Float.floatToRawIntBits(s)), "sum " + s);
        }
    }

    @Test
    void agreementIsASignMatchOfANonZeroValue() {
        for (float v : values()) {
            int bits = Float.floatToRawIntBits(v);
            assertEquals(v > 0.0f ? -1 : 0, TaskVectorKernel.agreeMask(bits, 0), "positive majority, v " + v);
            assertEquals(v < 0.0f ? -1 : 0, TaskVectorKernel.agreeMask(bits, 1), "negative majority, v " + v);
        }
    }

    @Test
    void aZeroDivisorBecomesOne() {
        for (float d : values()) {
            float expected = d == 0.0f ? 1.0f : d;
            assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(TaskVectorKernel.oneIfZero(d)));
        }
    }
}
