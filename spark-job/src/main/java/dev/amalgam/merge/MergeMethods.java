package dev.amalgam.merge;

import dev.amalgam.kernels.TaskVectorKernel.Consensus;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/** The methods Amalgam knows, by the name a merge config's {@code merge_method} uses. */
public final class MergeMethods {
    private static final Map<String, MergeMethod> METHODS = new LinkedHashMap<>();

    static {
        register(new LinearMethod());
        register(new TaskVectorMethod("task_arithmetic", Consensus.NONE, Sparsifier.NONE, false, false));
        register(new TaskVectorMethod("ties", Consensus.SUM, Sparsifier.MAGNITUDE, true, false));
        register(new TaskVectorMethod("dare_ties", Consensus.SUM, Sparsifier.RANDOM, false, true));
        register(new TaskVectorMethod("dare_linear", Consensus.NONE, Sparsifier.RANDOM, false, true));
        register(new TaskVectorMethod("breadcrumbs", Consensus.NONE, Sparsifier.MAGNITUDE_OUTLIERS, false, false));
        register(new TaskVectorMethod("breadcrumbs_ties", Consensus.SUM, Sparsifier.MAGNITUDE_OUTLIERS, false, false));
        register(new TaskVectorMethod("della", Consensus.SUM, Sparsifier.DELLA_MAGPRUNE, true, true));
        register(new TaskVectorMethod("della_linear", Consensus.NONE, Sparsifier.DELLA_MAGPRUNE, false, true));
    }

    private MergeMethods() {
    }

    private static void register(MergeMethod method) {
        METHODS.put(method.name(), method);
    }

    public static Optional<MergeMethod> byName(String name) {
        return Optional.ofNullable(METHODS.get(name));
    }

    public static java.util.Set<String> names() {
        return METHODS.keySet();
    }
}
