package dev.amalgam.kernels;

import org.apache.arrow.memory.ArrowBuf;

/** Task vectors: {@code d = x - base}, elementwise in float32. */
public final class Deltas {
    private Deltas() {
    }

    /** Writes {@code x - base} into {@code dst} ({@code dst} may be {@code x}). */
    public static void compute(ArrowBuf x, ArrowBuf base, ArrowBuf dst, int count) {
        int from = 0;
        if (Simd.ENABLED) {
            SimdKernels.delta(x, base, dst, count);
            from = SimdKernels.bound(count);
        }
        for (int j = from; j < count; j++) {
            long at = (long) j << 2;
            dst.setFloat(at, x.getFloat(at) - base.getFloat(at));
        }
    }
}
