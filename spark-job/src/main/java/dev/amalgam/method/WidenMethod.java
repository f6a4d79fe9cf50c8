package dev.amalgam.method;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.ComposedKernels;
import dev.amalgam.kernels.Operand;
import dev.amalgam.kernels.Primitive;

import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * {@code widen} (Yu et al. 2024, "Extend Model Merging from Fine-Tuned to Pre-Trained Large
 * Language Models via Weight Disentanglement"), as the authors' code merges (docs/methods.md).
 * A matrix is disentangled into a magnitude per vector (its columns; an input embedding's rows)
 * and a direction; each model's vectors are ranked by how far their magnitude and direction moved
 * from the base, the ranks turned into scores across models (a softmax, with the above-average
 * ranks calibrated), and the deltas summed with the mean of both scores per vector. Tensors
 * without a matrix to disentangle (norms, biases, fused experts) score each element by its |delta|.
 *
 * <p>A matrix's ranking spans all its vectors, so it is merged as one chunk; other tensors need
 * each model's mean |delta| over the tensor (one statistics round when cut into chunks).
 */
final class WidenMethod extends DeclaredMethod {
    /** Input embeddings, stored [vocab, hidden]: the authors transpose them, so their vectors are rows. */
    private static final Pattern EMBEDDING = Pattern.compile("(^|\\.)(embed_tokens|wte|word_embeddings)\\.weight$");

    WidenMethod() {
        super("widen", "per-vector magnitude and direction changes ranked against the base, softmax across models",
                Inputs.base(1, Integer.MAX_VALUE),
                List.of(Parameter.number("above_average_value_ratio", Parameter.Scope.GLOBAL, 1.0, Parameter.Range.ANY,
                                false, "a vector (or element) scoring above the model's mean times this is calibrated"),
                        Parameter.number("score_calibration_value", Parameter.Scope.GLOBAL, 1.0, Parameter.Range.ANY,
                                false, "the score given to those above-average vectors")),
                Primitive.COLUMN_DOT, Primitive.ROW_DOT, Primitive.COMBINE_COLUMNS, Primitive.COMBINE_ROWS,
                Primitive.KEPT_ABS_SUM, Primitive.WIDEN);
    }

    private static boolean matrix(MethodTensor t) {
        return t.shape().length == 2 && t.elements() > 0;
    }

    /** Whether the matrix's vectors are its rows (an input embedding) rather than its columns. */
    private static boolean byRow(MethodTensor t) {
        return EMBEDDING.matcher(t.name()).find();
    }

    @Override
    public boolean wholeTensor(MethodTensor tensor) {
        return matrix(tensor);
    }

    @Override
    public Set<Primitive> primitives(MethodTensor tensor) {
        return matrix(tensor)
                ? EnumSet.of(Primitive.CODEC, Primitive.COLUMN_DOT, Primitive.ROW_DOT, Primitive.COMBINE_COLUMNS,
                        Primitive.COMBINE_ROWS)
                : EnumSet.of(Primitive.CODEC, Primitive.KEPT_ABS_SUM, Primitive.WIDEN);
    }

    @Override
    public List<String> check(MethodTensor tensor) {
        if (matrix(tensor) && tensor.elements() > Integer.MAX_VALUE - 8) {
            return List.of("merge_method widen: tensor '" + tensor.name() + "' has " + tensor.elements()
                    + " elements, more than one chunk can hold, and ranking its vectors needs it whole; "
                    + "merge it with another method in a slice of its own");
        }
        return List.of();
    }

    @Override
    public List<StatisticRequest> statistics(MethodTensor tensor, int round, TensorStatistics known) {
        if (round > 0 || matrix(tensor) || tensor.elements() == 0) {
            return List.of();
        }
        List<StatisticRequest> requests = new ArrayList<>();
        for (int i = 0; i < tensor.modelCount(); i++) {
            requests.add(StatisticRequest.absSum(new Operand.Delta(i)));
        }
        return requests;
    }

    @Override
    public void merge(ChunkKernels kernels, MethodTensor tensor, long chunkStart, int count, TensorStatistics stats,
                      MethodSettings settings, ChunkMetrics metrics) {
        float ratio = (float) global(tensor, "above_average_value_ratio");
        float calibration = (float) global(tensor, "score_calibration_value");
        int m = tensor.modelCount();
        if (!matrix(tensor)) {
            float[] thresholds = new float[m];
            for (int i = 0; i < m; i++) {
                float mean = tensor.elements() == 0 ? 0.0f
                        : (float) (stats.value(StatisticRequest.absSum(new Operand.Delta(i))) / tensor.elements());
                thresholds[i] = mean * ratio;
            }
            kernels.widenElements(thresholds, calibration, count, metrics);
            return;
        }
        boolean rows = byRow(tensor);
        int cols = tensor.cols();
        int vectors = rows ? count / cols : cols;
        Operand base = base(tensor);
        float[] baseSquares = dots(kernels, base, base, rows, count, cols, vectors);
        float[][] magnitude = new float[m][];
        float[][] direction = new float[m][];
        for (int i = 0; i < m; i++) {
            Operand x = new Operand.Value(i);
            float[] squares = dots(kernels, x, x, rows, count, cols, vectors);
            float[] withBase = dots(kernels, x, base, rows, count, cols, vectors);
            magnitude[i] = new float[vectors];
            direction[i] = new float[vectors];
            for (int v = 0; v < vectors; v++) {
                float normX = (float) Math.sqrt(squares[v]);
                float normB = (float) Math.sqrt(baseSquares[v]);
                float norms = normX * normB;
                magnitude[i][v] = Math.abs(normX - normB);
                direction[i][v] = 1.0f - (norms == 0.0f ? 0.0f : withBase[v] / norms);
            }
        }
        float[][] magnitudeScores = scores(ranks(magnitude), ratio, calibration);
        float[][] directionScores = scores(ranks(direction), ratio, calibration);
        float[][] weights = new float[m][vectors];
        Operand[] deltas = new Operand[m];
        for (int i = 0; i < m; i++) {
            deltas[i] = new Operand.Delta(i);
            for (int v = 0; v < vectors; v++) {
                weights[i][v] = 0.5f * (magnitudeScores[i][v] + directionScores[i][v]);
            }
        }
        if (rows) {
            kernels.combineRows(deltas, weights, cols, true, count, metrics);
        } else {
            kernels.combineColumns(deltas, weights, cols, true, count, metrics);
        }
    }

    private static float[] dots(ChunkKernels kernels, Operand a, Operand b, boolean rows, int count, int cols,
                                int vectors) {
        float[] into = new float[vectors];
        if (rows) {
            kernels.rowDots(a, b, count, cols, into);
        } else {
            kernels.columnDots(a, b, count, cols, into);
        }
        return into;
    }

    /**
     * Each model's significance per vector: its position in the model's ascending order of
     * {@code diff} (equal values by lower vector index) over the vector count, in float32.
     */
    static float[][] ranks(float[][] diff) {
        float[][] significance = new float[diff.length][];
        for (int i = 0; i < diff.length; i++) {
            float[] d = diff[i];
            int n = d.length;
            Integer[] order = new Integer[n];
            for (int v = 0; v < n; v++) {
                order[v] = v;
            }
            // List.sort is stable: equal values keep ascending vector order.
            java.util.Arrays.sort(order, (a, b) -> d[a] < d[b] ? -1 : d[a] > d[b] ? 1 : 0);
            significance[i] = new float[n];
            for (int r = 0; r < n; r++) {
                significance[i][order[r]] = (float) r / (float) n;
            }
        }
        return significance;
    }

    /**
     * Scores per model and vector: {@link ComposedKernels#widenScores} across the models, the
     * threshold each model's mean significance (exact sum over the vectors, divided in double,
     * rounded to float32) times {@code ratio} in float32.
     */
    static float[][] scores(float[][] significance, float ratio, float calibration) {
        int m = significance.length;
        int n = significance[0].length;
        float[] thresholds = new float[m];
        for (int i = 0; i < m; i++) {
            java.math.BigDecimal sum = java.math.BigDecimal.ZERO;
            for (float s : significance[i]) {
                sum = sum.add(new java.math.BigDecimal(s));
            }
            thresholds[i] = (float) (sum.doubleValue() / n) * ratio;
        }
        float[][] scores = new float[m][n];
        float[] column = new float[m];
        float[] into = new float[m];
        for (int v = 0; v < n; v++) {
            for (int i = 0; i < m; i++) {
                column[i] = significance[i][v];
            }
            ComposedKernels.widenScores(column, thresholds, calibration, into);
            for (int i = 0; i < m; i++) {
                scores[i][v] = into[i];
            }
        }
        return scores;
    }
}
