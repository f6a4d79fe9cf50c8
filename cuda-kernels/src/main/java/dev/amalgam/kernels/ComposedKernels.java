package dev.amalgam.kernels;

import org.apache.arrow.memory.ArrowBuf;

/**
 * The Java loops of the composable primitives (see {@link Primitive}): float32 arithmetic, terms
 * in the order given, no fused multiply-add. An operand is either a decoded input or an input's
 * delta against the base, computed inline as {@code x - b} in float32.
 */
public final class ComposedKernels {
    private ComposedKernels() {
    }

    /** Operands resolved to buffers: {@code values[k]} minus {@code base} when {@code delta[k]}. */
    public record Terms(ArrowBuf[] values, boolean[] delta, ArrowBuf base) {
        float at(int k, long offset) {
            float v = values[k].getFloat(offset);
            return delta[k] ? v - base.getFloat(offset) : v;
        }
    }

    /** {@code out = [base +] (c_0 t_0 + c_1 t_1 + ...)}, summed left to right. */
    public static void combine(Terms terms, float[] coefficients, boolean plusBase, int count, ArrowBuf out) {
        int m = coefficients.length;
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            float sum = coefficients[0] * terms.at(0, at);
            for (int k = 1; k < m; k++) {
                sum += coefficients[k] * terms.at(k, at);
            }
            out.setFloat(at, plusBase ? terms.base().getFloat(at) + sum : sum);
        }
    }

    /** As {@link #combine}, with {@code coefficients[k][row]} for the chunk's rows of {@code cols}. */
    public static void combineRows(Terms terms, float[][] coefficients, int cols, boolean plusBase, int count,
                                   ArrowBuf out) {
        int m = coefficients.length;
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            int row = j / cols;
            float sum = coefficients[0][row] * terms.at(0, at);
            for (int k = 1; k < m; k++) {
                sum += coefficients[k][row] * terms.at(k, at);
            }
            out.setFloat(at, plusBase ? terms.base().getFloat(at) + sum : sum);
        }
    }

    /**
     * Per row of {@code cols}, {@code sum a*b} accumulated in double in column order (each
     * float32 product is exact in double) and rounded once to float32. A row never straddles a
     * chunk, so the order, and so the result, never depends on chunking.
     */
    public static void rowDots(Terms terms, int a, int b, int count, int cols, float[] out) {
        int rows = count / cols;
        for (int r = 0; r < rows; r++) {
            double sum = 0.0;
            for (int c = 0; c < cols; c++) {
                long at = (long) (r * cols + c) << 2;
                sum += (double) terms.at(a, at) * (double) terms.at(b, at);
            }
            out[r] = (float) sum;
        }
    }

    /** Exact {@code sum a*b} over the chunk, added into {@code into}. */
    public static void dot(Terms terms, int a, int b, int count, ExactDot into) {
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            into.add(terms.at(a, at), terms.at(b, at));
        }
    }

    /** How many entries of term {@code a} are not zero. */
    public static long countNonzero(Terms terms, int a, int count) {
        long n = 0;
        for (int j = 0; j < count; j++) {
            if (terms.at(a, (long) j << 2) != 0.0f) {
                n++;
            }
        }
        return n;
    }

    /** nearswap: {@code w = clamp(t / max(|b - x|, 1e-6), 0, 1)}, {@code out = w x + (1 - w) b}. */
    public static void nearswap(ArrowBuf x, ArrowBuf base, float t, int count, ArrowBuf out) {
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            float xv = x.getFloat(at);
            float bv = base.getFloat(at);
            float distance = Math.abs(bv - xv);
            float w = t / (distance > 1e-6f ? distance : 1e-6f);
            w = w > 1.0f ? 1.0f : (w < 0.0f ? 0.0f : w);
            out.setFloat(at, w * xv + (1.0f - w) * bv);
        }
    }

    /**
     * RAM: an entry of model i contributes where {@code |d_i| > epsilon}; {@code c} counts the
     * contributing models. Without {@code uniqueScales}: {@code b + (sum of contributing d_i) / max(c, 1)}.
     * With them (RAM+): {@code b + sum of (c == 1 ? uniqueScales[i] d_i : d_i / c)} over contributing entries.
     */
    public static void ram(ArrowBuf base, ArrowBuf[] models, float epsilon, float[] uniqueScales, int count,
                           ArrowBuf out) {
        int m = models.length;
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            float b = base.getFloat(at);
            int c = 0;
            for (int i = 0; i < m; i++) {
                if (Math.abs(models[i].getFloat(at) - b) > epsilon) {
                    c++;
                }
            }
            float sum = 0.0f;
            for (int i = 0; i < m; i++) {
                float d = models[i].getFloat(at) - b;
                if (!(Math.abs(d) > epsilon)) {
                    continue;
                }
                if (uniqueScales == null) {
                    sum += d;
                } else {
                    sum += c == 1 ? uniqueScales[i] * d : d / c;
                }
            }
            out.setFloat(at, uniqueScales == null ? b + sum / Math.max(c, 1) : b + sum);
        }
    }

    /**
     * Counts, per model, its contributing entries ({@code |d_i| > epsilon}) where more than one
     * model contributes ({@code shared[i]}) and where only it does ({@code unique[i]}).
     */
    public static void ramCounts(ArrowBuf base, ArrowBuf[] models, float epsilon, int count, long[] shared,
                                 long[] unique) {
        int m = models.length;
        boolean[] contributes = new boolean[m];
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            float b = base.getFloat(at);
            int c = 0;
            for (int i = 0; i < m; i++) {
                contributes[i] = Math.abs(models[i].getFloat(at) - b) > epsilon;
                if (contributes[i]) {
                    c++;
                }
            }
            for (int i = 0; i < m; i++) {
                if (contributes[i]) {
                    if (c > 1) {
                        shared[i]++;
                    } else {
                        unique[i]++;
                    }
                }
            }
        }
    }

    /** Adds {@code sum (x_i - b)^2} per model into {@code squares}, for the run report. */
    public static void deltaSquares(ArrowBuf base, ArrowBuf[] models, int count, double[] squares) {
        for (int i = 0; i < models.length; i++) {
            double s = 0.0;
            for (int j = 0; j < count; j++) {
                long at = (long) j << 2;
                double d = models[i].getFloat(at) - base.getFloat(at);
                s += d * d;
            }
            squares[i] += s;
        }
    }
}
