package dev.amalgam.stats;

import dev.amalgam.kernels.ExactSum;

/** METHODS.md's L1 rescale: {@code s = sum|d| / sum|kept d|}, 1 where either sum is under 1e-7. */
final class RescaleFactor {
    private RescaleFactor() {
    }

    static float of(ExactSum all, ExactSum kept) {
        float a = all.toFloat();
        float k = kept.toFloat();
        return a < 1e-7f || k < 1e-7f ? 1.0f : a / k;
    }
}
