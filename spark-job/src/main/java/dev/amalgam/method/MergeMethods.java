package dev.amalgam.method;

import dev.amalgam.kernels.TaskVectorKernel.Consensus;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/** The methods Amalgam knows, by the name a merge config's {@code merge_method} uses. */
public final class MergeMethods {
    private static final Map<String, MergeMethod> METHODS = new LinkedHashMap<>();

    /**
     * Methods the widely used single-node tool has and Amalgam does not yet: a config naming one
     * is told so, not that the name is unknown.
     */
    public static final Set<String> NOT_YET = Set.of();


    static {
        register(new LinearMethod());
        register(new PassthroughMethod());
        register(new TaskVectorMethod("task_arithmetic", "sum of weighted deltas", Consensus.NONE, Sparsifier.NONE,
                false, false));
        register(new TaskVectorMethod("ties", "magnitude top-k per delta, sign consensus", Consensus.SUM,
                Sparsifier.MAGNITUDE, true, false));
        register(new TaskVectorMethod("dare_ties", "random drop with rescale, sign consensus", Consensus.SUM,
                Sparsifier.RANDOM, false, true));
        register(new TaskVectorMethod("dare_linear", "random drop with rescale", Consensus.NONE, Sparsifier.RANDOM,
                false, true));
        register(new TaskVectorMethod("breadcrumbs", "drop the smallest and the largest-magnitude outliers",
                Consensus.NONE, Sparsifier.MAGNITUDE_OUTLIERS, false, false));
        register(new TaskVectorMethod("breadcrumbs_ties", "breadcrumbs with sign consensus", Consensus.SUM,
                Sparsifier.MAGNITUDE_OUTLIERS, false, false));
        register(new TaskVectorMethod("della", "magnitude-ranked random drop per row, sign consensus", Consensus.SUM,
                Sparsifier.DELLA_MAGPRUNE, true, true));
        register(new TaskVectorMethod("della_linear", "magnitude-ranked random drop per row", Consensus.NONE,
                Sparsifier.DELLA_MAGPRUNE, false, true));
        register(new SlerpMethod());
        register(new NuslerpMethod());
        register(new MultislerpMethod());
        register(new KarcherMethod());
        register(new ModelStockMethod());
        register(new NearswapMethod());
        register(new RamMethod());
        register(new RamPlusMethod());
        register(new SceMethod());
        register(new ArceeFusionMethod());
    }

    private MergeMethods() {
    }

    private static void register(MergeMethod method) {
        METHODS.put(method.name(), method);
    }

    public static Optional<MergeMethod> byName(String name) {
        return Optional.ofNullable(METHODS.get(name));
    }

    public static Set<String> names() {
        return METHODS.keySet();
    }

    public static Iterable<MergeMethod> all() {
        return METHODS.values();
    }
}
