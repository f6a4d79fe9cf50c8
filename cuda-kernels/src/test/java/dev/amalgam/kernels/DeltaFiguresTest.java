package dev.amalgam.kernels;

import org.apache.arrow.memory.ArrowBuf;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The run report's figures of a chunk: each model's sum of squared deltas and each pair's dot
 * product of deltas, taken before sparsification, equal to a double-precision reference over
 * the whole chunk up to the float rounding of the SIMD lanes.
 */
class DeltaFiguresTest {

    @Test
    void pairsAreNumberedInRowOrder() {
        assertEquals(0, ChunkMetrics.pairs(1));
        assertEquals(6, ChunkMetrics.pairs(4));
        int expected = 0;
        for (int i = 0; i < 4; i++) {
            for (int j = i + 1; j < 4; j++) {
                assertEquals(expected++, ChunkMetrics.pair(i, j, 4));
            }
        }
        assertThrows(IllegalArgumentException.class, () -> ChunkMetrics.pair(2, 1, 4));
    }

    @ParameterizedTest(name = "{0} models, {1} elements, simd {2}")
    @CsvSource({"2, 1000, false", "3, 100003, false", "3, 100003, true", "4, 4099, true", "6, 5000, true", "2, 7, true"})
    void taskVectorMergeReportsSquaresAndDotsOfTheWholeDeltas(int models, int count, boolean simd) {
        Assumptions.assumeTrue(!simd || Simd.ENABLED, "the JVM lacks --add-modules jdk.incubator.vector");
        float[] base = values(count, 1);
        float[][] xs = new float[models][];
        for (int i = 0; i < models; i++) {
            xs[i] = correlated(base, 10 + i);
        }
        ChunkMetrics metrics = new ChunkMetrics(models);
        try (BufferAllocator allocator = new RootAllocator()) {
            ArrowBuf b = buffer(allocator, base);
            ArrowBuf out = allocator.buffer(count * 4L);
            ArrowBuf[] bufs = new ArrowBuf[models];
            TaskVectorKernel.ModelTerm[] terms = new TaskVectorKernel.ModelTerm[models];
            for (int i = 0; i < models; i++) {
                bufs[i] = buffer(allocator, xs[i]);
                // Keeps about a tenth: figures of the sparsified deltas would be far off.
                terms[i] = new TaskVectorKernel.ModelTerm(0.5f, new KeepRule.Random(0.1f,
                        CounterRandom.streamKey(5, "t", i)), 1.0f);
            }
            TaskVectorKernel.merge(simd, b, bufs, count, 0, terms, TaskVectorKernel.Consensus.SUM, false, 1.0f, out,
                    metrics, new KernelScratch());
            b.close();
            out.close();
            for (ArrowBuf x : bufs) {
                x.close();
            }
        }
        assertFigures(base, xs, metrics.deltaSquares, metrics.deltaDots);
    }

    @Test
    void composedMethodsReportTheSameFigures() {
        int count = 50_001;
        float[] base = values(count, 2);
        float[][] xs = {correlated(base, 20), correlated(base, 21), correlated(base, 22)};
        double[] squares = new double[3];
        double[] dots = new double[3];
        try (BufferAllocator allocator = new RootAllocator()) {
            ArrowBuf b = buffer(allocator, base);
            ArrowBuf[] bufs = {buffer(allocator, xs[0]), buffer(allocator, xs[1]), buffer(allocator, xs[2])};
            ComposedKernels.deltaFigures(b, bufs, count, squares, dots);
            b.close();
            for (ArrowBuf x : bufs) {
                x.close();
            }
        }
        assertFigures(base, xs, squares, dots);
    }

    private static void assertFigures(float[] base, float[][] xs, double[] squares, double[] dots) {
        int m = xs.length;
        double[][] d = new double[m][base.length];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < base.length; j++) {
                d[i][j] = xs[i][j] - base[j];
            }
        }
        for (int i = 0; i < m; i++) {
            double expected = dot(d[i], d[i]);
            assertEquals(expected, squares[i], 1e-5 * expected, "squares of model " + i);
            for (int k = i + 1; k < m; k++) {
                double scale = Math.sqrt(dot(d[i], d[i]) * dot(d[k], d[k]));
                assertEquals(dot(d[i], d[k]), dots[ChunkMetrics.pair(i, k, m)], 1e-5 * scale,
                        "dot of models " + i + " and " + k);
            }
        }
    }

    private static double dot(double[] a, double[] b) {
        double s = 0;
        for (int j = 0; j < a.length; j++) {
            s += a[j] * b[j];
        }
        return s;
    }

    private static float[] values(int n, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        float[] v = new float[n];
        for (int j = 0; j < n; j++) {
            v[j] = (float) random.nextGaussian();
        }
        return v;
    }

    /** The base plus a delta sharing a common direction with the other models' (cosines near 0.5). */
    private static float[] correlated(float[] base, long seed) {
        SplittableRandom shared = new SplittableRandom(99);
        SplittableRandom own = new SplittableRandom(seed);
        float[] x = new float[base.length];
        for (int j = 0; j < base.length; j++) {
            x[j] = base[j] + 0.01f * (float) (shared.nextGaussian() + own.nextGaussian());
        }
        return x;
    }

    private static ArrowBuf buffer(BufferAllocator allocator, float[] values) {
        ArrowBuf buf = allocator.buffer(values.length * 4L);
        for (int j = 0; j < values.length; j++) {
            buf.setFloat(j * 4L, values[j]);
        }
        return buf;
    }
}
