package dev.amalgam.executor;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;

/** The warm-up drives the real kernels (a wrong call would throw here) and leaks no chunk memory. */
class KernelWarmupTest {

    @Test
    void runsTheKernelsAndReleasesEverything() {
        assertDoesNotThrow(() -> KernelWarmup.exercise(3));
    }
}
