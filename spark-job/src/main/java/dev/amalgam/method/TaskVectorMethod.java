package dev.amalgam.method;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.KeepRule;
import dev.amalgam.kernels.Operand;
import dev.amalgam.kernels.Primitive;
import dev.amalgam.kernels.TaskVectorKernel;

import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

import static dev.amalgam.method.Parameter.Range;
import static dev.amalgam.method.Parameter.Scope.MODEL;

/**
 * The task-vector family (METHODS.md): one sparsifier and one consensus rule, with the family's
 * shared procedure. The eight named methods are instances of this class.
 *
 * <p>Statistics: the order statistics of each sparsified model's |delta| its keep rule needs,
 * then, with {@code rescale}, the exact L1 sums of its delta before and after the rule.
 *
 * <p>{@code ties} also takes {@code trim_scope: model}, TIES as its paper defines it (METHODS.md):
 * each model's top-k over its whole checkpoint (a {@link Scope#MODEL} order statistic), then the
 * whole-model sign sum of the trimmed total for the elements where it is 0, and a merge that
 * averages agreeing entries by their count ({@link Primitive#TIES_MODEL}).
 *
 * <p>Every member takes LiNeS ({@code lines: {alpha, beta}}, METHODS.md): the merged delta of
 * decoder layer {@code l} of {@code L} scaled by {@code alpha + beta * l / (L - 1)}, other tensors
 * by {@code alpha}, applied as the kernel's lambda ({@code float32(lambda * scale)}). Without
 * {@code alpha}, a last round sums {@code |sum_i w_i d_i|} and {@code |merged delta|} over the
 * whole model and {@code alpha} is their ratio over the model count.
 */
public final class TaskVectorMethod implements MergeMethod {
    private final String name;
    private final String summary;
    private final TaskVectorKernel.Consensus consensus;
    private final Sparsifier sparsifier;
    private final List<Parameter> parameters;
    private final boolean trimScopes;

    public TaskVectorMethod(String name, String summary, TaskVectorKernel.Consensus consensus, Sparsifier sparsifier,
                            boolean normalizeDefault, boolean rescaleDefault) {
        this(name, summary, consensus, sparsifier, normalizeDefault, rescaleDefault, false);
    }

    /** @param trimScopes whether the method takes {@code trim_scope} (tensor, or the paper's whole model) */
    public TaskVectorMethod(String name, String summary, TaskVectorKernel.Consensus consensus, Sparsifier sparsifier,
                            boolean normalizeDefault, boolean rescaleDefault, boolean trimScopes) {
        this.trimScopes = trimScopes;
        this.name = name;
        this.summary = summary;
        this.consensus = consensus;
        this.sparsifier = sparsifier;
        List<Parameter> p = new ArrayList<>();
        p.add(Parameter.flag("normalize", normalizeDefault, "divide the mix by the sum of (agreeing) weights"));
        p.add(Parameter.flag("rescale", rescaleDefault, "scale survivors so the delta's L1 norm is unchanged"));
        p.add(Parameter.number("lambda", Parameter.Scope.GLOBAL, 1.0, Range.ANY, true, "scale of the merged delta"));
        p.add(Parameter.flag("int8_mask", false, "accepted for compatibility; no effect on results"));
        p.add(Parameter.integer("random_seed", 0.0, Range.atLeast(0), "seed of random masks (config's random_seed wins)"));
        p.add(Parameter.number("weight", MODEL, null, Range.ANY, true, "the model's weight").withExample(0.5));
        if (sparsifier != Sparsifier.NONE) {
            p.add(Parameter.number("density", MODEL, 1.0, Range.openClosed(0, 1), true, "fraction of the delta kept")
                    .withExample(0.5));
        }
        if (sparsifier == Sparsifier.MAGNITUDE_OUTLIERS) {
            p.add(Parameter.number("gamma", MODEL, 0.01, Range.closedOpen(0, 1), true,
                    "fraction of largest-magnitude outliers dropped"));
        }
        if (sparsifier == Sparsifier.DELLA_MAGPRUNE) {
            p.add(Parameter.number("epsilon", MODEL, 0.15, Range.closedOpen(0, 1), true,
                    "spread of keep probabilities around density"));
        }
        p.add(Parameter.number("lines.alpha", Parameter.Scope.GLOBAL, Double.NaN, Range.ANY, false,
                "LiNeS: scale of the merged delta outside the layers and at layer 0; computed from whole-model L1 "
                        + "norms when lines is given without it"));
        p.add(Parameter.number("lines.beta", Parameter.Scope.GLOBAL, Double.NaN, Range.ANY, false,
                "LiNeS: the scale's rise from the first layer to the last (LiNeS is off unless lines is given)"));
        if (trimScopes) {
            p.add(Parameter.choice("trim_scope", List.of("tensor", "model"),
                    "top-k per tensor, or per model over its whole checkpoint as in the TIES paper"));
        }
        this.parameters = List.copyOf(p);
    }

