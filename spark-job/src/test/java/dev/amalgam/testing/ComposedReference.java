package dev.amalgam.testing;

import dev.amalgam.kernels.PortableMath;

import java.math.BigDecimal;

/**
 * The slerp family, model_stock, nearswap and RAM of METHODS.md written the plain way: whole
 * tensors in memory, BigDecimal for every reduction (each rounded once to float32), the geometry
 * in double, coefficients rounded to float32, and the elementwise pass summing its terms left to
 * right in float32. Independent of the statistics stage, the primitives and the methods' own code.
 */
public final class ComposedReference {
    private ComposedReference() {
    }

    /** The exact {@code sum a*b}, rounded once. */
    public static float dot(float[] a, float[] b) {
        BigDecimal sum = BigDecimal.ZERO;
        for (int j = 0; j < a.length; j++) {
            sum = sum.add(new BigDecimal(a[j]).multiply(new BigDecimal(b[j])));
        }
        return sum.floatValue();
    }

    public static float[] delta(float[] x, float[] base) {
        float[] d = new float[x.length];
        for (int j = 0; j < x.length; j++) {
            d[j] = x[j] - base[j];
        }
        return d;
    }

    /** {@code [base +] (c_0 v_0 + c_1 v_1 + ...)} in float32, left to right. */
    public static float[] combine(float[][] v, float[] c, float[] base) {
        int n = v[0].length;
        float[] out = new float[n];
        for (int j = 0; j < n; j++) {
            float s = c[0] * v[0][j];
            for (int k = 1; k < v.length; k++) {
                s += c[k] * v[k][j];
            }
            out[j] = base == null ? s : base[j] + s;
        }
        return out;
    }

    public static double[][] gram(float[][] v) {
        double[][] g = new double[v.length][v.length];
        for (int i = 0; i < v.length; i++) {
            for (int j = 0; j < v.length; j++) {
                g[i][j] = dot(v[i], v[j]);
            }
        }
        return g;
    }

    public static float[] slerp(float[] base, float[] x, double t) {
        double[][] g = gram(new float[][]{base, x});
        double n0 = Math.sqrt(g[0][0]);
        double n1 = Math.sqrt(g[1][1]);
        double dot = g[0][1] / ((n0 > 1e-8 ? n0 : 1) * (n1 > 1e-8 ? n1 : 1));
        float c0;
        float c1;
        if (Math.abs(dot) > 0.9995) {
            c0 = (float) (1 - t);
            c1 = (float) t;
        } else {
            double theta = Math.acos(dot);
            c0 = (float) (Math.sin((1 - t) * theta) / Math.sin(theta));
            c1 = (float) (Math.sin(t * theta) / Math.sin(theta));
        }
        return combine(new float[][]{base, x}, new float[]{c0, c1}, null);
    }

    private static float[] nuslerpPair(double t, double g00, double g11, double g01) {
        double n0 = Math.max(Math.sqrt(g00), 1e-7);
        double n1 = Math.max(Math.sqrt(g11), 1e-7);
        double cos = Math.max(-1, Math.min(1, g01 / (n0 * n1)));
        double theta = Math.acos(cos);
        if (Math.abs(Math.sin(theta)) < 1e-8) {
            return new float[]{(float) (1 - t), (float) t};
        }
        return new float[]{(float) (Math.sin((1 - t) * theta) / Math.sin(theta)),
                (float) (Math.sin(t * theta) / Math.sin(theta))};
    }

    /** {@code base} may be null; {@code cols} > 0 interpolates each row of that length on its own. */
    public static float[] nuslerp(float[] base, float[] x0, float[] x1, double w0, double w1, int cols) {
        double t = Math.abs(w0 + w1) < 1e-6 ? 0.5 : w1 / (w0 + w1);
        float[] v0 = base == null ? x0 : delta(x0, base);
        float[] v1 = base == null ? x1 : delta(x1, base);
        if (cols <= 0) {
            float[] c = nuslerpPair(t, dot(v0, v0), dot(v1, v1), dot(v0, v1));
            return combine(new float[][]{v0, v1}, c, base);
        }
        int n = v0.length;
        float[] out = new float[n];
        for (int r = 0; r < n / cols; r++) {
            double a = 0;
            double b = 0;
            double ab = 0;
            for (int k = r * cols; k < (r + 1) * cols; k++) {
                a += (double) v0[k] * v0[k];
                b += (double) v1[k] * v1[k];
                ab += (double) v0[k] * v1[k];
            }
            float[] c = nuslerpPair(t, (float) a, (float) b, (float) ab);
            for (int k = r * cols; k < (r + 1) * cols; k++) {
                float s = c[0] * v0[k];
                s += c[1] * v1[k];
                out[k] = base == null ? s : base[k] + s;
            }
        }
        return out;
    }

