package dev.amalgam.executor;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The warm-up drives the real kernels (a wrong call would throw here) and leaks no chunk memory. */
class KernelWarmupTest {

    @Test
    void runsTheKernelsAndReleasesEverything() {
        assertDoesNotThrow(() -> assertEquals(3, KernelWarmup.exercise(3, () -> false)));
    }

    @Test
    void aMergeTooSmallToGainFromItEndsTheWarmUpAndALargeOneDoesNot() throws InterruptedException {
        Thread warmup = KernelWarmup.start();
        KernelWarmup.stopUnlessWorthwhile(KernelWarmup.WORTHWHILE_BYTES);
        Thread.sleep(200);
        assertTrue(warmup.isAlive(), "a large merge keeps the warm-up (400 rounds take seconds)");
        KernelWarmup.stopUnlessWorthwhile(KernelWarmup.WORTHWHILE_BYTES - 1);
        warmup.join(30_000);
        assertFalse(warmup.isAlive(), "a small merge ends it after the current round");
    }
}
