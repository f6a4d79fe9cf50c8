package dev.amalgam.kernels;

import org.junit.jupiter.api.Test;

import java.math.BigDecimal;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

class ExactSumTest {

    @Test
    void isTheTrueSumRoundedOnceWhateverTheGrouping() {
        SplittableRandom random = new SplittableRandom(3);
        float[] values = new float[10_000];
        BigDecimal exact = BigDecimal.ZERO;
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) (random.nextGaussian() * Math.pow(10, random.nextInt(-30, 10)));
            exact = exact.add(new BigDecimal(Math.abs(values[i])));
        }
        ExactSum whole = new ExactSum();
        for (float v : values) {
            whole.addMagnitude(v);
        }
        ExactSum merged = new ExactSum();
        for (int start = values.length; start > 0; start -= 333) {
            ExactSum part = new ExactSum();
            for (int i = Math.max(0, start - 333); i < start; i++) {
                part.addMagnitude(values[i]);
            }
            merged.merge(part);
        }
        assertEquals(exact.floatValue(), whole.toFloat());
        assertEquals(Float.floatToRawIntBits(whole.toFloat()), Float.floatToRawIntBits(merged.toFloat()));
    }

    @Test
    void subnormalsZerosAndInfinitiesAreHandled() {
        ExactSum sum = new ExactSum();
        sum.addMagnitude(Float.MIN_VALUE);
        sum.addMagnitude(-Float.MIN_VALUE);
        sum.addMagnitude(-0.0f);
        assertEquals(2 * Float.MIN_VALUE, sum.toFloat());
        sum.addMagnitude(Float.NEGATIVE_INFINITY);
        assertEquals(Float.POSITIVE_INFINITY, sum.toFloat());
        assertEquals(0.0f, new ExactSum().toFloat());
    }
}