    /**
     * nuslerp with {@code nuslerp_row_wise}: one angle per vector along the first dimension, the
     * tensor seen as {@code firstDim} rows; each column's sums in double in row order.
     */
    public static float[] nuslerpColumns(float[] base, float[] x0, float[] x1, double w0, double w1, int firstDim) {
        double t = Math.abs(w0 + w1) < 1e-6 ? 0.5 : w1 / (w0 + w1);
        float[] v0 = base == null ? x0 : delta(x0, base);
        float[] v1 = base == null ? x1 : delta(x1, base);
        int n = v0.length;
        int columns = n / firstDim;
        float[] out = new float[n];
        for (int c = 0; c < columns; c++) {
            double a = 0;
            double b = 0;
            double ab = 0;
            for (int k = c; k < n; k += columns) {
                a += (double) v0[k] * v0[k];
                b += (double) v1[k] * v1[k];
                ab += (double) v0[k] * v1[k];
            }
            float[] coefficient = nuslerpPair(t, (float) a, (float) b, (float) ab);
            for (int k = c; k < n; k += columns) {
                float s = coefficient[0] * v0[k];
                s += coefficient[1] * v1[k];
                out[k] = base == null ? s : base[k] + s;
            }
        }
        return out;
    }

    /** Coefficient-space multislerp (METHODS.md): returns the coefficients of the vectors, rounded to float32. */
    public static float[] multislerpCoefficients(double[][] g, double[] weights, boolean normalize, double eps) {
        int n = weights.length;
        double[] w = weights.clone();
        double total = 0;
        for (double x : w) {
            total += x;
        }
        if (normalize) {
            for (int i = 0; i < n; i++) {
                w[i] /= total;
            }
        }
        double[] norm = new double[n];
        double[] m = new double[n];
        for (int i = 0; i < n; i++) {
            norm[i] = Math.sqrt(g[i][i]);
            m[i] = w[i] / (norm[i] + eps);
        }
        double mm = Math.sqrt(quad(g, m, m));
        if (mm < eps) {
            return toFloat(w);
        }
        for (int i = 0; i < n; i++) {
            m[i] /= mm;
        }
        double[] tangent = new double[n];
        for (int i = 0; i < n; i++) {
            double[] u = new double[n];
            u[i] = 1 / (norm[i] + eps);
            double c = quad(g, u, m);
            for (int j = 0; j < n; j++) {
                tangent[j] += w[i] * (u[j] - c * m[j]);
            }
        }
        double a = Math.sqrt(quad(g, tangent, tangent)) + eps;
        double scale = 0;
        for (int i = 0; i < n; i++) {
            scale += w[i] * norm[i];
        }
        double[] r = new double[n];
        for (int j = 0; j < n; j++) {
            r[j] = (m[j] * Math.cos(a) + tangent[j] * Math.sin(a) / a) * scale;
        }
        return toFloat(r);
    }

    /** Coefficient-space Karcher mean with equal weights (METHODS.md). */
    public static float[] karcherCoefficients(double[][] g, int maxIter, double tol) {
        int n = g.length;
        double a = 1.0 / n;
        double[] norm = new double[n];
        for (int i = 0; i < n; i++) {
            norm[i] = Math.sqrt(g[i][i]);
        }
        double[] u = new double[n];
        int first = -1;
        for (int i = 0; i < n; i++) {
            if (norm[i] > tol) {
                u[i] = a / norm[i];
                if (first < 0) {
                    first = i;
                }
            }
        }
        if (first < 0) {
            return new float[n];
        }
        double len = Math.sqrt(quad(g, u, u));
        if (len < tol) {
            u = new double[n];
            u[first] = 1 / norm[first];
        } else {
            for (int i = 0; i < n; i++) {
                u[i] /= len;
            }
        }
        for (int it = 0; it < maxIter; it++) {
            double[] tangent = new double[n];
            for (int i = 0; i < n; i++) {
                if (norm[i] <= tol) {
                    continue;
                }
                double[] ui = new double[n];
                ui[i] = 1 / norm[i];
                double c = Math.max(-1, Math.min(1, quad(g, u, ui)));
                double theta = Math.acos(c);
                if (theta < tol) {
                    continue;
                }
                for (int j = 0; j < n; j++) {
                    tangent[j] += a * theta / Math.sin(theta) * (ui[j] - c * u[j]);
                }
            }
            double tn = Math.sqrt(quad(g, tangent, tangent));
            if (tn < tol) {
                break;
            }
            double[] next = new double[n];
            for (int j = 0; j < n; j++) {
                next[j] = Math.cos(tn) * u[j] + Math.sin(tn) * tangent[j] / tn;
            }
            double nn = Math.sqrt(quad(g, next, next));
            for (int j = 0; j < n; j++) {
                next[j] /= nn;
            }
            u = next;
        }
        double mean = 0;
        for (int i = 0; i < n; i++) {
            mean += a * norm[i];
        }
        for (int j = 0; j < n; j++) {
            u[j] *= mean;
        }
        return toFloat(u);
    }

