package dev.amalgam.kernels;

/**
 * What a chunk of a LoRA-adapted weight needs to be read: {@code W + scale * B A}, rounded to the
 * weight's stored dtype. For the element at (row, col) of {@code W} as stored (row-major, {@code cols}
 * per row), {@code p} is its row of {@code B} and {@code q} its column of {@code A}; both swap when
 * the weight is stored transposed ({@code fan_in_fan_out}).
 *
 * @param a       {@code A} whole, row-major {@code [rank, aCols]}
 * @param b       the rows {@code [bFirst, bFirst + b.length / rank)} of {@code B}, row-major {@code [*, rank]}
 * @param roundTo the weight's stored dtype: the adapted value is rounded to it and read back
 */
public record LowRankFactors(float[] a, int rank, int aCols, float[] b, long bFirst, float scale, boolean transposed,
                             int cols, Dtype roundTo) {
}
