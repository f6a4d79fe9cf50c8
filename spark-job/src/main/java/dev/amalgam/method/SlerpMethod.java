package dev.amalgam.method;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.Operand;
import dev.amalgam.kernels.Primitive;

import java.util.List;

/**
 * {@code slerp}: spherical interpolation from the base ({@code t = 0}) to the other model
 * ({@code t = 1}) over each whole tensor. One statistics round gives the Gram matrix of the two
 * raw tensors; the angle and the two coefficients are computed in double on the driver side of
 * the chunk and rounded to float32; the chunk kernel is {@code s0 b + s1 x}.
 */
final class SlerpMethod extends DeclaredMethod {
    static final double DOT_THRESHOLD = 0.9995;

    SlerpMethod() {
        super("slerp", "spherical interpolation between the base and one model",
                Inputs.baseAmong(1),
                List.of(Parameter.number("t", Parameter.Scope.GLOBAL, null, Parameter.Range.ANY, true,
                        "interpolation factor: 0 is the base, 1 the model").withExample(0.5)),
                Primitive.DOT, Primitive.COMBINE);
    }

    private static Operand[] vectors(MethodTensor t) {
        return new Operand[]{base(t), new Operand.Value(0)};
    }

    @Override
    public List<StatisticRequest> statistics(MethodTensor tensor, int round, TensorStatistics known) {
        return round == 0 ? Gram.requests(vectors(tensor)) : List.of();
    }

    /** The coefficients of {@code (b, x)}. */
    static double[] coefficients(double t, double[][] g) {
        double n0 = Math.sqrt(g[0][0]);
        double n1 = Math.sqrt(g[1][1]);
        // Unit copies only where the norm is above 1e-8; a tiny vector stays as it is.
        double dot = g[0][1] / ((n0 > 1e-8 ? n0 : 1.0) * (n1 > 1e-8 ? n1 : 1.0));
        if (Math.abs(dot) > DOT_THRESHOLD) {
            return new double[]{1.0 - t, t};
        }
        double theta = Math.acos(dot);
        double sin = Math.sin(theta);
        return new double[]{Math.sin((1.0 - t) * theta) / sin, Math.sin(t * theta) / sin};
    }

    @Override
    public void merge(ChunkKernels kernels, MethodTensor tensor, long chunkStart, int count, TensorStatistics stats,
                      MethodSettings settings, ChunkMetrics metrics) {
        Operand[] v = vectors(tensor);
        double[] c = coefficients(global(tensor, "t"), Gram.of(v, stats));
        kernels.combine(v, Gram.toFloats(c), false, count, metrics);
    }
}