    /** Whether this tensor trims by whole-model thresholds (the TIES paper). */
    private boolean modelScope(MethodTensor t) {
        return trimScopes && global(t, "trim_scope") == 1.0;
    }

    /** The number of entries a model's threshold ranks: the tensor's, or every merged tensor's. */
    private long ranked(MethodTensor t) {
        return modelScope(t) ? t.extent().elements() : t.elements();
    }

    private StatisticRequest order(MethodTensor t, int model, long position) {
        StatisticRequest r = StatisticRequest.order(new Operand.Delta(model), position);
        return modelScope(t) ? r.over(Scope.MODEL) : r;
    }

    /** LiNeS without alpha: the whole model's |sum_i w_i d_i| and |merged delta|. */
    private static final StatisticRequest WEIGHTED_L1 = StatisticRequest.absSum(new Operand.Output(0)).over(Scope.MODEL);
    private static final StatisticRequest MERGED_L1 = StatisticRequest.absSum(new Operand.Output(1)).over(Scope.MODEL);

    /** Whether LiNeS scales this tensor's merged delta ({@code lines} given). */
    private boolean lines(MethodTensor t) {
        return !Double.isNaN(global(t, "lines.alpha")) || !Double.isNaN(global(t, "lines.beta"));
    }

    /** Whether LiNeS computes alpha from whole-model norms. */
    private boolean linesAlphaComputed(MethodTensor t) {
        return lines(t) && Double.isNaN(global(t, "lines.alpha"));
    }

