package dev.amalgam.kernels;

import org.apache.arrow.memory.ArrowBuf;

/**
 * Writes merged float32 values as FP8 with one scale per {@code blockRows x blockCols} block, the
 * layout block-quantized checkpoints are published in (DeepSeek-V3's {@code weight_scale_inv}):
 * the stored byte times its block's scale is the weight. The rule is deterministic and has no
 * tuning: a block's scale is its largest magnitude divided by the format's largest finite value
 * (448 for E4M3), in float32, then rounded to the scale tensor's dtype; each value is divided by
 * that rounded scale in float32 and rounded to the nearest FP8 byte, ties to even, saturating.
 * A block of zeros gets scale 1 (any scale would do; 1 keeps a reader's reciprocal finite).
 *
 * <p>Runs on the host after any backend's merge (a GPU's output comes down as float32 first), so
 * the bytes never depend on the backend. Covers chunks of whole block rows.
 */
public final class Fp8BlockQuantizer {
    private Fp8BlockQuantizer() {
    }

    /**
     * The block grid of one tensor: matrices of {@code matrixRows x cols} (a 3-D tensor is a stack
     * of them, each with its own grid), cut into {@code blockRows x blockCols} blocks.
     */
    public record Grid(int blockRows, int blockCols, long matrixRows, int cols) {
        public int gridCols() {
            return (cols + blockCols - 1) / blockCols;
        }

        public long gridRowsPerMatrix() {
            return (matrixRows + blockRows - 1) / blockRows;
        }

        /** First tensor row of grid row {@code g} (grid rows counted over all matrices). */
        public long firstRow(long g) {
            long matrix = g / gridRowsPerMatrix();
            return matrix * matrixRows + (g % gridRowsPerMatrix()) * blockRows;
        }

        /** Tensor rows in grid row {@code g}: {@code blockRows}, fewer at the foot of a matrix. */
        public int rowsIn(long g) {
            long within = (g % gridRowsPerMatrix()) * blockRows;
            return (int) Math.min(blockRows, matrixRows - within);
        }
    }

    /**
     * Quantizes {@code gridRows} grid rows starting at grid row {@code firstGridRow}, whose values
     * are the float32 elements of {@code values} from index 0: the FP8 bytes go to {@code bytes}
     * (one per value), the scales, encoded as {@code scaleDtype}, to {@code scales}
     * ({@code gridRows * gridCols} of them, row-major).
     */
    public static void quantize(Grid grid, long firstGridRow, int gridRows, ArrowBuf values, Dtype fp8,
                                Dtype scaleDtype, ArrowBuf bytes, ArrowBuf scales) {
        float max = Float8.max(fp8);
        int gridCols = grid.gridCols();
        int cols = grid.cols();
        long rowOffset = 0;
        for (int g = 0; g < gridRows; g++) {
            int rows = grid.rowsIn(firstGridRow + g);
            for (int b = 0; b < gridCols; b++) {
                int c0 = b * grid.blockCols();
                int c1 = Math.min(cols, c0 + grid.blockCols());
                float amax = 0.0f;
                for (int r = 0; r < rows; r++) {
                    long at = (rowOffset + r) * cols;
                    for (int c = c0; c < c1; c++) {
                        float v = Math.abs(values.getFloat((at + c) << 2));
                        // NaN wins, so a block holding one gets a NaN scale rather than a silent value.
                        amax = v > amax || Float.isNaN(v) ? v : amax;
                    }
                }
                float scale = roundTo(scaleDtype, amax / max);
                if (scale == 0.0f) {
                    scale = 1.0f;
                }
                writeScale(scales, (long) g * gridCols + b, scaleDtype, scale);
                for (int r = 0; r < rows; r++) {
                    long at = (rowOffset + r) * cols;
                    for (int c = c0; c < c1; c++) {
                        bytes.setByte(at + c, Float8.encode(fp8, values.getFloat((at + c) << 2) / scale));
                    }
                }
            }
            rowOffset += rows;
        }
    }

    /** {@code f} rounded to {@code dtype} (F32, BF16 or F16) and back. */
    static float roundTo(Dtype dtype, float f) {
        return switch (dtype) {
            case F32 -> f;
            case BF16 -> ElementCodec.bfloat16ToFloat(ElementCodec.floatToBfloat16(f));
            case F16 -> ElementCodec.halfToFloat(ElementCodec.floatToHalf(f));
            default -> throw new IllegalArgumentException("scales are F32, BF16 or F16, not " + dtype);
        };
    }

    private static void writeScale(ArrowBuf scales, long index, Dtype dtype, float scale) {
        switch (dtype) {
            case F32 -> scales.setFloat(index << 2, scale);
            case BF16 -> scales.setShort(index << 1, ElementCodec.floatToBfloat16(scale));
            case F16 -> scales.setShort(index << 1, ElementCodec.floatToHalf(scale));
            default -> throw new IllegalArgumentException("scales are F32, BF16 or F16, not " + dtype);
        }
    }
}
