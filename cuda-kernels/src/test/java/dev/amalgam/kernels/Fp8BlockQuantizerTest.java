package dev.amalgam.kernels;

import org.apache.arrow.memory.ArrowBuf;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** FP8 encoding rounds to the nearest byte, ties to even, saturating; block scales follow the written rule. */
class Fp8BlockQuantizerTest {

    /** The byte of {@code f}'s sign whose value is nearest, the even byte on a tie, found by trying them all. */
    private static int nearest(Dtype dtype, float f) {
        int sign = Float.floatToRawIntBits(f) < 0 ? 0x80 : 0;
        double a = Math.abs((double) f);
        int best = 0;
        for (int code = 1; code < 0x80; code++) {
            float v = Float8.decode(dtype, (byte) code);
            if (Float.isNaN(v) || Float.isInfinite(v)) {
                continue;
            }
            double d = Math.abs(v - a);
            double bestD = Math.abs(Float8.decode(dtype, (byte) best) - a);
            if (d < bestD || (d == bestD && code % 2 == 0)) {
                best = code;
            }
        }
        return sign | best;
    }

    @ParameterizedTest
    @EnumSource(value = Dtype.class, names = {"F8_E4M3", "F8_E5M2"})
    void everyValueAndEveryMidpointEncodesToTheNearestByteTiesToEven(Dtype dtype) {
        for (int code = 0; code < 0x80; code++) {
            float v = Float8.decode(dtype, (byte) code);
            if (Float.isNaN(v) || Float.isInfinite(v)) {
                continue;
            }
            float next = Float8.decode(dtype, (byte) (code + 1));
            float[] probes = {v, -v, Math.nextUp(v), Math.nextDown(v)};
            for (float p : probes) {
                assertEquals(nearest(dtype, p), Float8.encode(dtype, p) & 0xff, dtype + " " + p);
            }
            if (!Float.isNaN(next) && !Float.isInfinite(next)) {
                float mid = (float) (((double) v + next) / 2);
                for (float p : new float[]{mid, -mid, Math.nextUp(mid), Math.nextDown(mid)}) {
                    assertEquals(nearest(dtype, p), Float8.encode(dtype, p) & 0xff, dtype + " midpoint " + p);
                }
            }
        }
        Random random = new Random(5);
        for (int i = 0; i < 200_000; i++) {
            float p = (float) (random.nextGaussian() * Math.scalb(1.0, random.nextInt(40) - 24));
            assertEquals(nearest(dtype, p), Float8.encode(dtype, p) & 0xff, dtype + " " + p);
        }
    }

    @ParameterizedTest
    @EnumSource(value = Dtype.class, names = {"F8_E4M3", "F8_E5M2"})
    void valuesBeyondTheLargestFiniteSaturateAndNaNStaysNaN(Dtype dtype) {
        float max = Float8.max(dtype);
        assertEquals(max, Float8.decode(dtype, Float8.encode(dtype, max * 1.5f)));
        assertEquals(-max, Float8.decode(dtype, Float8.encode(dtype, Float.NEGATIVE_INFINITY)));
        assertEquals(Float.NaN, Float8.decode(dtype, Float8.encode(dtype, Float.NaN)));
    }

    @Test
    void eachMatrixOfAStackHasItsOwnGridAndPartialBlocksAtItsFoot() {
        // Two matrices of 5 x 3 in blocks of 2 x 2: grid rows 0-2 in the first matrix, 3-5 in the second.
        Fp8BlockQuantizer.Grid grid = new Fp8BlockQuantizer.Grid(2, 2, 5, 3);
        assertEquals(2, grid.gridCols());
        assertEquals(3, grid.gridRowsPerMatrix());
        assertEquals(4, grid.firstRow(2));
        assertEquals(1, grid.rowsIn(2));
        assertEquals(5, grid.firstRow(3));
        assertEquals(2, grid.rowsIn(3));
        float[] values = new float[2 * 5 * 3];
        for (int i = 0; i < values.length; i++) {
            values[i] = (i % 7 - 3) * 0.25f * (i / 15 + 1);
        }
        try (BufferAllocator allocator = new RootAllocator();
             ArrowBuf in = allocator.buffer(values.length * 4L);
             ArrowBuf bytes = allocator.buffer(values.length);
             ArrowBuf scales = allocator.buffer(6 * 2 * 4L)) {
            for (int i = 0; i < values.length; i++) {
                in.setFloat(i * 4L, values[i]);
            }
            Fp8BlockQuantizer.quantize(grid, 0, 6, in, Dtype.F8_E4M3, Dtype.F32, bytes, scales);
            for (int m = 0; m < 2; m++) {
                for (int r = 0; r < 5; r++) {
                    for (int c = 0; c < 3; c++) {
                        int g = m * 3 + r / 2;
                        float amax = 0;
                        for (int rr = r / 2 * 2; rr < Math.min(5, r / 2 * 2 + 2); rr++) {
                            for (int cc = c / 2 * 2; cc < Math.min(3, c / 2 * 2 + 2); cc++) {
                                amax = Math.max(amax, Math.abs(values[m * 15 + rr * 3 + cc]));
                            }
                        }
                        float scale = amax == 0 ? 1.0f : amax / 448.0f;
                        assertEquals(scale, scales.getFloat((g * 2L + c / 2) * 4), "scale of grid row " + g);
                        int i = m * 15 + r * 3 + c;
                        assertEquals(nearest(Dtype.F8_E4M3, values[i] / scale), bytes.getByte(i) & 0xff, "value " + i);
                    }
                }
            }
        }
    }

    @Test
    void scalesRoundedToBfloat16AreTheOnesTheValuesAreDividedBy() {
        Fp8BlockQuantizer.Grid grid = new Fp8BlockQuantizer.Grid(1, 4, 1, 4);
        float[] values = {0.3f, -1.7f, 2.9f, 0.001f};
        try (BufferAllocator allocator = new RootAllocator();
             ArrowBuf in = allocator.buffer(16);
             ArrowBuf bytes = allocator.buffer(4);
             ArrowBuf scales = allocator.buffer(2)) {
            for (int i = 0; i < 4; i++) {
                in.setFloat(i * 4L, values[i]);
            }
            Fp8BlockQuantizer.quantize(grid, 0, 1, in, Dtype.F8_E4M3, Dtype.BF16, bytes, scales);
            float scale = ElementCodec.bfloat16ToFloat(scales.getShort(0));
            assertEquals(ElementCodec.bfloat16ToFloat(ElementCodec.floatToBfloat16(2.9f / 448.0f)), scale);
            for (int i = 0; i < 4; i++) {
                assertEquals(nearest(Dtype.F8_E4M3, values[i] / scale), bytes.getByte(i) & 0xff);
            }
        }
    }
}
