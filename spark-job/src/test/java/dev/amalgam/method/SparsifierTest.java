package dev.amalgam.method;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Counts derived from a fraction are {@code floor(fraction * n)} with the config's decimal in
 * double, as the widely used tool computes them in Python; a float32 fraction would keep dozens
 * of entries too many once n passes 2^31.
 */
class SparsifierTest {
    private static final long PAST_2_32 = 3L * (1L << 31) + 7; // 6,442,450,951 elements

    @Test
    void magnitudeKeepCountIsTheDoubleProductPast2To32() {
        assertEquals(1_932_735_285L, Sparsifier.keepCount(0.3, PAST_2_32));
        // What float32(0.3) would give, so this test fails if the fraction is narrowed again.
        assertEquals(1_932_735_362L, (long) Math.floor((double) 0.3f * PAST_2_32));
    }

    @Test
    void magnitudeOrderPositionIsNMinusTheExactK() {
        assertArrayEquals(new long[]{PAST_2_32 - 1_932_735_285L, Sparsifier.UNUSED},
                Sparsifier.MAGNITUDE.orderPositions(PAST_2_32, 0.3, 0.0));
    }

    @Test
    void outlierBandUsesDoubleTargetAndTop() {
        long n = 2_260_000_000L;
        long target = 678_000_000L;   // floor(0.3 n)
        long top = 22_600_000L;       // floor(0.01 n)
        assertArrayEquals(new long[]{n - target - top, n - top}, Sparsifier.outlierBand(0.3, 0.01, n));
    }

    @Test
    void theQwen72bEmbeddingKeepsFifteenFewerThanFloat32Would() {
        long n = 152_064L * 8192L;
        assertEquals(373_712_486L, Sparsifier.keepCount(0.3, n));
        assertEquals(15L, (long) Math.floor((double) 0.3f * n) - Sparsifier.keepCount(0.3, n));
    }
}
