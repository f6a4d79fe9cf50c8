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

    /**
     * As {@link #combine}, with {@code coefficients[k][v]} for each vector {@code v} of the chunk:
     * its rows of {@code cols}, or with {@code perColumn} the columns of those rows.
     */
    public static void combineVectors(Terms terms, float[][] coefficients, int cols, boolean perColumn,
                                      boolean plusBase, int count, ArrowBuf out) {
        int m = coefficients.length;
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            int vector = perColumn ? j % cols : j / cols;
            float sum = coefficients[0][vector] * terms.at(0, at);
            for (int k = 1; k < m; k++) {
                sum += coefficients[k][vector] * terms.at(k, at);
            }
            out.setFloat(at, plusBase ? terms.base().getFloat(at) + sum : sum);
        }
    }

    /**
     * Per column of rows {@code columns} wide, {@code sum a*b} down the column in double, in row
     * order, rounded once to float32. The chunk holds the whole tensor, so the order is fixed.
     */
    public static void columnDots(Terms terms, int a, int b, int count, int columns, float[] out) {
        int rows = count / columns;
        for (int c = 0; c < columns; c++) {
            double sum = 0.0;
            for (int r = 0; r < rows; r++) {
                long at = ((long) r * columns + c) << 2;
                sum += (double) terms.at(a, at) * (double) terms.at(b, at);
            }
            out[c] = (float) sum;
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

    /** {@code out = x}, or {@code x * factor} when a factor is given (passthrough's {@code scale}). */
    public static void scale(ArrowBuf x, Float factor, int count, ArrowBuf out) {
        if (factor == null) {
            out.setBytes(0, x, 0, (long) count << 2);
            return;
        }
        float f = factor;
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            out.setFloat(at, x.getFloat(at) * f);
        }
    }

    /**
     * Adds {@code sum (x_i - b)^2} per model into {@code squares} and {@code sum (x_i - b)(x_j - b)}
     * per pair into {@code dots} ({@link ChunkMetrics#pair}), for the run report.
     */
    public static void deltaFigures(ArrowBuf base, ArrowBuf[] models, int count, double[] squares, double[] dots) {
        int m = models.length;
        for (int i = 0; i < m; i++) {
            double s = 0.0;
            for (int j = 0; j < count; j++) {
                long at = (long) j << 2;
                double d = models[i].getFloat(at) - base.getFloat(at);
                s += d * d;
            }
            squares[i] += s;
            for (int k = i + 1; k < m; k++) {
                double dot = 0.0;
                for (int j = 0; j < count; j++) {
                    long at = (long) j << 2;
                    float b = base.getFloat(at);
                    dot += (double) (models[i].getFloat(at) - b) * (models[k].getFloat(at) - b);
                }
                dots[ChunkMetrics.pair(i, k, m)] += dot;
            }
        }
    }

    /**
     * Per element, the population variance of the models' deltas: {@code mu = (sum_i d_i) / m},
     * then {@code (sum_i (d_i - mu)^2) / m}, float32, models in order.
     */
    public static void variance(ArrowBuf base, ArrowBuf[] models, int count, ArrowBuf out) {
        int m = models.length;
        float n = m;
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            float b = base.getFloat(at);
            float sum = 0.0f;
            for (int i = 0; i < m; i++) {
                sum += models[i].getFloat(at) - b;
            }
            float mean = sum / n;
            float squares = 0.0f;
            for (int i = 0; i < m; i++) {
                float e = (models[i].getFloat(at) - b) - mean;
                squares += e * e;
            }
            out.setFloat(at, squares / n);
        }
    }

    /** {@code out = selection != 0 ? x - b : 0}: a model's delta where the chunk's selection keeps it. */
    public static void selectedDelta(ArrowBuf x, ArrowBuf base, ArrowBuf selection, int count, ArrowBuf out) {
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            out.setFloat(at, selection.getFloat(at) != 0.0f ? x.getFloat(at) - base.getFloat(at) : 0.0f);
        }
    }

    /**
     * SCE's consensus merge. {@code tau_i = d_i} where the selection keeps the position (every
     * position without one), else 0; majority sign {@code m} of {@code sum_i tau_i} ({@code >= 0}
     * is positive); {@code keep_i = sign(tau_i) == m}; result
     * {@code b + (sum_i tau_i (keep_i ? a_i : 0)) / max(sum_i (keep_i ? a_i : 0), 1e-6)}.
     * {@code selection} may be {@code out} itself: each position is read before it is written.
     */
    public static void sce(ArrowBuf base, ArrowBuf[] models, float[] weights, ArrowBuf selection, int count,
                           ArrowBuf out) {
        int m = models.length;
        float[] tau = new float[m];
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            float b = base.getFloat(at);
            boolean selected = selection == null || selection.getFloat(at) != 0.0f;
            float sum = 0.0f;
            for (int i = 0; i < m; i++) {
                tau[i] = selected ? models[i].getFloat(at) - b : 0.0f;
                sum += tau[i];
            }
            boolean positive = sum >= 0.0f;
            float mixed = 0.0f;
            float divisor = 0.0f;
            for (int i = 0; i < m; i++) {
                boolean keep = positive ? tau[i] > 0.0f : tau[i] < 0.0f;
                float w = keep ? weights[i] : 0.0f;
                mixed += tau[i] * w;
                divisor += w;
            }
            out.setFloat(at, b + mixed / Math.max(divisor, 1e-6f));
        }
    }

    /**
     * arcee_fusion's importance of the model against the base, per row of {@code cols}:
     * {@code p = softmax(x) + 1e-8}, {@code q = softmax(b) + 1e-8}, {@code kl = sum p ln(p/q)}
     * in double ({@link PortableMath}), each row in index order, clamped at 0, rounded to float32; then
     * {@code out = |x - b| * kl} in float32.
     */
    public static void importance(ArrowBuf x, ArrowBuf base, int cols, int count, ArrowBuf out) {
        int rows = cols == 0 ? 0 : count / cols;
        double[] ex = new double[rows == 0 ? 0 : cols];
        double[] eb = new double[ex.length];
        for (int r = 0; r < rows; r++) {
            long from = (long) r * cols;
            double mx = Double.NEGATIVE_INFINITY;
            double mb = Double.NEGATIVE_INFINITY;
            for (int c = 0; c < cols; c++) {
                long at = (from + c) << 2;
                double xv = x.getFloat(at);
                double bv = base.getFloat(at);
                mx = xv > mx ? xv : mx;
                mb = bv > mb ? bv : mb;
            }
            // Each exponential once per element (the CUDA kernel recomputes them: same values).
            double sx = 0.0;
            double sb = 0.0;
            for (int c = 0; c < cols; c++) {
                long at = (from + c) << 2;
                ex[c] = PortableMath.exp(x.getFloat(at) - mx);
                eb[c] = PortableMath.exp(base.getFloat(at) - mb);
                sx += ex[c];
                sb += eb[c];
            }
            double kl = 0.0;
            for (int c = 0; c < cols; c++) {
                double p = ex[c] / sx + 1e-8;
                double q = eb[c] / sb + 1e-8;
                kl += p * PortableMath.log(p / q);
            }
            // A divergence is never negative; rounding can make a near-zero one a hair so.
            float klf = (float) (kl > 0.0 ? kl : 0.0);
            for (int c = 0; c < cols; c++) {
                long at = (from + c) << 2;
                out.setFloat(at, Math.abs(x.getFloat(at) - base.getFloat(at)) * klf);
            }
        }
    }

    /** arcee_fusion's merge: {@code b + (x - b)} where {@code importance >= threshold}, else {@code b}. */
    public static void fuse(ArrowBuf x, ArrowBuf base, ArrowBuf importance, float threshold, int count, ArrowBuf out) {
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            float b = base.getFloat(at);
            out.setFloat(at, importance.getFloat(at) >= threshold ? b + (x.getFloat(at) - b) : b);
        }
    }

    /** Adds {@code w * kept} to {@code sum} (first model: sets it), float32, one model at a time in config order. */
    public static void addWeighted(ArrowBuf kept, float weight, boolean first, int count, ArrowBuf sum) {
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            float v = weight * kept.getFloat(at);
            sum.setFloat(at, first ? v : sum.getFloat(at) + v);
        }
    }

    /** The sum of sign(x) over the chunk; NaN counts as 0. */
    public static long signSum(ArrowBuf x, int count) {
        long s = 0;
        for (int j = 0; j < count; j++) {
            float v = x.getFloat((long) j << 2);
            s += v > 0.0f ? 1 : v < 0.0f ? -1 : 0;
        }
        return s;
    }

    /**
     * Paper TIES over models already turned into {@code v_i = w_i t_i}: per element the total's
     * sign (or {@code tieSign} where it is 0), the agreeing non-zero entries' mean by count,
     * times {@code lambda}, plus the base.
     */
    public static void tiesModel(ArrowBuf base, ArrowBuf[] weighted, int tieSign, float lambda, int count,
                                 ArrowBuf out) {
        int m = weighted.length;
        float[] v = new float[m];
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            for (int i = 0; i < m; i++) {
                v[i] = weighted[i].getFloat(at);
            }
            out.setFloat(at, base.getFloat(at) + lambda * electedMean(v, tieSign));
        }
    }

    /**
     * Paper TIES for one element: the total's sign ({@code tieSign} where it is 0), then the
     * agreeing non-zero values' sum (config order, from +0) over their count (at least 1).
     */
    static float electedMean(float[] v, int tieSign) {
        float total = v[0];
        for (int i = 1; i < v.length; i++) {
            total += v[i];
        }
        int sign = total > 0.0f ? 1 : total < 0.0f ? -1 : tieSign;
        float mix = 0.0f;
        int agreeing = 0;
        for (float x : v) {
            if (sign != 0 && (sign > 0 ? x > 0.0f : x < 0.0f)) {
                mix += x;
                agreeing++;
            }
        }
        return mix / Math.max(agreeing, 1);
    }

    /** Exact signed {@code sum a} over the chunk, added into {@code into}. */
    public static void sum(Terms terms, int a, int count, ExactDot into) {
        for (int j = 0; j < count; j++) {
            into.add(terms.at(a, (long) j << 2), 1.0f);
        }
    }

    /** VaRM's variation of one delta: 0 square, 1 abs, 2 signed. */
    public static float variation(float d, int variation) {
        return switch (variation) {
            case 0 -> d * d;
            case 1 -> Math.abs(d);
            default -> d;
        };
    }

    /**
     * VaRM at element granularity (see {@link ChunkKernels#varmElement}); float32, models in
     * config order, the exponential {@link PortableMath#exp} in double rounded to float32.
     */
    public static void varmElement(ArrowBuf base, ArrowBuf[] models, int variation, boolean softmax,
                                   float temperature, int count, ArrowBuf out) {
        int m = models.length;
        float[] f = new float[m];
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            float b = base.getFloat(at);
            for (int i = 0; i < m; i++) {
                f[i] = variation(models[i].getFloat(at) - b, variation);
            }
            if (softmax) {
                float max = f[0] / temperature;
                for (int i = 1; i < m; i++) {
                    max = Math.max(max, f[i] / temperature);
                }
                float total = 0.0f;
                for (int i = 0; i < m; i++) {
                    // PortableMath: a correctly specified exp the CUDA kernel reproduces bit for bit.
                    f[i] = (float) PortableMath.exp(f[i] / temperature - max);
                    total += f[i];
                }
                for (int i = 0; i < m; i++) {
                    f[i] = f[i] / total;
                }
            } else {
                float total = 0.0f;
                for (int i = 0; i < m; i++) {
                    total += f[i];
                }
                float div = Math.max(total, 1e-13f);
                for (int i = 0; i < m; i++) {
                    f[i] = f[i] / div;
                }
            }
            float sum = 0.0f;
            for (int i = 0; i < m; i++) {
                sum += f[i] * models[i].getFloat(at);
            }
            out.setFloat(at, sum);
        }
    }

    /**
     * Fisher-weighted averaging per element, float32, models in config order: {@code t_i = c_i *
     * F_i} (F floored where the rule says), {@code out = (sum t_i x_i) / (sum t_i)}, sums from +0.
     */
    public static void fisher(ArrowBuf[] models, ArrowBuf[] fishers, float[] coefficients, float floor,
                              boolean favorTarget, int count, ArrowBuf out) {
        int m = models.length;
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            float lhs = 0.0f;
            float rhs = 0.0f;
            for (int i = 0; i < m; i++) {
                float diag = fishers[i].getFloat(at);
                if (!favorTarget || i == 0) {
                    diag = Math.max(diag, floor);
                }
                float t = coefficients[i] * diag;
                lhs += t;
                rhs += t * models[i].getFloat(at);
            }
            out.setFloat(at, rhs / lhs);
        }
    }

    /**
     * OTA per element, float32, models in config order: {@code p_i = sqrt(v_i + epsilon) + epsilon},
     * {@code out = (sum p_i x_i) / (sum p_i)}, sums from +0.
     */
    public static void ota(ArrowBuf[] models, ArrowBuf[] moments, float epsilon, int count, ArrowBuf out) {
        int m = models.length;
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            float weights = 0.0f;
            float sum = 0.0f;
            for (int i = 0; i < m; i++) {
                // The double root of a float rounds to the float root: sqrt is correctly rounded in both.
                float p = (float) Math.sqrt(moments[i].getFloat(at) + epsilon) + epsilon;
                weights += p;
                sum += p * models[i].getFloat(at);
            }
            out.setFloat(at, sum / weights);
        }
    }

    /** {@code out = (d * d) * v} with {@code d = x - b}, float32: Fast Fisher Grafting's salience. */
    public static void salience(ArrowBuf x, ArrowBuf base, ArrowBuf moment, int count, ArrowBuf out) {
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            float d = x.getFloat(at) - base.getFloat(at);
            out.setFloat(at, (d * d) * moment.getFloat(at));
        }
    }

    /**
     * {@code out = b + (x - b)} where {@code keep} keeps the position's score (zero scores too: the
     * top k is of positions, not of non-zero scores), else {@code b}; returns how many it kept.
     * {@code scores} may alias no other argument.
     */
    public static long graft(ArrowBuf x, ArrowBuf base, ArrowBuf scores, KeepRule.TopK keep, int count, ArrowBuf out) {
        long equalRank = keep.equalsBefore();
        long kept = 0;
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            int bits = Float.floatToRawIntBits(scores.getFloat(at)) & 0x7fffffff;
            boolean keeps = Integer.compareUnsigned(bits, keep.thresholdBits()) > 0
                    || (bits == keep.thresholdBits() && equalRank++ < keep.equalsToKeep());
            float b = base.getFloat(at);
            out.setFloat(at, keeps ? b + (x.getFloat(at) - b) : b);
            kept += keeps ? 1 : 0;
        }
        return kept;
    }

    /**
     * WIDEN's importance scores of one vector (or element) across the models, float32: the softmax
     * of {@code significance} ({@code e_i = exp(s_i - max s)} by {@link PortableMath#exp}, summed
     * in model order, {@code e_i / sum}), replaced by {@code calibration} where
     * {@code significance[i] > thresholds[i]}.
     */
    public static void widenScores(float[] significance, float[] thresholds, float calibration, float[] into) {
        int m = significance.length;
        float max = significance[0];
        for (int i = 1; i < m; i++) {
            max = Math.max(max, significance[i]);
        }
        float total = 0.0f;
        for (int i = 0; i < m; i++) {
            into[i] = (float) PortableMath.exp(significance[i] - max);
            total += into[i];
        }
        for (int i = 0; i < m; i++) {
            into[i] = significance[i] > thresholds[i] ? calibration : into[i] / total;
        }
    }

    /**
     * WIDEN per element (tensors without a matrix to disentangle): {@code s = widenScores(|d|)},
     * {@code out = b + (d_0 s_0 + d_1 s_1 + ...)}, float32, models in config order.
     */
    public static void widenElements(ArrowBuf base, ArrowBuf[] models, float[] thresholds, float calibration, int count,
                                     ArrowBuf out) {
        int m = models.length;
        float[] d = new float[m];
        float[] diff = new float[m];
        float[] s = new float[m];
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            float b = base.getFloat(at);
            for (int i = 0; i < m; i++) {
                d[i] = models[i].getFloat(at) - b;
                diff[i] = Math.abs(d[i]);
            }
            widenScores(diff, thresholds, calibration, s);
            float sum = d[0] * s[0];
            for (int i = 1; i < m; i++) {
                sum += d[i] * s[i];
            }
            out.setFloat(at, b + sum);
        }
    }

    /**
     * PCB-merging's balance of model {@code i} at one element, float32: with {@code S} the sum of
     * the deltas (from the first, config order), {@code a = min(max(|d_i|, lo), hi)},
     * {@code s = (a - lo) / (hi - lo)} (0 when {@code hi <= lo}),
     * {@code pcb = exp(M * (s * s)) * tanh(d_i * S)} with {@link PortableMath#exp} rounded to
     * float32 and {@link PortableMath#tanh}.
     */
    static float balanceOf(float[] d, float sum, int i, float lo, float hi) {
        float a = Math.min(Math.max(Math.abs(d[i]), lo), hi);
        float s = hi > lo ? (a - lo) / (hi - lo) : 0.0f;
        float self = (float) PortableMath.exp(d.length * (s * s));
        return self * PortableMath.tanh(d[i] * sum);
    }

    /** {@link #balanceOf} of model {@code model} per element, signed. */
    public static void signedBalance(ArrowBuf base, ArrowBuf[] models, int model, float lo, float hi, int count,
                                     ArrowBuf out) {
        float[] d = new float[models.length];
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            float sum = deltasAt(base, models, at, d);
            out.setFloat(at, balanceOf(d, sum, model, lo, hi));
        }
    }

    /** {@code max(pcb, 0)} ({@code positive}) or {@code max(-pcb, 0)} of a signed balance, +0 elsewhere. */
    public static void balancePart(ArrowBuf signed, boolean positive, int count, ArrowBuf out) {
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            float pcb = signed.getFloat(at);
            out.setFloat(at, positive ? (pcb > 0.0f ? pcb : 0.0f) : (pcb < 0.0f ? -pcb : 0.0f));
        }
    }

    /** The deltas at one element into {@code d}; returns their sum from the first, in order. */
    private static float deltasAt(ArrowBuf base, ArrowBuf[] models, long at, float[] d) {
        float b = base.getFloat(at);
        float sum = 0.0f;
        for (int i = 0; i < models.length; i++) {
            d[i] = models[i].getFloat(at) - b;
            sum = i == 0 ? d[0] : sum + d[i];
        }
        return sum;
    }

    /**
     * PCB-merging per element, float32, models in config order (sums from the first term):
     * {@code t_i = sign(d_i) * min(max(|d_i|, lo_i), hi_i)}, {@code c_i = (max(pcb_i, low_i) - low_i)
     * / (high_i - low_i)} (0 when {@code high_i <= low_i}), {@code out = b + lambda *
     * ((sum c_i t_i) / max(sum c_i, 1e-12))}.
     */
    public static void pcb(ArrowBuf base, ArrowBuf[] models, float[] lo, float[] hi, float[] low, float[] high,
                           float lambda, int count, ArrowBuf out) {
        int m = models.length;
        float[] d = new float[m];
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            float sum = deltasAt(base, models, at, d);
            float num = 0.0f;
            float den = 0.0f;
            for (int i = 0; i < m; i++) {
                float c = 0.0f;
                if (high[i] > low[i]) {
                    c = (Math.max(balanceOf(d, sum, i, lo[i], hi[i]), low[i]) - low[i]) / (high[i] - low[i]);
                }
                float a = Math.min(Math.max(Math.abs(d[i]), lo[i]), hi[i]);
                float t = d[i] > 0.0f ? a : d[i] < 0.0f ? -a : 0.0f;
                num = i == 0 ? c * t : num + c * t;
                den = i == 0 ? c : den + c;
            }
            out.setFloat(at, base.getFloat(at) + lambda * (num / Math.max(den, 1e-12f)));
        }
    }

    /**
     * Consensus merging per element (see {@link ChunkKernels#consensus}), float32, models in
     * config order; {@code kept[i]} marks model i's entries its keep rule kept (null: all);
     * {@code v_i = w_i d_i} where kept and {@code d_i != 0}, else +0.
     */
    public static void consensus(ArrowBuf base, ArrowBuf[] models, float[] weights, long[][] kept, boolean ties,
                                 int tieSign, float[] tallLambdas, int minTasks, float alpha, int count, ArrowBuf out) {
        int m = models.length;
        float[] v = new float[m];
        for (int j = 0; j < count; j++) {
            long at = (long) j << 2;
            float b = base.getFloat(at);
            for (int i = 0; i < m; i++) {
                boolean keep = kept == null || kept[i] == null || (kept[i][j >>> 6] & (1L << j)) != 0;
                float d = models[i].getFloat(at) - b;
                // A dropped or zero delta is +0 whatever the weight's sign.
                v[i] = keep && d != 0.0f ? weights[i] * d : 0.0f;
            }
            float tv;
            if (ties) {
                tv = electedMean(v, tieSign);
            } else {
                tv = v[0];
                for (int i = 1; i < m; i++) {
                    tv += v[i];
                }
            }
            float multi = b + tv;
            int tasks = 0;
            for (int i = 0; i < m; i++) {
                float x = models[i].getFloat(at);
                if (Math.abs(x - b) > Math.abs(multi - x) * tallLambdas[i]) {
                    tasks++;
                }
            }
            out.setFloat(at, b + alpha * (tasks >= minTasks ? tv : 0.0f));
        }
    }
}
