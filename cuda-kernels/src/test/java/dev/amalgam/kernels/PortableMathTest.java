package dev.amalgam.kernels;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The portable exp and log (the same steps run in CUDA) are accurate to a few units in the last
 * place of a double, over the ranges softmax and KL divergences use, and handle the edges.
 */
class PortableMathTest {

    private static void close(double expected, double actual, String what) {
        assertTrue(Math.abs(expected - actual) <= 4 * Math.ulp(expected), what + ": " + expected + " vs " + actual);
    }

    @Test
    void expIsWithinFourUlpsFromMinus700To700() {
        SplittableRandom random = new SplittableRandom(1);
        for (int i = 0; i < 200_000; i++) {
            double x = random.nextDouble(-700, 700);
            close(StrictMath.exp(x), PortableMath.exp(x), "exp(" + x + ")");
        }
        for (double x : new double[]{0.0, -0.0, 1.0, -1.0, 1e-300, -1e-10, 0.5 * Math.log(2)}) {
            close(StrictMath.exp(x), PortableMath.exp(x), "exp(" + x + ")");
        }
    }

    @Test
    void logIsWithinFourUlpsAcrossMagnitudes() {
        SplittableRandom random = new SplittableRandom(2);
        for (int i = 0; i < 200_000; i++) {
            double x = Math.scalb(random.nextDouble(0.5, 2.0), random.nextInt(-200, 200));
            close(StrictMath.log(x), PortableMath.log(x), "log(" + x + ")");
        }
        assertEquals(0.0, PortableMath.log(1.0));
        close(StrictMath.log(Double.MIN_VALUE), PortableMath.log(Double.MIN_VALUE), "log of a subnormal");
    }

    @Test
    void edgesFollowIeee() {
        assertEquals(Double.POSITIVE_INFINITY, PortableMath.exp(710));
        assertEquals(0.0, PortableMath.exp(-746));
        assertTrue(Double.isNaN(PortableMath.exp(Double.NaN)));
        assertEquals(Double.NEGATIVE_INFINITY, PortableMath.log(0.0));
        assertTrue(Double.isNaN(PortableMath.log(-1.0)));
        assertEquals(Double.POSITIVE_INFINITY, PortableMath.log(Double.POSITIVE_INFINITY));
    }
}
