package dev.amalgam.format;

import dev.amalgam.kernels.Dtype;


/**
 * An embedding (or output head) remapped to another vocabulary, read as if that checkpoint were
 * stored: output row {@code r} is a row of one of {@code sources} (the model's own embedding, or a
 * donor model's), the average of rows of several, zeros, or for padding rows past {@code vocab}
 * the mean row. Values are computed in float32 and rounded to the view's dtype, as a remapped
 * tensor of that dtype would hold them; rows are read at their offsets, so a chunk reads only its
 * own rows.
 *
 * @param cols   row length (hidden size)
 * @param vocab  rows mapped from the vocabulary; rows from {@code vocab} on are padding
 * @param source per row below {@code vocab}: an index into {@code sources}, or {@code -1 - m} for
 *               {@code mixes[m]}
 * @param row    per row below {@code vocab}: the source's row (unused for mixes)
 * @param pad    the padding rows' values (the mean of rows below {@code vocab}), or null for none
 */
public record RowMap(int cols, long vocab, StoredTensor[] sources, int[] source, int[] row, Mix[] mixes, float[] pad) {

    /** The average of rows of several sources ({@code sources[i]}'s row {@code rows[i]}); none: zeros. */
    public record Mix(int[] sources, int[] rows) {
    }

    /** Reads bytes of a file; a {@link RangeReader} on executors and on the driver. */
    public interface Rows {
        byte[] read(String file, long offset, int length);
    }

    /** Where a chunk's bytes go: {@code length} bytes of {@code src} from {@code from}, at {@code at}. */
    public interface Out {
        void put(long at, byte[] src, int from, int length);
    }

    /** The view's elements {@code [start, start + count)} encoded in {@code dtype}, on the heap. */
    public byte[] bytes(long start, int count, Dtype dtype, Rows rows) {
        byte[] out = new byte[count * dtype.byteSize()];
        write(start, count, dtype, rows, (at, src, from, length) -> System.arraycopy(src, from, out, (int) at, length));
        return out;
    }

    /**
     * Writes the view's elements {@code [start, start + count)} (row-major, {@code cols} per row),
     * encoded in {@code dtype}, to {@code out} at their offsets from {@code start}. Runs of rows
     * copied from consecutive rows of one source in {@code dtype} are read as one range and passed
     * on as read.
     */
    public void write(long start, int count, Dtype dtype, Rows rows, Out out) {
        int size = dtype.byteSize();
        long end = start + count;
        long r = start / cols;
        while (r * cols < end) {
            long runEnd = r + 1;
            if (r < vocab && source[(int) r] >= 0 && sources[source[(int) r]].dtype() == dtype) {
                while (runEnd < vocab && runEnd * cols < end && source[(int) runEnd] == source[(int) r]
                        && row[(int) runEnd] == row[(int) runEnd - 1] + 1) {
                    runEnd++;
                }
                StoredTensor s = sources[source[(int) r]];
                long from = Math.max(start, r * cols);
                long to = Math.min(end, runEnd * cols);
                long sourceElement = (long) row[(int) r] * cols + (from - r * cols);
                byte[] b = rows.read(s.file(), s.offset() + sourceElement * size, (int) ((to - from) * size));
                out.put((from - start) * size, b, 0, b.length);
            } else {
                byte[] encoded = FloatBytes.encode(values(r, rows), dtype);
                long from = Math.max(start, r * cols);
                long to = Math.min(end, (r + 1) * cols);
                out.put((from - start) * size, encoded, (int) ((from - r * cols) * size), (int) ((to - from) * size));
            }
            r = runEnd;
        }
    }

    /** Row {@code r}'s float32 values before rounding to the view's dtype. */
    public float[] values(long r, Rows rows) {
        if (r >= vocab) {
            return pad.clone();
        }
        int s = source[(int) r];
        if (s >= 0) {
            return sourceRow(s, row[(int) r], rows);
        }
        Mix mix = mixes[-1 - s];
        float[] sum = new float[cols];
        for (int i = 0; i < mix.sources().length; i++) {
            float[] v = sourceRow(mix.sources()[i], mix.rows()[i], rows);
            for (int c = 0; c < cols; c++) {
                sum[c] += v[c];
            }
        }
        if (mix.sources().length > 0) {
            float n = mix.sources().length;
            for (int c = 0; c < cols; c++) {
                sum[c] /= n;
            }
        }
        return sum;
    }

    private float[] sourceRow(int s, int r, Rows rows) {
        StoredTensor t = sources[s];
        int size = t.dtype().byteSize();
        byte[] b = rows.read(t.file(), t.offset() + (long) r * cols * size, cols * size);
        return FloatBytes.decode(b, t.dtype());
    }
}
