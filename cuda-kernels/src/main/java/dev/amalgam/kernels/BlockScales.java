package dev.amalgam.kernels;

/**
 * The scales a block-quantized chunk is decoded with, already read for the chunk's rows.
 * {@link Fp8} multiplies each decoded FP8 value by its block's scale ({@code weight_scale_inv}:
 * the stored value times the scale is the weight); {@link Mxfp4} decodes packed 4-bit E2M1
 * values, 32 to a block, each block scaled by a power of two (an E8M0 exponent).
 */
public sealed interface BlockScales {

    /**
     * FP8 blocks of {@code blockRows x blockCols} over matrices of {@code matrixRows x cols} (a
     * 3-D tensor is a stack of matrices, each with its own block grid).
     *
     * @param scales        float32 scales of the grid rows {@code [firstGridRow, ...)}, row-major,
     *                      {@code gridCols} per grid row
     * @param chunkStart    the flat index of the chunk's first element
     */
    record Fp8(float[] scales, long firstGridRow, int gridCols, int blockRows, int blockCols, long matrixRows,
               int cols, long chunkStart) implements BlockScales {

        /** Grid rows per matrix. */
        public long gridRowsPerMatrix() {
            return (matrixRows + blockRows - 1) / blockRows;
        }

        /** The grid row of a tensor row (over all matrices). */
        public long gridRow(long row) {
            return row / matrixRows * gridRowsPerMatrix() + (row % matrixRows) / blockRows;
        }
    }

    /**
     * MXFP4: {@code exponents[k]} is the E8M0 scale (2^(e - 127)) of the chunk's k-th block of 32
     * values; the chunk starts on a block boundary.
     */
    record Mxfp4(byte[] exponents) implements BlockScales {
        public static final int BLOCK = 32;
    }

    /** E2M1 values by nibble: sign bit 3, then 0, 0.5, 1, 1.5, 2, 3, 4, 6. */
    float[] FP4 = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,
            -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

    /** Decodes {@code count} elements of {@code src} (raw stored bytes) into float32 {@code dst}. */
    static void decode(BlockScales scales, org.apache.arrow.memory.ArrowBuf src, Dtype dtype,
                       org.apache.arrow.memory.ArrowBuf dst, int count) {
        if (scales instanceof Mxfp4 m) {
            byte[] e = m.exponents();
            for (int block = 0; block * Mxfp4.BLOCK < count; block++) {
                // 2^(e - 127) exactly; e = 255 is NaN in E8M0.
                int biased = e[block] & 0xff;
                float scale = biased == 255 ? Float.NaN : Math.scalb(1.0f, biased - 127);
                int first = block * Mxfp4.BLOCK;
                int last = Math.min(count, first + Mxfp4.BLOCK);
                for (int i = first; i < last; i += 2) {
                    int packed = src.getByte(i >>> 1) & 0xff;
                    // Low nibble first, as the packers and transformers' unpacking agree.
                    dst.setFloat((long) i << 2, FP4[packed & 0xf] * scale);
                    if (i + 1 < last) {
                        dst.setFloat((long) (i + 1) << 2, FP4[packed >>> 4] * scale);
                    }
                }
            }
            return;
        }
        Fp8 f = (Fp8) scales;
        ElementCodec.decode(src, dtype, dst, count);
        long row = f.chunkStart() / f.cols();
        int col = (int) (f.chunkStart() % f.cols());
        int i = 0;
        while (i < count) {
            int run = Math.min(count - i, f.cols() - col);
            int base = (int) (f.gridRow(row) - f.firstGridRow()) * f.gridCols();
            for (int k = 0; k < run; k++) {
                long at = (long) (i + k) << 2;
                dst.setFloat(at, dst.getFloat(at) * f.scales()[base + (col + k) / f.blockCols()]);
            }
            i += run;
            row++;
            col = 0;
        }
    }
}
