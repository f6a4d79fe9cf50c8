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
}