    /** The LiNeS scale of this tensor, in double: 1 without LiNeS. */
    private double linesScale(MethodTensor t, TensorStatistics stats) {
        if (!lines(t)) {
            return 1.0;
        }
        double alpha = global(t, "lines.alpha");
        if (Double.isNaN(alpha)) {
            double weighted = stats.value(WEIGHTED_L1);
            double merged = stats.value(MERGED_L1);
            if (Double.isNaN(weighted) || Double.isNaN(merged)) {
                throw new IllegalStateException("tensor '" + t.name() + "' merges before LiNeS' norms were reduced");
            }
            alpha = merged == 0.0 ? 1.0 : weighted / (t.modelCount() * merged);
        }
        double beta = Double.isNaN(global(t, "lines.beta")) ? 0.0 : global(t, "lines.beta");
        int layers = t.extent().layers();
        int layer = t.layer();
        return layer < 0 || layers <= 1 ? alpha : alpha + beta * layer / (layers - 1);
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public String summary() {
        return summary;
    }

    @Override
    public Inputs inputs() {
        return Inputs.base(1, Integer.MAX_VALUE);
    }

    @Override
    public List<Parameter> parameters() {
        return parameters;
    }

    @Override
    public Set<Primitive> primitives() {
        Set<Primitive> all = EnumSet.of(Primitive.CODEC, Primitive.DELTA_ORDER, Primitive.KEPT_ABS_SUM,
                Primitive.TASK_VECTOR, Primitive.COMBINE, Primitive.OUTPUT_SUM);
        if (trimScopes) {
            all.add(Primitive.TIES_MODEL);
        }
        return all;
    }

    @Override
    public Set<Primitive> primitives(MethodTensor tensor) {
        Set<Primitive> needed = modelScope(tensor) ? EnumSet.of(Primitive.CODEC, Primitive.DELTA_ORDER, Primitive.TIES_MODEL)
                : EnumSet.of(Primitive.CODEC, Primitive.DELTA_ORDER, Primitive.KEPT_ABS_SUM, Primitive.TASK_VECTOR);
        if (linesAlphaComputed(tensor)) {
            needed.add(Primitive.COMBINE);
            needed.add(Primitive.OUTPUT_SUM);
        }
        return needed;
    }

    @Override
    public boolean wideStatistics(MethodTensor tensor) {
        return modelScope(tensor) || linesAlphaComputed(tensor);
    }

    @Override
    public boolean rowAligned() {
        return sparsifier == Sparsifier.DELLA_MAGPRUNE;
    }

    /** The config's decimal value, kept in double: counts derived from it must be exact. */
    private double density(MethodTensor t, int i) {
        return sparsifier == Sparsifier.NONE ? 1.0 : model(t, i, "density");
    }

    private double gamma(MethodTensor t, int i) {
        return sparsifier == Sparsifier.MAGNITUDE_OUTLIERS ? model(t, i, "gamma") : 0.0;
    }

    private double epsilon(MethodTensor t, int i) {
        return sparsifier == Sparsifier.DELLA_MAGPRUNE ? model(t, i, "epsilon") : 0.0;
    }

    @Override
    public List<String> check(MethodTensor tensor) {
        List<String> problems = new ArrayList<>();
        for (int i = 0; i < tensor.modelCount(); i++) {
            double density = density(tensor, i);
            String where = "models[" + i + "] (" + tensor.inputFile(i) + "), tensor '" + tensor.name() + "'";
            if (modelScope(tensor)) {
                String problem = WholeModelTrim.keepsNothing(tensor, i, density);
                if (problem != null) {
                    problems.add(problem);
                }
                continue;
            }
            if (sparsifier == Sparsifier.MAGNITUDE && density < 1.0 && tensor.elements() > 0
                    && Sparsifier.keepCount(density, tensor.elements()) == 0) {
                problems.add(where + ": density " + density + " keeps floor(density x " + tensor.elements()
                        + ") = 0 entries; raise density for this tensor (a filter entry can target it)");
            }
            float epsilon = (float) epsilon(tensor, i);
            float p = (float) density;
            if (sparsifier == Sparsifier.DELLA_MAGPRUNE && density < 1.0
                    && !(p - epsilon > 0.0f && p + epsilon < 1.0f)) {
                problems.add(where + ": epsilon " + epsilon + " with density " + density
                        + " must satisfy 0 < density - epsilon and density + epsilon < 1; lower epsilon");
            }
        }
        return problems;
    }

    /**
     * With {@code trim_scope: model} every tensor must say the same: one scope, and for each
     * model one density, since a model's threshold is one number over all of them.
     */
    @Override
    public List<String> checkAll(String file, List<? extends MethodTensor> tensors) {
        if (!trimScopes || tensors.stream().noneMatch(this::modelScope)) {
            return List.of();
        }
        List<String> problems = new ArrayList<>();
        MethodTensor first = tensors.get(0);
        for (MethodTensor t : tensors) {
            if (!modelScope(t)) {
                problems.add(file + ": trim_scope is model for some tensors and tensor for '" + t.name() + "'; a "
                        + "whole-model threshold needs every tensor: give trim_scope one value");
                return problems;
            }
        }
        if (flag(first, "rescale")) {
            problems.add(file + ": rescale with trim_scope: model; the TIES paper does not rescale: remove rescale");
        }
        if (!flag(first, "normalize")) {
            problems.add(file + ": normalize: false with trim_scope: model; the TIES paper averages agreeing entries "
                    + "by their count: remove normalize");
        }
        for (int i = 0; i < first.modelCount(); i++) {
            for (MethodTensor t : tensors) {
                if (density(t, i) != density(first, i)) {
                    problems.add(file + ": models[" + i + "] (" + first.inputFile(i) + ") has density "
                            + density(first, i) + " for '" + first.name() + "' and " + density(t, i) + " for '"
                            + t.name() + "'; with trim_scope: model a model has one density over its whole "
                            + "checkpoint: give it one value");
                    break;
                }
            }
        }
        return problems;
    }

    private long[] positions(MethodTensor t, int i) {
        return sparsifier.orderPositions(ranked(t), density(t, i), gamma(t, i));
    }

    private boolean rescales(MethodTensor t, int i) {
        return flag(t, "rescale") && sparsifier.sparsifies(density(t, i)) && t.elements() > 0 && !modelScope(t);
    }

    @Override
    public List<StatisticRequest> statistics(MethodTensor tensor, int round, TensorStatistics known) {
        List<StatisticRequest> orders = new ArrayList<>();
        List<StatisticRequest> sums = new ArrayList<>();
        for (int i = 0; i < tensor.modelCount(); i++) {
            for (long position : positions(tensor, i)) {
                if (position != Sparsifier.UNUSED) {
                    orders.add(order(tensor, i, position));
                }
            }
            if (rescales(tensor, i)) {
                sums.add(StatisticRequest.absSum(new Operand.Delta(i)));
                sums.add(StatisticRequest.absSum(new Operand.KeptDelta(i)));
            }
        }
        if (modelScope(tensor)) {
            // The whole-model majority sign needs the keep rules, and so the thresholds, of the round before.
            sums.add(WholeModelTrim.MAJORITY);
        }
        // The kept sums need the keep rules, and so the order statistics, of the round before.
        List<List<StatisticRequest>> rounds = new ArrayList<>();
        for (List<StatisticRequest> r : List.of(orders, sums)) {
            if (!r.isEmpty()) {
                rounds.add(r);
            }
        }
        if (linesAlphaComputed(tensor)) {
            // The merged delta needs every statistic of the method itself: a round after them.
            rounds.add(List.of(WEIGHTED_L1, MERGED_L1));
        }
        return round < rounds.size() ? rounds.get(round) : List.of();
    }

    /** LiNeS' quantities: 0 is {@code sum_i w_i d_i}, 1 the method's merge without LiNeS (its output minus b). */
    @Override
    public boolean output(int which, ChunkKernels kernels, MethodTensor tensor, long chunkStart, int count,
                          TensorStatistics known, MethodSettings settings) {
        int m = tensor.modelCount();
        if (which == 0) {
            Operand[] deltas = new Operand[m];
            float[] weights = new float[m];
            for (int i = 0; i < m; i++) {
                deltas[i] = new Operand.Delta(i);
                weights[i] = (float) model(tensor, i, "weight");
            }
            kernels.combine(deltas, weights, false, count, new ChunkMetrics(m));
            return false;
        }
        mergeScaled(kernels, tensor, chunkStart, count, known, settings, new ChunkMetrics(m), 1.0);
        return true;
    }

    @Override
    public KeepRule keepRule(MethodTensor tensor, int model, long chunkStart, TensorStatistics stats, long seed) {
        long[] positions = positions(tensor, model);
        OrderStatistic[] orders = new OrderStatistic[2];
        long[] before = new long[2];
        for (int slot = 0; slot < 2; slot++) {
            if (positions[slot] != Sparsifier.UNUSED) {
                StatisticRequest r = order(tensor, model, positions[slot]);
                orders[slot] = stats.order(r);
                before[slot] = stats.equalsBefore(r);
            }
        }
        return sparsifier.rule(tensor.name(), ranked(tensor), tensor.cols(), model, density(tensor, model),
                gamma(tensor, model), epsilon(tensor, model), orders, before, seed);
    }

    /** METHODS.md's L1 rescale: {@code s = sum|d| / sum|kept d|}, 1 where either sum is under 1e-7. */
    private float rescale(MethodTensor t, int i, TensorStatistics stats) {
        if (!rescales(t, i)) {
            return 1.0f;
        }
        float all = (float) stats.value(StatisticRequest.absSum(new Operand.Delta(i)));
        float kept = (float) stats.value(StatisticRequest.absSum(new Operand.KeptDelta(i)));
        return all < 1e-7f || kept < 1e-7f ? 1.0f : all / kept;
    }

    @Override
    public TaskVectorKernel.ModelTerm[] terms(MethodTensor tensor, long chunkStart, TensorStatistics stats, long seed) {
        int m = tensor.modelCount();
        TaskVectorKernel.ModelTerm[] terms = new TaskVectorKernel.ModelTerm[m];
        for (int i = 0; i < m; i++) {
            terms[i] = new TaskVectorKernel.ModelTerm((float) model(tensor, i, "weight"),
                    keepRule(tensor, i, chunkStart, stats, seed), rescale(tensor, i, stats));
        }
        return terms;
    }

    @Override
    public void merge(ChunkKernels kernels, MethodTensor tensor, long chunkStart, int count, TensorStatistics stats,
                      MethodSettings settings, ChunkMetrics metrics) {
        mergeScaled(kernels, tensor, chunkStart, count, stats, settings, metrics, linesScale(tensor, stats));
    }

    /** The merge with its lambda times {@code scale} (LiNeS), the product rounded once to float32. */
    private void mergeScaled(ChunkKernels kernels, MethodTensor tensor, long chunkStart, int count,
                             TensorStatistics stats, MethodSettings settings, ChunkMetrics metrics, double scale) {
        TaskVectorKernel.ModelTerm[] terms = terms(tensor, chunkStart, stats, settings.seed());
        float lambda = (float) (global(tensor, "lambda") * scale);
        if (modelScope(tensor)) {
            kernels.mergeTiesModel(terms, WholeModelTrim.tieSign(tensor, stats), lambda, chunkStart, count, metrics);
            return;
        }
        kernels.mergeTaskVector(count, chunkStart, terms, consensus, flag(tensor, "normalize"), lambda, metrics);
    }
}
