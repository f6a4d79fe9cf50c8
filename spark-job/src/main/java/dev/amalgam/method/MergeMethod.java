package dev.amalgam.method;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.KeepRule;
import dev.amalgam.kernels.Primitive;

import java.util.List;
import java.util.Set;

/**
 * A merge method, declared as data plus two small functions. The config parser, validation, the
 * README's method table and the model card read its {@link #inputs()} and {@link #parameters()};
 * the statistics stage runs the rounds of {@link #statistics}; the merge stage calls
 * {@link #merge}, which composes kernel {@link Primitive}s. Adding a method means one
 * implementation registered in {@link MergeMethods} (see docs/adding-a-method.md).
 */
public interface MergeMethod {

    String name();

    /** One line for the README and the model card. */
    String summary();

    Inputs inputs();

    /** Every parameter the method accepts, global and per model, in the order its values are stored. */
    List<Parameter> parameters();

    /** The kernel primitives its statistics and merge use; a backend lacking one is not used for it. */
    Set<Primitive> primitives();

    /**
     * The companion checkpoints every model entry must name, by kind
     * ({@link dev.amalgam.config.ModelSpec#FISHER}, ...), in the order their slots follow the base:
     * kind k of model i is slot {@code models + 1 + k * models + i}.
     */
    default List<String> companions() {
        return List.of();
    }

    /** The primitives one tensor's merge uses with its parameters (a subset of {@link #primitives()}). */
    default Set<Primitive> primitives(MethodTensor tensor) {
        return primitives();
    }

    /**
     * Problems only the whole set of merged tensors shows: a whole-model statistic needs the
     * same parameters on every tensor it spans. Runs after every tensor's {@link #check}.
     */
    default List<String> checkAll(String file, List<? extends MethodTensor> tensors) {
        return List.of();
    }

    /**
     * Each model's weight and keep rule in one chunk, for statistics of a method's own
     * combination ({@link dev.amalgam.kernels.Operand.Consensus}); null for methods without one.
     */
    default dev.amalgam.kernels.TaskVectorKernel.ModelTerm[] terms(MethodTensor tensor, long chunkStart,
                                                                   TensorStatistics stats, long seed) {
        return null;
    }

    /**
     * Writes the method's own quantity {@code which} ({@link dev.amalgam.kernels.Operand.Output})
     * for the chunk into the working set's output, for a statistic of it; returns true when the
     * output then holds {@code b + q} (the statistic reduces {@code out - b}), false when it holds
     * {@code q}. Runs after the chunk's other statistics (it may overwrite decoded inputs).
     */
    default boolean output(int which, ChunkKernels kernels, MethodTensor tensor, long chunkStart, int count,
                           TensorStatistics known, MethodSettings settings) {
        throw new UnsupportedOperationException(name() + " has no output quantity " + which);
    }

    /** Problems with how many inputs a config gives (models besides the base), each with the fix. */
    default List<String> checkInputs(String file, boolean hasBase, int models, String key) {
        return inputs().check(file, name(), hasBase, models, key);
    }

    /** Whether chunks must hold whole rows (per-row statistics or keep rules). */
    default boolean rowAligned() {
        return false;
    }

    /**
     * Whether the tensor must be merged as one chunk: its vectors run along the first dimension,
     * across any rows a chunk could hold. Its memory is then the whole tensor's, not a chunk's.
     */
    default boolean wholeTensor(MethodTensor tensor) {
        return false;
    }

    /** Problems with one tensor's resolved parameters (a top-k that keeps nothing, ...). */
    default List<String> check(MethodTensor tensor) {
        return List.of();
    }

    /**
     * The statistics round {@code round} needs, given the results of the earlier rounds in
     * {@code known}; empty when the tensor needs no more. Rounds are bounded (see the stage).
     */
    default List<StatisticRequest> statistics(MethodTensor tensor, int round, TensorStatistics known) {
        return List.of();
    }

    /**
     * Whether any round asks this tensor for a statistic reduced over more than the tensor
     * ({@link Scope#GROUP}, {@link Scope#MODEL}). Such tensors run their statistics in the
     * statistics stage even when they are one chunk, since every member's part must be in first.
     */
    default boolean wideStatistics(MethodTensor tensor) {
        return false;
    }

    /** The chunk's keep rule for one model (sparsifying methods; everything else keeps all). */
    default KeepRule keepRule(MethodTensor tensor, int model, long chunkStart, TensorStatistics stats, long seed) {
        return new KeepRule.All();
    }

    /**
     * The positions {@link dev.amalgam.kernels.Operand.Selected} operands keep in one chunk: those
     * of {@code rankedBy} that {@code rule} keeps; null for methods without a selection. The
     * statistics stage sets it before reducing selected operands, from the chunk's view of the
     * results so far.
     */
    default Selection selection(MethodTensor tensor, TensorStatistics stats) {
        return null;
    }

    /** A chunk's selection: see {@link #selection}. */
    record Selection(dev.amalgam.kernels.Operand rankedBy, KeepRule rule) {
    }

    /**
     * Merges the chunk decoded into {@code kernels} into its output, on whichever backend the
     * working set lives; {@code metrics} are complete once the chunk's output is awaited.
     */
    void merge(ChunkKernels kernels, MethodTensor tensor, long chunkStart, int count, TensorStatistics stats,
               MethodSettings settings, ChunkMetrics metrics);

    /** The declared parameter {@code name}; fails loudly for a name the method did not declare. */
    default int index(String name) {
        return ParameterTable.of(this).index(name);
    }

    /** Model {@code model}'s value of per-model parameter {@code name} for this tensor. */
    default double model(MethodTensor tensor, int model, String name) {
        return tensor.parameters().models()[model][index(name)];
    }

    /** The global parameter {@code name} for this tensor (gradients resolve per tensor). */
    default double global(MethodTensor tensor, String name) {
        return tensor.parameters().globals()[index(name)];
    }

    default boolean flag(MethodTensor tensor, String name) {
        return global(tensor, name) != 0.0;
    }
}
