package dev.amalgam.kernels;

import org.apache.arrow.memory.ArrowBuf;

/**
 * LoRA on read, on the CPU: each value of a chunk becomes {@code v + scale * d} with
 * {@code d = sum_k B[p, k] * A[k, q]} summed in float32 from 0 in ascending {@code k}, then
 * rounded to the stored dtype (round to nearest even) and read back, as the adapted weight would
 * be stored. The CUDA kernel {@code amalgam_low_rank} does the same operations in the same order.
 */
public final class LowRankKernel {
    private LowRankKernel() {
    }

    public static void apply(ArrowBuf values, LowRankFactors f, int count, long chunkStart) {
        int rank = f.rank();
        float[] a = f.a();
        float[] b = f.b();
        for (int j = 0; j < count; j++) {
            long g = chunkStart + j;
            long row = g / f.cols();
            long col = g % f.cols();
            long p = f.transposed() ? col : row;
            long q = f.transposed() ? row : col;
            int bAt = (int) ((p - f.bFirst()) * rank);
            float d = 0.0f;
            for (int k = 0; k < rank; k++) {
                d += b[bAt + k] * a[(int) ((long) k * f.aCols() + q)];
            }
            long at = (long) j << 2;
            values.setFloat(at, roundTrip(values.getFloat(at) + f.scale() * d, f.roundTo()));
        }
    }

    /** {@code v} as {@code dtype} holds it. */
    static float roundTrip(float v, Dtype dtype) {
        return switch (dtype) {
            case BF16 -> ElementCodec.bfloat16ToFloat(ElementCodec.floatToBfloat16(v));
            case F16 -> ElementCodec.halfToFloat(ElementCodec.floatToHalf(v));
            default -> v;
        };
    }
}
