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
        if (!f.transposed()) {
            applyByRows(values, f, count, chunkStart);
            return;
        }
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

    /**
     * The same sums row segment by row segment: for each {@code k}, {@code B[p, k]} times the
     * segment of row {@code k} of {@code A} is added into one accumulator per column, a loop the
     * JIT vectorizes; each element still sums its products from 0 in ascending {@code k}.
     */
    private static void applyByRows(ArrowBuf values, LowRankFactors f, int count, long chunkStart) {
        int rank = f.rank();
        int cols = f.cols();
        float[] a = f.a();
        float[] b = f.b();
        float scale = f.scale();
        float[] acc = new float[Math.min(cols, count)];
        int j = 0;
        while (j < count) {
            long g = chunkStart + j;
            long row = g / cols;
            int c0 = (int) (g % cols);
            int len = (int) Math.min(cols - c0, count - j);
            java.util.Arrays.fill(acc, 0, len, 0.0f);
            int bAt = (int) ((row - f.bFirst()) * rank);
            for (int k = 0; k < rank; k++) {
                float bk = b[bAt + k];
                int aAt = k * f.aCols() + c0;
                for (int c = 0; c < len; c++) {
                    acc[c] += bk * a[aAt + c];
                }
            }
            for (int c = 0; c < len; c++) {
                long at = (long) (j + c) << 2;
                values.setFloat(at, roundTrip(values.getFloat(at) + scale * acc[c], f.roundTo()));
            }
            j += len;
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
