package dev.amalgam.method;

import dev.amalgam.kernels.Operand;

import java.util.ArrayList;
import java.util.List;

/**
 * The Gram matrix of a list of vectors over a tensor (all pairwise dot products, squared norms
 * on the diagonal): one statistics round of exact dot products, each rounded once to float32.
 * The spherical methods build every direction in the span of their inputs, so they need nothing
 * else: their geometry runs in the inputs' coefficients on the driver, in double.
 */
final class Gram {
    private Gram() {
    }

    /** The requests for the upper triangle, diagonal included. */
    static List<StatisticRequest> requests(Operand[] vectors) {
        List<StatisticRequest> requests = new ArrayList<>();
        for (int i = 0; i < vectors.length; i++) {
            for (int j = i; j < vectors.length; j++) {
                requests.add(StatisticRequest.dot(vectors[i], vectors[j]));
            }
        }
        return requests;
    }

    /** The matrix from the round's results (float32 values widened to double). */
    static double[][] of(Operand[] vectors, TensorStatistics stats) {
        int n = vectors.length;
        double[][] g = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int j = i; j < n; j++) {
                g[i][j] = stats.value(StatisticRequest.dot(vectors[i], vectors[j]));
                g[j][i] = g[i][j];
            }
        }
        return g;
    }

    /** {@code |sum_i c_i v_i|^2 = c^T G c}. */
    static double squaredNorm(double[][] g, double[] c) {
        double s = 0.0;
        for (int i = 0; i < c.length; i++) {
            for (int j = 0; j < c.length; j++) {
                s += c[i] * g[i][j] * c[j];
            }
        }
        return s;
    }

    /** {@code <sum_i a_i v_i, sum_j b_j v_j> = a^T G b}. */
    static double dot(double[][] g, double[] a, double[] b) {
        double s = 0.0;
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < b.length; j++) {
                s += a[i] * g[i][j] * b[j];
            }
        }
        return s;
    }

    /** Coefficients rounded to float32 for the elementwise pass. */
    static float[] toFloats(double[] c) {
        float[] f = new float[c.length];
        for (int i = 0; i < c.length; i++) {
            f[i] = (float) c[i];
        }
        return f;
    }

    /** The operands {@code Value(0..n-1)} or {@code Delta(0..n-1)}. */
    static Operand[] inputs(int models, boolean deltas) {
        Operand[] v = new Operand[models];
        for (int i = 0; i < models; i++) {
            v[i] = deltas ? new Operand.Delta(i) : new Operand.Value(i);
        }
        return v;
    }
}
