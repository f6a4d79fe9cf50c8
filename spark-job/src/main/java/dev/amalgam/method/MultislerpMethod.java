package dev.amalgam.method;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.Operand;
import dev.amalgam.kernels.Primitive;

import java.util.List;

/**
 * {@code multislerp}: the weighted spherical mean of several models (of their deltas when a base
 * is given), one tangent step from the normalized weighted mean of their directions, scaled by
 * the weighted mean norm. Every vector it builds ({@code m}, the tangents, the result) is a
 * combination of the inputs, so one statistics round (the Gram matrix) gives all norms and dot
 * products; the geometry runs in coefficients, in double, and the chunk kernel combines the inputs.
 */
final class MultislerpMethod extends DeclaredMethod {

    MultislerpMethod() {
        super("multislerp", "weighted spherical mean of several models (or their deltas)",
                Inputs.optionalBase(2, Integer.MAX_VALUE),
                List.of(weight(),
                        Parameter.flag("normalize_weights", true, "divide the weights by their sum"),
                        Parameter.number("eps", Parameter.Scope.GLOBAL, 1e-8, Parameter.Range.above(0), false,
                                "guard against division by zero")),
                Primitive.DOT, Primitive.COMBINE);
    }

    private static Operand[] vectors(MethodTensor t) {
        return Gram.inputs(t.modelCount(), t.hasBase());
    }

    @Override
    public List<StatisticRequest> statistics(MethodTensor tensor, int round, TensorStatistics known) {
        return round == 0 ? Gram.requests(vectors(tensor)) : List.of();
    }

    /**
     * The result's coefficients over the inputs, or null where the weighted mean direction
     * vanishes with more than two models (no direction to step from).
     */
    static double[] coefficients(double[] weights, boolean normalize, double eps, double[][] g) {
        int n = weights.length;
        double[] w = weights.clone();
        if (normalize) {
            double sum = 0.0;
            for (double x : w) {
                sum += x;
            }
            for (int i = 0; i < n; i++) {
                w[i] /= sum;
            }
        }
        double[] norms = new double[n];
        double[] m = new double[n]; // m = sum_i w_i u_i, u_i = v_i / (n_i + eps)
        for (int i = 0; i < n; i++) {
            norms[i] = Math.sqrt(g[i][i]);
            m[i] = w[i] / (norms[i] + eps);
        }
        double mNorm = Math.sqrt(Math.max(Gram.squaredNorm(g, m), 0.0));
        if (mNorm < eps) {
            return n == 2 ? w : null;
        }
        for (int i = 0; i < n; i++) {
            m[i] /= mNorm;
        }
        // g = sum_i w_i (u_i - <u_i, m> m)
        double[] tangent = new double[n];
        for (int i = 0; i < n; i++) {
            double[] u = new double[n];
            u[i] = 1.0 / (norms[i] + eps);
            double c = Gram.dot(g, u, m);
            for (int j = 0; j < n; j++) {
                tangent[j] += w[i] * (u[j] - c * m[j]);
            }
        }
        double a = Math.sqrt(Math.max(Gram.squaredNorm(g, tangent), 0.0)) + eps;
        double scale = 0.0;
        for (int i = 0; i < n; i++) {
            scale += w[i] * norms[i];
        }
        double[] result = new double[n];
        for (int j = 0; j < n; j++) {
            result[j] = (m[j] * Math.cos(a) + tangent[j] * Math.sin(a) / a) * scale;
        }
        return result;
    }

    @Override
    public void merge(ChunkKernels kernels, MethodTensor tensor, long chunkStart, int count, TensorStatistics stats,
                      MethodSettings settings, ChunkMetrics metrics) {
        Operand[] v = vectors(tensor);
        double[] weights = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            weights[i] = model(tensor, i, "weight");
        }
        double[] c = coefficients(weights, flag(tensor, "normalize_weights"), global(tensor, "eps"), Gram.of(v, stats));
        if (c == null) {
            throw new IllegalStateException("multislerp: the weighted mean of the models' directions vanishes on tensor '"
                    + tensor.name() + "', so it has no direction to interpolate along; change the weights");
        }
        kernels.combine(v, Gram.toFloats(c), tensor.hasBase(), count, metrics);
    }
}
