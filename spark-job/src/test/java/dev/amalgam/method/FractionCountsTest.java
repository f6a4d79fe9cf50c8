package dev.amalgam.method;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/**
 * Counts and positions the research methods derive from a fraction are taken in double from the
 * config's decimal value, at sizes past 2^31 where a float32 fraction gives another count.
 */
class FractionCountsTest {
    private static final long N = 3_000_000_001L;

    @Test
    void fastFisherGraftingKeepsRoundHalfEvenOfDensityTimesN() {
        // 0.3 * N = 900,000,000.3 in double; float32(0.3) * N = 900,000,035.8.
        assertEquals(900_000_000L, FisherGraftMethod.keep(0.3, N));
        assertNotEquals(Math.rint((double) 0.3f * N), (double) FisherGraftMethod.keep(0.3, N));
        // Half to even, as Python's round: 2.5 -> 2, 3.5 -> 4; never below one entry.
        assertEquals(2L, FisherGraftMethod.keep(0.5, 5));
        assertEquals(4L, FisherGraftMethod.keep(0.5, 7));
        assertEquals(1L, FisherGraftMethod.keep(1e-12, N));
        assertEquals(0L, FisherGraftMethod.keep(0.3, 0));
    }

    @Test
    void pcbPositionsTruncateTheDoubleProducts() {
        assertEquals(300_000L, PcbMethod.lowPosition(N));                  // 300000.0001
        assertEquals(2_999_699_999L, PcbMethod.highPosition(N));           // 3000000001 * 0.9999 - 1 = 2999699999.9999
        assertEquals(2_700_000_000L, PcbMethod.dropPosition(N, 0.1));      // 2700000000.9
        assertNotEquals((long) (N * (1.0 - (double) 0.1f)), PcbMethod.dropPosition(N, 0.1));
        assertEquals(0L, PcbMethod.highPosition(1));
        assertEquals(0L, PcbMethod.dropPosition(N, 1.0));
    }
}
