package dev.amalgam.method;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.Operand;
import dev.amalgam.kernels.Primitive;

import java.util.List;

/**
 * {@code nuslerp}: spherical interpolation of two models by their weights
 * ({@code t = w_2 / (w_1 + w_2)}), of their deltas when a base is given. Flattened (the default)
 * the angle is over the whole tensor, from one statistics round; otherwise per row, from the
 * chunk's own row dot products (chunks hold whole rows); with {@code nuslerp_row_wise} per vector
 * along the first dimension (the columns of a matrix), which needs the whole tensor in one chunk.
 */
final class NuslerpMethod extends DeclaredMethod {

    NuslerpMethod() {
        super("nuslerp", "spherical interpolation of two models (or their deltas) by weight",
                Inputs.optionalBase(2, 2),
                List.of(weight(),
                        Parameter.flag("nuslerp_flatten", true, "one angle per tensor (else one per row)"),
                        Parameter.flag("nuslerp_row_wise", false,
                                "with nuslerp_flatten false: vectors along the first dimension (columns) instead of rows")),
                Primitive.DOT, Primitive.COMBINE, Primitive.ROW_DOT, Primitive.COMBINE_ROWS, Primitive.COLUMN_DOT,
                Primitive.COMBINE_COLUMNS);
    }

    @Override
    public boolean rowAligned() {
        return true;
    }

    /** The deltas when a base is given, else the raw tensors. */
    private static Operand[] vectors(MethodTensor t) {
        return Gram.inputs(2, t.hasBase());
    }

    private boolean columns(MethodTensor t) {
        return !flag(t, "nuslerp_flatten") && flag(t, "nuslerp_row_wise");
    }

    @Override
    public boolean wholeTensor(MethodTensor tensor) {
        return columns(tensor);
    }

    /** How many vectors along the first dimension: the elements over the first dimension's length. */
    private static int columnCount(MethodTensor t) {
        long[] shape = t.shape();
        return shape.length == 0 || shape[0] == 0 ? 1 : (int) (t.elements() / shape[0]);
    }

    @Override
    public List<String> check(MethodTensor tensor) {
        if (columns(tensor) && tensor.elements() > Integer.MAX_VALUE - 8) {
            return List.of("parameters.nuslerp_row_wise: tensor '" + tensor.name() + "' has " + tensor.elements()
                    + " elements, more than one chunk can hold, and vectors along its first dimension need it whole; "
                    + "use nuslerp_row_wise: false or nuslerp_flatten: true");
        }
        return List.of();
    }

    @Override
    public List<StatisticRequest> statistics(MethodTensor tensor, int round, TensorStatistics known) {
        if (round > 0 || !flag(tensor, "nuslerp_flatten")) {
            return List.of();
        }
        return Gram.requests(vectors(tensor));
    }

    static double interpolationT(double w1, double w2) {
        return Math.abs(w1 + w2) < 1e-6 ? 0.5 : w2 / (w1 + w2);
    }

    /** Coefficients of {@code (v0, v1)} from their squared norms and dot product. */
    static double[] coefficients(double t, double g00, double g11, double g01) {
        double n0 = Math.max(Math.sqrt(g00), 1e-7);
        double n1 = Math.max(Math.sqrt(g11), 1e-7);
        double cos = Math.min(Math.max(g01 / (n0 * n1), -1.0), 1.0);
        double theta = Math.acos(cos);
        double sin = Math.sin(theta);
        if (Math.abs(sin) < 1e-8) {
            return new double[]{1.0 - t, t};
        }
        return new double[]{Math.sin((1.0 - t) * theta) / sin, Math.sin(t * theta) / sin};
    }

    @Override
    public void merge(ChunkKernels kernels, MethodTensor tensor, long chunkStart, int count, TensorStatistics stats,
                      MethodSettings settings, ChunkMetrics metrics) {
        Operand[] v = vectors(tensor);
        double t = interpolationT(model(tensor, 0, "weight"), model(tensor, 1, "weight"));
        if (flag(tensor, "nuslerp_flatten")) {
            double[][] g = Gram.of(v, stats);
            kernels.combine(v, Gram.toFloats(coefficients(t, g[0][0], g[1][1], g[0][1])), settings.hasBase(), count,
                    metrics);
            return;
        }
        if (columns(tensor)) {
            mergeColumns(kernels, tensor, v, t, count, settings, metrics);
            return;
        }
        int cols = tensor.cols();
        float[][] c = perVector(v, t, count / cols, (x, y, into) -> kernels.rowDots(x, y, count, cols, into));
        kernels.combineRows(v, c, cols, settings.hasBase(), count, metrics);
    }

    /** The dot products of a pair of operands, one per vector (row or column). */
    private interface VectorDots {
        void of(Operand a, Operand b, float[] into);
    }

    /** Both inputs' coefficients for each of {@code vectors} vectors, from their norms and dot product. */
    private static float[][] perVector(Operand[] v, double t, int vectors, VectorDots dots) {
        float[] g00 = new float[vectors];
        float[] g11 = new float[vectors];
        float[] g01 = new float[vectors];
        dots.of(v[0], v[0], g00);
        dots.of(v[1], v[1], g11);
        dots.of(v[0], v[1], g01);
        float[][] c = new float[2][vectors];
        for (int k = 0; k < vectors; k++) {
            double[] pair = coefficients(t, g00[k], g11[k], g01[k]);
            c[0][k] = (float) pair[0];
            c[1][k] = (float) pair[1];
        }
        return c;
    }

    /** One angle per vector along the first dimension; the chunk is the whole tensor. */
    private static void mergeColumns(ChunkKernels kernels, MethodTensor tensor, Operand[] v, double t, int count,
                                     MethodSettings settings, ChunkMetrics metrics) {
        int columns = columnCount(tensor);
        float[][] c = perVector(v, t, columns, (x, y, into) -> kernels.columnDots(x, y, count, columns, into));
        kernels.combineColumns(v, c, columns, settings.hasBase(), count, metrics);
    }
}
