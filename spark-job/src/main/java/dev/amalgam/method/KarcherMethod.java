package dev.amalgam.method;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.Operand;
import dev.amalgam.kernels.Primitive;

import java.util.ArrayList;
import java.util.List;

/**
 * {@code karcher}: the Riemannian (Karcher) mean of the inputs' directions on the unit sphere,
 * with equal weights, times their mean norm. The inputs are the models and the base when given.
 * The iterate stays in the span of the inputs, so the iteration runs in coefficients over one
 * Gram matrix: one statistics round (one extra read of the inputs) however many iterations
 * it takes, bounded by {@code max_iter}.
 */
final class KarcherMethod extends DeclaredMethod {

    KarcherMethod() {
        super("karcher", "Riemannian mean of the models' directions, times their mean norm",
                Inputs.optionalBase(1, Integer.MAX_VALUE)
                        .describedAs("two or more inputs: the models, and base_model if given"),
                List.of(Parameter.integer("max_iter", 10.0, Parameter.Range.atLeast(1), "most iterations"),
                        Parameter.number("tol", Parameter.Scope.GLOBAL, 1e-5, Parameter.Range.above(0), false,
                                "stop when the tangent step is shorter")),
                Primitive.DOT, Primitive.COMBINE);
    }

    @Override
    public List<String> checkInputs(String file, boolean hasBase, int models, String key) {
        List<String> problems = new ArrayList<>(inputs().check(file, name(), hasBase, models, key));
        if (problems.isEmpty() && models + (hasBase ? 1 : 0) < 2) {
            problems.add(file + ": merge_method karcher averages at least two inputs (the models and base_model if "
                    + "given), but " + (key.equals("models") ? "the config" : key) + " gives one; add a model");
        }
        return problems;
    }

    /** Models and then the base, all raw. */
    private static Operand[] vectors(MethodTensor t) {
        int n = t.modelCount() + (t.hasBase() ? 1 : 0);
        Operand[] v = new Operand[n];
        for (int i = 0; i < n; i++) {
            v[i] = new Operand.Value(i);
        }
        return v;
    }

    @Override
    public List<StatisticRequest> statistics(MethodTensor tensor, int round, TensorStatistics known) {
        return round == 0 ? Gram.requests(vectors(tensor)) : List.of();
    }

    /** The mean and how many iterations reached it. */
    record Mean(double[] coefficients, int iterations) {
    }

    static Mean mean(double[][] g, int maxIter, double tol) {
        int n = g.length;
        double a = 1.0 / n;
        double[] norms = new double[n];
        boolean[] used = new boolean[n];
        boolean any = false;
        for (int i = 0; i < n; i++) {
            norms[i] = Math.sqrt(g[i][i]);
            used[i] = norms[i] > tol;
            any |= used[i];
        }
        if (!any) {
            return new Mean(new double[n], 0);
        }
        double[][] units = new double[n][n];
        double[] u = new double[n];
        int first = -1;
        for (int i = 0; i < n; i++) {
            if (used[i]) {
                units[i][i] = 1.0 / norms[i];
                u[i] += a / norms[i];
                first = first < 0 ? i : first;
            }
        }
        double uNorm = Math.sqrt(Math.max(Gram.squaredNorm(g, u), 0.0));
        if (uNorm < tol) {
            u = units[first].clone();
        } else {
            divide(u, uNorm);
        }
        int iterations = 0;
        for (; iterations < maxIter; iterations++) {
            double[] tangent = new double[n];
            for (int i = 0; i < n; i++) {
                if (!used[i]) {
                    continue;
                }
                double c = Math.min(Math.max(Gram.dot(g, u, units[i]), -1.0), 1.0);
                double theta = Math.acos(c);
                if (theta < tol) {
                    continue;
                }
                double f = a * theta / Math.sin(theta);
                for (int j = 0; j < n; j++) {
                    tangent[j] += f * (units[i][j] - c * u[j]);
                }
            }
            double tNorm = Math.sqrt(Math.max(Gram.squaredNorm(g, tangent), 0.0));
            if (tNorm < tol) {
                break;
            }
            double[] next = new double[n];
            for (int j = 0; j < n; j++) {
                next[j] = Math.cos(tNorm) * u[j] + Math.sin(tNorm) * tangent[j] / tNorm;
            }
            divide(next, Math.sqrt(Math.max(Gram.squaredNorm(g, next), 0.0)));
            u = next;
        }
        double meanNorm = 0.0;
        for (int i = 0; i < n; i++) {
            meanNorm += a * norms[i];
        }
        for (int j = 0; j < n; j++) {
            u[j] *= meanNorm;
        }
        return new Mean(u, Math.min(iterations + 1, maxIter));
    }

    private static void divide(double[] v, double s) {
        for (int i = 0; i < v.length; i++) {
            v[i] /= s;
        }
    }

    @Override
    public void merge(ChunkKernels kernels, MethodTensor tensor, long chunkStart, int count, TensorStatistics stats,
                      MethodSettings settings, ChunkMetrics metrics) {
        Operand[] v = vectors(tensor);
        Mean mean = mean(Gram.of(v, stats), (int) global(tensor, "max_iter"), global(tensor, "tol"));
        metrics.iterations = Math.max(metrics.iterations, mean.iterations());
        kernels.combine(v, Gram.toFloats(mean.coefficients()), false, count, metrics);
    }
}
