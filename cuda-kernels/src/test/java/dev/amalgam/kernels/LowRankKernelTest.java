package dev.amalgam.kernels;

import org.apache.arrow.memory.ArrowBuf;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * LoRA on read: a chunk of {@code W + s * B A} equals the whole matrix computed the plain way
 * (every row times every column, k ascending, float32 from 0), rounded to the stored dtype, bit
 * for bit, wherever the chunk starts and ends, stored plainly or transposed (fan_in_fan_out).
 */
class LowRankKernelTest {

    @ParameterizedTest(name = "{0}, transposed {1}, chunk [{2}, +{3})")
    @CsvSource({"BF16, false, 0, 60", "BF16, false, 17, 25", "F16, true, 5, 40", "F32, true, 0, 60", "F32, false, 59, 1"})
    void aChunkOfTheAdaptedWeightEqualsTheWholeMatrix(Dtype dtype, boolean transposed, int start, int count) {
        int rows = 6;
        int cols = 10;
        int rank = 4;
        int out = transposed ? cols : rows;
        int in = transposed ? rows : cols;
        SplittableRandom random = new SplittableRandom(3);
        float[] w = new float[rows * cols];
        float[] a = new float[rank * in];
        float[] b = new float[out * rank];
        for (int j = 0; j < w.length; j++) {
            w[j] = ElementCodec.bfloat16ToFloat(ElementCodec.floatToBfloat16((float) random.nextGaussian()));
        }
        for (int j = 0; j < a.length; j++) {
            a[j] = (float) random.nextGaussian();
        }
        for (int j = 0; j < b.length; j++) {
            b[j] = j % 7 == 0 ? -0.0f : (float) random.nextGaussian() * 0.1f;
        }
        float scale = 16.0f / rank;
        // The whole (B A), [out, in], plainly.
        float[] ba = new float[out * in];
        for (int o = 0; o < out; o++) {
            for (int i = 0; i < in; i++) {
                float d = 0.0f;
                for (int k = 0; k < rank; k++) {
                    d += b[o * rank + k] * a[k * in + i];
                }
                ba[o * in + i] = d;
            }
        }
        float[] expected = new float[w.length];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                float delta = transposed ? ba[c * in + r] : ba[r * in + c];
                expected[r * cols + c] = LowRankKernel.roundTrip(w[r * cols + c] + scale * delta, dtype);
            }
        }
        long firstRow = start / cols;
        long lastRow = (start + count - 1) / cols;
        float[] bRows = b;
        long bFirst = 0;
        if (!transposed) {
            bRows = java.util.Arrays.copyOfRange(b, (int) firstRow * rank, (int) (lastRow + 1) * rank);
            bFirst = firstRow;
        }
        LowRankFactors f = new LowRankFactors(a, rank, in, bRows, bFirst, scale, transposed, cols, dtype);
        try (BufferAllocator allocator = new RootAllocator(); ArrowBuf values = allocator.buffer(count * 4L)) {
            for (int j = 0; j < count; j++) {
                values.setFloat(j * 4L, w[start + j]);
            }
            LowRankKernel.apply(values, f, count, start);
            for (int j = 0; j < count; j++) {
                assertEquals(Float.floatToRawIntBits(expected[start + j]), Float.floatToRawIntBits(values.getFloat(j * 4L)),
                        "element " + (start + j));
            }
        }
    }
}
