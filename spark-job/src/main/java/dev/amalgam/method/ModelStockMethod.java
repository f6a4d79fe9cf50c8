package dev.amalgam.method;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.Operand;
import dev.amalgam.kernels.Primitive;

import java.util.ArrayList;
import java.util.List;

/**
 * {@code model_stock}: interpolates between the base and the models' mean by how aligned the
 * fine-tunes' deltas are: {@code cos} is the mean pairwise cosine of the deltas,
 * {@code t = N cos / (1 + (N - 1) cos)}, result {@code t mean(x) + (1 - t) b}. Over the whole
 * tensor from one statistics round, or per row ({@code filter_wise}) from the chunk's row dot
 * products.
 */
final class ModelStockMethod extends DeclaredMethod {

    ModelStockMethod() {
        super("model_stock", "base-to-mean interpolation by the fine-tunes' mean pairwise cosine",
                Inputs.base(2, Integer.MAX_VALUE),
                List.of(Parameter.flag("filter_wise", false, "one ratio per row instead of per tensor")),
                Primitive.DOT, Primitive.COMBINE, Primitive.ROW_DOT, Primitive.COMBINE_ROWS);
    }

    @Override
    public boolean rowAligned() {
        return true;
    }

    @Override
    public List<StatisticRequest> statistics(MethodTensor tensor, int round, TensorStatistics known) {
        if (round > 0 || flag(tensor, "filter_wise")) {
            return List.of();
        }
        return Gram.requests(Gram.inputs(tensor.modelCount(), true));
    }

    /** The interpolation ratio from the deltas' Gram matrix. */
    static double ratio(double[][] g) {
        int n = g.length;
        double sum = 0.0;
        int pairs = 0;
        for (int i = 0; i < n; i++) {
            for (int j = i + 1; j < n; j++) {
                sum += g[i][j] / Math.max(Math.sqrt(g[i][i]) * Math.sqrt(g[j][j]), 1e-6);
                pairs++;
            }
        }
        double cos = Math.min(Math.max(sum / pairs, -1.0), 1.0);
        return n * cos / (1.0 + (n - 1) * cos);
    }

    /** Terms: the models' raw tensors, then the base. */
    private static Operand[] terms(MethodTensor t) {
        Operand[] v = new Operand[t.modelCount() + 1];
        for (int i = 0; i < t.modelCount(); i++) {
            v[i] = new Operand.Value(i);
        }
        v[t.modelCount()] = base(t);
        return v;
    }

    private static void fill(double t, int n, float[][] c, int row) {
        for (int i = 0; i < n; i++) {
            c[i][row] = (float) (t / n);
        }
        c[n][row] = (float) (1.0 - t);
    }

    @Override
    public void merge(ChunkKernels kernels, MethodTensor tensor, long chunkStart, int count, TensorStatistics stats,
                      MethodSettings settings, ChunkMetrics metrics) {
        int n = tensor.modelCount();
        Operand[] deltas = Gram.inputs(n, true);
        if (!flag(tensor, "filter_wise")) {
            float[][] c = new float[n + 1][1];
            fill(ratio(Gram.of(deltas, stats)), n, c, 0);
            float[] flat = new float[n + 1];
            for (int i = 0; i <= n; i++) {
                flat[i] = c[i][0];
            }
            kernels.combine(terms(tensor), flat, false, count, metrics);
            return;
        }
        int cols = tensor.cols();
        int rows = count / cols;
        List<float[]> dots = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            for (int j = i; j < n; j++) {
                float[] d = new float[rows];
                kernels.rowDots(deltas[i], deltas[j], count, cols, d);
                dots.add(d);
            }
        }
        float[][] c = new float[n + 1][rows];
        double[][] g = new double[n][n];
        for (int r = 0; r < rows; r++) {
            int k = 0;
            for (int i = 0; i < n; i++) {
                for (int j = i; j < n; j++) {
                    g[i][j] = dots.get(k++)[r];
                    g[j][i] = g[i][j];
                }
            }
            fill(ratio(g), n, c, r);
        }
        kernels.combineRows(terms(tensor), c, cols, false, count, metrics);
    }
}
