package dev.amalgam.merge;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.KeepRule;
import dev.amalgam.plan.MethodSettings;
import dev.amalgam.plan.TensorPlan;

import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A merge method: which parameters it takes, which per-tensor statistics it needs, and its
 * per-chunk kernel. Adding a method means one implementation registered in {@link MergeMethods}.
 */
public interface MergeMethod {

    String name();

    /** Whether {@code base_model} is required; when it is, the base is the reference for deltas. */
    boolean requiresBase();

    /** Parameters set once for the whole merge, with their defaults. */
    Map<String, Object> globalParameters();

    /** Parameters resolved per tensor and model, with their defaults (null: required). */
    Map<String, Object> modelParameters();

    /** Whether chunks must start and end on row boundaries (per-row statistics). */
    default boolean rowAligned() {
        return false;
    }

    /** Problems with one tensor's resolved parameters (e.g. a top-k that keeps nothing). */
    default List<String> check(TensorPlan tensor) {
        return List.of();
    }

    /** Ascending |delta| positions whose values model {@code model} needs over the tensor. */
    default long[] orderPositions(TensorPlan tensor, int model) {
        return new long[]{Sparsifier.UNUSED, Sparsifier.UNUSED};
    }

    /** Whether the L1 rescale factor of this model's delta is needed over the tensor. */
    default boolean needsRescale(TensorPlan tensor, int model, MethodSettings settings) {
        return false;
    }

    /** The chunk's sparsification rule for one model (All when the method does not sparsify). */
    default KeepRule keepRule(TensorPlan tensor, int model, OrderStatistic[] stats, long[] equalsBefore,
                              MethodSettings settings) {
        return new KeepRule.All();
    }

    /**
     * Merges the chunk decoded into {@code kernels} into its output, on whichever backend the
     * working set lives; {@code metrics} are complete once the chunk's output is awaited.
     */
    void merge(ChunkKernels kernels, TensorPlan tensor, long chunkStart, int count, KeepRule[] rules, float[] scales,
               MethodSettings settings, ChunkMetrics metrics);

    /** Names of all parameters the method accepts, for error messages. */
    default Set<String> parameterNames() {
        var names = new java.util.TreeSet<>(globalParameters().keySet());
        names.addAll(modelParameters().keySet());
        return names;
    }
}
