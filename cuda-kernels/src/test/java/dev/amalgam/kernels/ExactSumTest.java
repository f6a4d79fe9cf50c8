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

    @Test
    void addingABufferEqualsAddingItsValuesOneByOne() {
        SplittableRandom random = new SplittableRandom(6);
        int n = 10_003;
        try (org.apache.arrow.memory.BufferAllocator allocator = new org.apache.arrow.memory.RootAllocator();
             org.apache.arrow.memory.ArrowBuf buf = allocator.buffer(n * 4L)) {
            ExactSum one = new ExactSum();
            for (int i = 0; i < n; i++) {
                float v = i % 97 == 0 ? Float.MIN_VALUE * i : (float) (random.nextGaussian() * Math.pow(2, random.nextInt(-140, 100)));
                buf.setFloat(i * 4L, v);
                one.addMagnitude(v);
            }
            ExactSum bulk = new ExactSum();
            bulk.addMagnitudes(buf, n);
            assertEquals(Float.floatToRawIntBits(one.toFloat()), Float.floatToRawIntBits(bulk.toFloat()));
            buf.setFloat(5 * 4L, Float.NaN);
            ExactSum withNaN = new ExactSum();
            withNaN.addMagnitudes(buf, n);
            assertEquals(Float.NaN, withNaN.toFloat());
        }
    }
}
