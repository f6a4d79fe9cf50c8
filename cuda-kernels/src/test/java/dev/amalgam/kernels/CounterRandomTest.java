package dev.amalgam.kernels;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CounterRandomTest {

    @Test
    void aDrawDependsOnlyOnSeedTensorModelAndIndex() {
        long key = CounterRandom.streamKey(5, "model.layers.0.mlp.up_proj.weight", 1);
        float first = CounterRandom.uniform(key, 123_456_789L);
        for (int i = 0; i < 1000; i++) {
            CounterRandom.uniform(key, i);
        }
        assertEquals(first, CounterRandom.uniform(CounterRandom.streamKey(5, "model.layers.0.mlp.up_proj.weight", 1),
                123_456_789L));
    }

    @Test
    void seedTensorAndModelEachChangeTheStream() {
        long key = CounterRandom.streamKey(5, "a", 0);
        assertNotEquals(key, CounterRandom.streamKey(6, "a", 0));
        assertNotEquals(key, CounterRandom.streamKey(5, "b", 0));
        assertNotEquals(key, CounterRandom.streamKey(5, "a", 1));
    }

    @Test
    void drawsAreUniformInTheUnitInterval() {
        long key = CounterRandom.streamKey(0, "t", 0);
        int n = 1_000_000;
        double sum = 0;
        int below = 0;
        for (int i = 0; i < n; i++) {
            float u = CounterRandom.uniform(key, i);
            assertTrue(u >= 0.0f && u < 1.0f);
            sum += u;
            below += u < 0.3f ? 1 : 0;
        }
        // Mean 1/2 with standard deviation sqrt(1/12n); 6 sigma.
        assertEquals(0.5, sum / n, 6 * Math.sqrt(1.0 / 12 / n));
        assertEquals(0.3, (double) below / n, 6 * Math.sqrt(0.3 * 0.7 / n));
    }

    @Test
    void theIntegerKeepLimitAgreesWithTheFloatComparison() {
        float[] densities = {0.0f, 1e-9f, 0.1f, 0.3f, 0.5f, 0.6f, 0.7f, 0.9999999f, 1.0f, 0x1.0p-24f, 3 * 0x1.0p-24f};
        java.util.SplittableRandom random = new java.util.SplittableRandom(9);
        for (float density : densities) {
            long limit = CounterRandom.keepLimit(density);
            for (int t = 0; t < 20_000; t++) {
                long k = t < 10 ? limit - 5 + t : random.nextLong(1L << 24);
                if (k < 0 || k >= (1L << 24)) {
                    continue;
                }
                assertEquals(k * 0x1.0p-24f < density, k < limit, "density " + density + " draw " + k);
            }
        }
        long key = CounterRandom.streamKey(1, "x", 0);
        for (long i = 0; i < 1000; i++) {
            assertEquals(CounterRandom.uniform(key, i), CounterRandom.draw(key, i) * 0x1.0p-24f);
        }
    }
}
