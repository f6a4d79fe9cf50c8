package dev.amalgam.kernels;

import org.apache.arrow.memory.ArrowBuf;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The SIMD loops give the scalar loops' bytes, bit for bit: every model count, consensus or
 * not, rescaled or not, chunk lengths that are not multiples of the vector width, and data
 * full of zeros, equal magnitudes at the top-k threshold, signed zeros, NaN and infinities.
 */
class SimdDifferentialTest {

    @ParameterizedTest(name = "{0} models, consensus {1}, rescale {2}, {3} elements")
    @CsvSource({"2, SUM, false, 1000", "2, NONE, true, 1001", "3, SUM, true, 4099", "3, NONE, false, 17",
            "4, SUM, false, 333", "1, SUM, true, 64", "2, SUM, false, 5"})
    void simdAndScalarGiveTheSameBytes(int models, TaskVectorKernel.Consensus consensus, boolean rescale, int count) {
        Assumptions.assumeTrue(Simd.ENABLED, "the JVM lacks --add-modules jdk.incubator.vector");
        try (BufferAllocator allocator = new RootAllocator()) {
            float[] base = values(count, 1, models);
            float[][] xs = new float[models][];
            for (int i = 0; i < models; i++) {
                xs[i] = values(count, 10 + i, models);
            }
            int[] scalar = run(allocator, false, base, xs, consensus, rescale);
            int[] simd = run(allocator, true, base, xs, consensus, rescale);
            for (int j = 0; j < count; j++) {
                assertEquals(scalar[j], simd[j], "element " + j);
            }
        }
    }

    @ParameterizedTest(name = "{0} elements")
    @CsvSource({"1000", "4099", "17", "5", "65536"})
    void histogramsOfOneBucketAndOfABandMatchTheScalarDefinition(int count) {
        Assumptions.assumeTrue(Simd.ENABLED, "the JVM lacks --add-modules jdk.incubator.vector");
        try (BufferAllocator allocator = new RootAllocator()) {
            ArrowBuf d = buffer(allocator, values(count, 5, 2));
            // Buckets the data holds (0.25 and 0.5 are frequent), NaN's and infinity's, and one it lacks.
            int quarter = Float.floatToRawIntBits(0.25f) >>> 16;
            int[] buckets = {quarter, Float.floatToRawIntBits(0.5f) >>> 16, 0x7f80, 0x7fc0, 0x1234};
            for (int bucket : buckets) {
                long[] simd = new long[MagnitudeHistogram.BINS];
                long[] scalar = new long[MagnitudeHistogram.BINS];
                MagnitudeHistogram.addLow(d, count, bucket, simd);
                MagnitudeHistogram.addLow(d, 0, count, bucket, scalar);
                org.junit.jupiter.api.Assertions.assertArrayEquals(scalar, simd, "bucket " + bucket);
            }
            // A band with gaps between its buckets, one of the buckets at the band's range edge.
            int[] slotOf = new int[MagnitudeHistogram.HIGH_BUCKETS];
            java.util.Arrays.fill(slotOf, -1);
            int[] band = {quarter - 3, quarter, quarter + 1, Float.floatToRawIntBits(0.5f) >>> 16};
            for (int i = 0; i < band.length; i++) {
                slotOf[band[i]] = i;
            }
            int[] simd = new int[band.length << 16];
            int[] scalar = new int[band.length << 16];
            MagnitudeHistogram.addBand(d, count, slotOf, simd);
            MagnitudeHistogram.addBand(d, 0, count, slotOf, scalar);
            org.junit.jupiter.api.Assertions.assertArrayEquals(scalar, simd);
            org.junit.jupiter.api.Assertions.assertTrue(count < 1000 || java.util.Arrays.stream(simd).sum() > 0,
                    "the band holds entries");
            int[] none = new int[MagnitudeHistogram.HIGH_BUCKETS];
            java.util.Arrays.fill(none, -1);
            MagnitudeHistogram.addBand(d, count, none, simd);
            org.junit.jupiter.api.Assertions.assertArrayEquals(scalar, simd, "an empty band adds nothing");
            d.close();
        }
    }

