package dev.amalgam.merge;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.KeepRule;
import dev.amalgam.kernels.TaskVectorKernel;
import dev.amalgam.plan.MethodSettings;
import dev.amalgam.plan.ModelParameters;
import dev.amalgam.plan.TensorPlan;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The task-vector family (METHODS.md): one sparsifier and one consensus rule, with the family's
 * shared procedure. The eight named methods are instances of this class.
 */
public final class TaskVectorMethod implements MergeMethod {
    private final String name;
    private final TaskVectorKernel.Consensus consensus;
    private final Sparsifier sparsifier;
    private final boolean normalizeDefault;
    private final boolean rescaleDefault;

    public TaskVectorMethod(String name, TaskVectorKernel.Consensus consensus, Sparsifier sparsifier,
                            boolean normalizeDefault, boolean rescaleDefault) {
        this.name = name;
        this.consensus = consensus;
        this.sparsifier = sparsifier;
        this.normalizeDefault = normalizeDefault;
        this.rescaleDefault = rescaleDefault;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public boolean requiresBase() {
        return true;
    }

    @Override
    public Map<String, Object> globalParameters() {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("normalize", normalizeDefault);
        p.put("rescale", rescaleDefault);
        p.put("lambda", 1.0);
        p.put("int8_mask", false);
        p.put("random_seed", 0.0);
        return p;
    }

    @Override
    public Map<String, Object> modelParameters() {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("weight", null);
        if (sparsifier != Sparsifier.NONE) {
            p.put("density", 1.0);
        }
        if (sparsifier == Sparsifier.MAGNITUDE_OUTLIERS) {
            p.put("gamma", 0.01);
        }
        if (sparsifier == Sparsifier.DELLA_MAGPRUNE) {
            p.put("epsilon", 0.15);
        }
        return p;
    }

    @Override
    public boolean rowAligned() {
        return sparsifier == Sparsifier.DELLA_MAGPRUNE;
    }

    @Override
    public List<String> check(TensorPlan tensor) {
        List<String> problems = new ArrayList<>();
        for (int i = 0; i < tensor.parameters().length; i++) {
            ModelParameters p = tensor.parameters()[i];
            String where = "models[" + i + "] (" + tensor.models()[i].file() + "), tensor '" + tensor.name() + "'";
            if (!(p.density() > 0.0f && p.density() <= 1.0f)) {
                problems.add(where + ": density " + p.density() + " is outside (0, 1]");
                continue;
            }
            if (sparsifier == Sparsifier.MAGNITUDE && p.density() < 1.0f && tensor.elements() > 0
                    && Sparsifier.keepCount(p.density(), tensor.elements()) == 0) {
                problems.add(where + ": density " + p.density() + " keeps floor(density x " + tensor.elements()
                        + ") = 0 entries; raise density for this tensor (a filter entry can target it)");
            }
            if (sparsifier == Sparsifier.MAGNITUDE_OUTLIERS && !(p.gamma() >= 0.0f && p.gamma() < 1.0f)) {
                problems.add(where + ": gamma " + p.gamma() + " is outside [0, 1)");
            }
            if (sparsifier == Sparsifier.DELLA_MAGPRUNE && p.density() < 1.0f
                    && !(p.density() - p.epsilon() > 0.0f && p.density() + p.epsilon() < 1.0f)) {
                problems.add(where + ": epsilon " + p.epsilon() + " with density " + p.density()
                        + " must satisfy 0 < density - epsilon and density + epsilon < 1; lower epsilon");
            }
        }
        return problems;
    }

    @Override
    public long[] orderPositions(TensorPlan tensor, int model) {
        return sparsifier.orderPositions(tensor, tensor.parameters()[model]);
    }

    @Override
    public boolean needsRescale(TensorPlan tensor, int model, MethodSettings settings) {
        return settings.rescale() && sparsifier.sparsifies(tensor.parameters()[model]) && tensor.elements() > 0;
    }

    @Override
    public KeepRule keepRule(TensorPlan tensor, int model, OrderStatistic[] stats, long[] equalsBefore,
                             MethodSettings settings) {
        return sparsifier.rule(tensor, model, stats, equalsBefore, settings.seed());
    }

    @Override
    public void merge(ChunkKernels kernels, TensorPlan tensor, long chunkStart, int count, KeepRule[] rules,
                      float[] scales, MethodSettings settings, ChunkMetrics metrics) {
        int m = rules.length;
        TaskVectorKernel.ModelTerm[] terms = new TaskVectorKernel.ModelTerm[m];
        for (int i = 0; i < m; i++) {
            terms[i] = new TaskVectorKernel.ModelTerm(tensor.parameters()[i].weight(), rules[i], scales[i]);
        }
        kernels.mergeTaskVector(count, chunkStart, terms, consensus, settings.normalize(), settings.lambda(), metrics);
    }
}