    public static float[] modelStock(float[] base, float[][] x, int cols) {
        int n = x.length;
        float[][] d = new float[n][];
        for (int i = 0; i < n; i++) {
            d[i] = delta(x[i], base);
        }
        int len = base.length;
        int rowLength = cols <= 0 ? len : cols;
        float[] out = new float[len];
        for (int r = 0; r < len / rowLength; r++) {
            int from = r * rowLength;
            double[][] g = new double[n][n];
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < n; j++) {
                    if (cols <= 0) {
                        g[i][j] = dot(d[i], d[j]);
                    } else {
                        double s = 0;
                        for (int k = from; k < from + rowLength; k++) {
                            s += (double) d[i][k] * d[j][k];
                        }
                        g[i][j] = (float) s;
                    }
                }
            }
            double sum = 0;
            int pairs = 0;
            for (int i = 0; i < n; i++) {
                for (int j = i + 1; j < n; j++) {
                    sum += g[i][j] / Math.max(Math.sqrt(g[i][i]) * Math.sqrt(g[j][j]), 1e-6);
                    pairs++;
                }
            }
            double cos = Math.max(-1, Math.min(1, sum / pairs));
            double t = n * cos / (1 + (n - 1) * cos);
            float cm = (float) (t / n);
            float cb = (float) (1 - t);
            for (int k = from; k < from + rowLength; k++) {
                float s = cm * x[0][k];
                for (int i = 1; i < n; i++) {
                    s += cm * x[i][k];
                }
                out[k] = s + cb * base[k];
            }
        }
        return out;
    }

    public static float[] nearswap(float[] base, float[] x, float t) {
        float[] out = new float[base.length];
        for (int j = 0; j < base.length; j++) {
            float w = Math.max(0f, Math.min(1f, t / Math.max(Math.abs(base[j] - x[j]), 1e-6f)));
            out[j] = w * x[j] + (1 - w) * base[j];
        }
        return out;
    }

    /** RAM, or RAM+ with {@code r} and {@code alpha} when {@code plus}. */
    public static float[] ram(float[] base, float[][] x, float epsilon, boolean plus, double r, double alpha) {
        int m = x.length;
        int n = base.length;
        int[] c = new int[n];
        for (int j = 0; j < n; j++) {
            for (float[] xi : x) {
                if (Math.abs(xi[j] - base[j]) > epsilon) {
                    c[j]++;
                }
            }
        }
        float[] lambda = new float[m];
        for (int i = 0; i < m; i++) {
            long shared = 0;
            long unique = 0;
            for (int j = 0; j < n; j++) {
                if (Math.abs(x[i][j] - base[j]) > epsilon) {
                    if (c[j] > 1) {
                        shared++;
                    } else {
                        unique++;
                    }
                }
            }
            double rho = (double) shared / Math.max((double) unique, epsilon);
            lambda[i] = (float) (1 + r * Math.max(0, Math.min(alpha, rho)));
        }
        float[] out = new float[n];
        for (int j = 0; j < n; j++) {
            float s = 0;
            for (int i = 0; i < m; i++) {
                float d = x[i][j] - base[j];
                if (Math.abs(d) > epsilon) {
                    s += !plus ? d : c[j] == 1 ? lambda[i] * d : d / c[j];
                }
            }
            out[j] = plus ? base[j] + s : base[j] + s / Math.max(c[j], 1);
        }
        return out;
    }

    private static double quad(double[][] g, double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < b.length; j++) {
                s += a[i] * g[i][j] * b[j];
            }
        }
        return s;
    }

    private static float[] toFloat(double[] v) {
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            f[i] = (float) v[i];
        }
        return f;
    }

    /**
     * SCE as METHODS.md states it, on whole tensors: the variance across the deltas, the top
     * {@code floor(selectTopk * nnz)} positions by variance (ties by lower index) when
     * {@code selectTopk < 1}, weights from exact mean squares, the sign consensus.
     */
    public static float[] sce(float[] base, float[][] x, double selectTopk) {
        int m = x.length;
        int n = base.length;
        float[][] tau = new float[m][];
        for (int i = 0; i < m; i++) {
            tau[i] = delta(x[i], base);
        }
        if (selectTopk < 1) {
            float[] variance = new float[n];
            long nonzero = 0;
            for (int j = 0; j < n; j++) {
                float mean = 0.0f;
                for (int i = 0; i < m; i++) {
                    mean += tau[i][j];
                }
                mean /= m;
                float squares = 0.0f;
                for (int i = 0; i < m; i++) {
                    squares += (tau[i][j] - mean) * (tau[i][j] - mean);
                }
                variance[j] = squares / m;
                nonzero += variance[j] != 0.0f ? 1 : 0;
            }
            long k = (long) Math.floor(selectTopk * nonzero);
            Integer[] byVariance = new Integer[n];
            for (int j = 0; j < n; j++) {
                byVariance[j] = j;
            }
            java.util.Arrays.sort(byVariance, (a, b) -> variance[a] != variance[b]
                    ? Float.compare(variance[b], variance[a]) : Integer.compare(a, b));
            boolean[] keep = new boolean[n];
            for (int r = 0; r < k; r++) {
                keep[byVariance[r]] = true;
            }
            for (float[] t : tau) {
                for (int j = 0; j < n; j++) {
                    if (!keep[j]) {
                        t[j] = 0.0f;
                    }
                }
            }
        }
        double[] means = new double[m];
        double sum = 0.0;
        for (int i = 0; i < m; i++) {
            means[i] = (double) dot(tau[i], tau[i]) / n;
            sum += means[i];
        }
        float[] a = new float[m];
        for (int i = 0; i < m; i++) {
            a[i] = (float) (Math.abs(sum) < 1e-6 ? 1.0 / m : means[i] / sum);
        }
        float[] out = new float[n];
        for (int j = 0; j < n; j++) {
            float total = 0.0f;
            for (int i = 0; i < m; i++) {
                total += tau[i][j];
            }
            float sign = total >= 0.0f ? 1.0f : -1.0f;
            float mixed = 0.0f;
            float divisor = 0.0f;
            for (int i = 0; i < m; i++) {
                float w = Math.signum(tau[i][j]) == sign ? a[i] : 0.0f;
                mixed += tau[i][j] * w;
                divisor += w;
            }
            out[j] = base[j] + mixed / Math.max(divisor, 1e-6f);
        }
        return out;
    }

    /**
     * arcee_fusion as METHODS.md states it: per row the KL divergence of the softmaxes (in double,
     * with the kernels' portable exp and log, clamped at 0), importances {@code |x - b| * kl}, the
     * exact quartiles from a full sort, the threshold, the masked delta.
     */
    public static float[] arceeFusion(float[] base, float[] x, int cols) {
        int n = base.length;
        float[] importance = new float[n];
        for (int from = 0; from < n; from += cols) {
            double mx = Double.NEGATIVE_INFINITY;
            double mb = Double.NEGATIVE_INFINITY;
            for (int j = from; j < from + cols; j++) {
                mx = x[j] > mx ? x[j] : mx;
                mb = base[j] > mb ? base[j] : mb;
            }
            double zx = 0.0;
            double zb = 0.0;
            for (int j = from; j < from + cols; j++) {
                zx += PortableMath.exp(x[j] - mx);
                zb += PortableMath.exp(base[j] - mb);
            }
            double kl = 0.0;
            for (int j = from; j < from + cols; j++) {
                double p = PortableMath.exp(x[j] - mx) / zx + 1e-8;
                double q = PortableMath.exp(base[j] - mb) / zb + 1e-8;
                kl += p * PortableMath.log(p / q);
            }
            float klf = (float) Math.max(kl, 0.0);
            for (int j = from; j < from + cols; j++) {
                importance[j] = Math.abs(x[j] - base[j]) * klf;
            }
        }
        float[] sorted = importance.clone();
        java.util.Arrays.sort(sorted);
        float q1 = sorted[(n - 1) / 4];
        float median = sorted[(n - 1) / 2];
        float q3 = sorted[(int) (3L * (n - 1) / 4)];
        float threshold = median + 1.5f * (q3 - q1);
        float[] out = new float[n];
        for (int j = 0; j < n; j++) {
            out[j] = importance[j] >= threshold ? base[j] + (x[j] - base[j]) : base[j];
        }
        return out;
    }
}
