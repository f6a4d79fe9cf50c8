package dev.amalgam.kernels;

import org.apache.arrow.memory.ArrowBuf;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

class KeepRuleTest {

    @Test
    void topKKeepsEqualMagnitudesByLowerIndexAcrossChunks() {
        // |d| = 2,1,2,2,1,2; keep k=3: the one... threshold 2 with 4 equal entries, keep the first 3.
        float[] d = {2, -1, -2, 2, 1, 2};
        float[] whole = apply(d, 0, 6, new KeepRule.TopK(Float.floatToRawIntBits(2f), 3, 0));
        assertArrayEquals(new float[]{2, 0, -2, 2, 0, 0}, whole);
        // The same tensor as chunks [0,3) and [3,6): the second chunk starts with 2 equal entries before it.
        float[] first = apply(d, 0, 3, new KeepRule.TopK(Float.floatToRawIntBits(2f), 3, 0));
        float[] second = apply(d, 3, 3, new KeepRule.TopK(Float.floatToRawIntBits(2f), 3, 2));
        assertArrayEquals(new float[]{2, 0, -2}, first);
        assertArrayEquals(new float[]{2, 0, 0}, second);
    }

    @Test
    void dellaNeedsWholeRows() {
        try (BufferAllocator allocator = new RootAllocator(); ArrowBuf buf = allocator.buffer(16)) {
            KeepRule rule = new KeepRule.DellaRows(0.4f, 0.2f, 3, 1);
            assertEquals("DELLA chunk [0, +4) does not fall on rows of 3 elements",
                    org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                            () -> rule.apply(buf, 4, 0, new KernelScratch())).getMessage());
        }
    }

    private static float[] apply(float[] d, int from, int count, KeepRule rule) {
        try (BufferAllocator allocator = new RootAllocator(); ArrowBuf buf = allocator.buffer(count * 4L)) {
            for (int i = 0; i < count; i++) {
                buf.setFloat(i * 4L, d[from + i]);
            }
            rule.apply(buf, count, from, new KernelScratch());
            float[] out = new float[count];
            for (int i = 0; i < count; i++) {
                out[i] = buf.getFloat(i * 4L);
            }
            return out;
        }
    }

    @Test
    void rowRanksSortByMagnitudeThenColumn() {
        java.util.SplittableRandom random = new java.util.SplittableRandom(5);
        float[] levels = {0.0f, -0.0f, 1e-40f, 0.5f, -0.5f, 3.0f, 1e20f, Float.MIN_VALUE};
        KernelScratch scratch = new KernelScratch();
        for (int cols : new int[]{1, 2, 7, 300, 2049}) {
            float[] row = new float[cols];
            for (int c = 0; c < cols; c++) {
                row[c] = random.nextBoolean() ? levels[random.nextInt(levels.length)] : (float) random.nextGaussian();
            }
            java.util.List<Integer> expected = new java.util.ArrayList<>();
            for (int c = 0; c < cols; c++) {
                expected.add(c);
            }
            expected.sort(java.util.Comparator.<Integer>comparingDouble(c -> Math.abs(row[c])).thenComparingInt(c -> c));
            try (BufferAllocator allocator = new RootAllocator(); ArrowBuf buf = allocator.buffer(cols * 4L + 8)) {
                buf.setFloat(0, 42f);
                for (int c = 0; c < cols; c++) {
                    buf.setFloat((c + 1) * 4L, row[c]);
                }
                int[] order = scratch.rankRow(buf, 1, cols);
                for (int r = 0; r < cols; r++) {
                    assertEquals(expected.get(r), order[r], "rank " + r + " of " + cols);
                }
            }
        }
    }
}