    private static int[] run(BufferAllocator allocator, boolean simd, float[] base, float[][] xs,
                             TaskVectorKernel.Consensus consensus, boolean rescale) {
        int n = base.length;
        int m = xs.length;
        ArrowBuf b = buffer(allocator, base);
        ArrowBuf out = allocator.buffer(n * 4L);
        ArrowBuf[] models = new ArrowBuf[m];
        TaskVectorKernel.ModelTerm[] terms = new TaskVectorKernel.ModelTerm[m];
        for (int i = 0; i < m; i++) {
            models[i] = buffer(allocator, xs[i]);
            // Threshold at a value many entries share, so equal ranks split inside vectors.
            KeepRule keep = i % 2 == 0 ? new KeepRule.TopK(Float.floatToRawIntBits(0.25f), 7, 2)
                    : new KeepRule.Random(0.6f, CounterRandom.streamKey(3, "t", i));
            terms[i] = new TaskVectorKernel.ModelTerm(i == 1 ? -0.5f : 0.75f, keep, rescale ? 1.7f : 1.0f);
        }
        TaskVectorKernel.merge(simd, b, models, n, 0, terms, consensus, true, 0.9f, out,
                new ChunkMetrics(m), new KernelScratch());
        int[] result = new int[n];
        for (int j = 0; j < n; j++) {
            result[j] = out.getInt(j * 4L);
        }
        b.close();
        out.close();
        for (ArrowBuf x : models) {
            x.close();
        }
        return result;
    }

    private static float[] values(int n, long seed, int models) {
        SplittableRandom random = new SplittableRandom(seed);
        float[] special = {0.0f, -0.0f, 0.25f, -0.25f, 0.5f, Float.NaN, Float.POSITIVE_INFINITY, Float.MIN_VALUE, 1e-30f};
        float[] v = new float[n];
        for (int j = 0; j < n; j++) {
            v[j] = random.nextInt(4) == 0 ? special[random.nextInt(special.length)] : (float) random.nextGaussian();
        }
        return v;
    }

    private static ArrowBuf buffer(BufferAllocator allocator, float[] values) {
        ArrowBuf buf = allocator.buffer(values.length * 4L);
        for (int j = 0; j < values.length; j++) {
            buf.setFloat(j * 4L, values[j]);
        }
        return buf;
    }

    @org.junit.jupiter.api.Test
    void simdBfloat16CodecMatchesTheScalarCodec() {
        Assumptions.assumeTrue(Simd.ENABLED, "the JVM lacks --add-modules jdk.incubator.vector");
        int n = 0x10000 + 13;
        try (BufferAllocator allocator = new RootAllocator();
             ArrowBuf halves = allocator.buffer(n * 2L);
             ArrowBuf scalar = allocator.buffer(n * 4L);
             ArrowBuf simd = allocator.buffer(n * 4L);
             ArrowBuf scalarOut = allocator.buffer(n * 2L);
             ArrowBuf simdOut = allocator.buffer(n * 2L)) {
            for (int h = 0; h < n; h++) {
                halves.setShort(h * 2L, (short) h);
            }
            ElementCodec.decode(false, halves, Dtype.BF16, scalar, n);
            ElementCodec.decode(true, halves, Dtype.BF16, simd, n);
            for (int j = 0; j < n; j++) {
                assertEquals(scalar.getInt(j * 4L), simd.getInt(j * 4L), "decode of 0x" + Integer.toHexString(j));
            }
            // Every float whose low 16 bits probe the rounding: ties, just above and below, NaN payloads.
            SplittableRandom random = new SplittableRandom(8);
            int[] lows = {0x0000, 0x7fff, 0x8000, 0x8001, 0xffff};
            for (int j = 0; j < n; j++) {
                int bits = (random.nextInt() & 0xffff0000) | lows[j % lows.length];
                scalar.setInt(j * 4L, j % 7 == 0 ? random.nextInt() : bits);
            }
            ElementCodec.encode(false, scalar, Dtype.BF16, scalarOut, n);
            ElementCodec.encode(true, scalar, Dtype.BF16, simdOut, n);
            for (int j = 0; j < n; j++) {
                assertEquals(scalarOut.getShort(j * 2L), simdOut.getShort(j * 2L),
                        "encode of 0x" + Integer.toHexString(scalar.getInt(j * 4L)));
            }
        }
    }
}
