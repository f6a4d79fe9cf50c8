package dev.amalgam.method;

import dev.amalgam.kernels.TaskVectorKernel.Consensus;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/** The methods Amalgam knows, by the name a merge config's {@code merge_method} uses. */
public final class MergeMethods {
    private static final Map<String, MergeMethod> METHODS = new LinkedHashMap<>();
    private static final Map<String, Origin> ORIGINS = new LinkedHashMap<>();

    /**
     * Where a method comes from and how often it reads the inputs: the README's method table.
     *
     * @param paper  the paper (or "the widely used tool" for methods without one)
     * @param passes reads of the inputs: statistics rounds before the merge read
     */
    public record Origin(String paper, String passes) {
    }

    /** Per-tensor statistics: none where a tensor fits one chunk (its merge task computes them). */
    private static final String ONE_ROUND = "1; 2 for tensors cut into chunks";
    private static final String OTA = "Mahdavi et al. 2025, \"Harnessing Optimization Dynamics for "
            + "Curvature-Informed Model Merging\" (OTA)";
    private static final String TALL_MASKS = "Wang et al. 2024, \"Localizing Task Information for Improved Model "
            + "Merging and Compression\" (TALL masks)";

    /**
     * Methods the widely used single-node tool has and Amalgam does not yet: a config naming one
     * is told so, not that the name is unknown.
     */
    public static final Set<String> NOT_YET = Set.of();


    static {
        register(new LinearMethod(), "Wortsman et al. 2022, \"Model soups\"", "1");
        register(new PassthroughMethod(), "the widely used tool", "1");
        register(new TaskVectorMethod("task_arithmetic", "sum of weighted deltas", Consensus.NONE, Sparsifier.NONE,
                false, false), "Ilharco et al. 2023, \"Editing Models with Task Arithmetic\"", "1");
        register(new TaskVectorMethod("ties", "magnitude top-k per delta, sign consensus", Consensus.SUM,
                Sparsifier.MAGNITUDE, true, false, true), "Yadav et al. 2023, \"TIES-Merging\"", "1; 2 for tensors cut into chunks; trim_scope: model: 3");
        register(new TaskVectorMethod("dare_ties", "random drop with rescale, sign consensus", Consensus.SUM,
                Sparsifier.RANDOM, false, true), "Yu et al. 2024, \"Language Models are Super Mario\" (DARE)", ONE_ROUND);
        register(new TaskVectorMethod("dare_linear", "random drop with rescale", Consensus.NONE, Sparsifier.RANDOM,
                false, true), "Yu et al. 2024, \"Language Models are Super Mario\" (DARE)", ONE_ROUND);
        register(new TaskVectorMethod("breadcrumbs", "drop the smallest and the largest-magnitude outliers",
                Consensus.NONE, Sparsifier.MAGNITUDE_OUTLIERS, false, false), "Davari and Belilovsky 2024, \"Model Breadcrumbs\"", ONE_ROUND);
        register(new TaskVectorMethod("breadcrumbs_ties", "breadcrumbs with sign consensus", Consensus.SUM,
                Sparsifier.MAGNITUDE_OUTLIERS, false, false), "Davari and Belilovsky 2024, \"Model Breadcrumbs\"", ONE_ROUND);
        register(new TaskVectorMethod("della", "magnitude-ranked random drop per row, sign consensus", Consensus.SUM,
                Sparsifier.DELLA_MAGPRUNE, true, true), "Deep et al. 2024, \"DELLA-Merging\"", ONE_ROUND);
        register(new TaskVectorMethod("della_linear", "magnitude-ranked random drop per row", Consensus.NONE,
                Sparsifier.DELLA_MAGPRUNE, false, true), "Deep et al. 2024, \"DELLA-Merging\"", ONE_ROUND);
        register(new SlerpMethod(), "Shoemake 1985 (spherical interpolation)", ONE_ROUND);
        register(new NuslerpMethod(), "the widely used tool (slerp generalized)", ONE_ROUND);
        register(new MultislerpMethod(), "the widely used tool (multi-model slerp)", ONE_ROUND);
        register(new KarcherMethod(), "Karcher 1977 (Riemannian mean)", ONE_ROUND);
        register(new ModelStockMethod(), "Jang et al. 2024, \"Model Stock\"", ONE_ROUND);
        register(new NearswapMethod(), "the widely used tool", "1");
        register(new RamMethod(), "the widely used tool (RAM)", "1");
        register(new RamPlusMethod(), "the widely used tool (RAM+)", ONE_ROUND);
        register(new SceMethod(), "Wan et al. 2025, \"FuseChat-3.0\" (SCE)", "1; up to 4 for tensors cut into chunks");
        register(new ArceeFusionMethod(), "the widely used tool (Arcee Fusion)", ONE_ROUND);
        register(new VarmMethod(), "Wan et al. 2024, \"FuseChat\" (VaRM)", "element: 1; tensor: 1, 2 for tensors cut into chunks; module, layer, model: 2");
        register(new ConsensusMethod(false), TALL_MASKS, "1");
        register(new ConsensusMethod(true), TALL_MASKS, "2; 3 with a density below 1");
        register(new FisherMethod(), "Matena and Raffel 2022, \"Merging Models with Fisher-Weighted Averaging\"", "2 with normalize_fishers, else 1");
        register(new PcbMethod(), "Du et al. 2024, \"Parameter Competition Balancing for Model Merging\" (PCB-merging)",
                "3");
        register(new OtaMethod(), OTA, "1");
        register(new FisherGraftMethod(), OTA + ", its mask variant (Fast Fisher Grafting)", ONE_ROUND);
        register(new WidenMethod(), "Yu et al. 2024, \"Extend Model Merging from Fine-Tuned to Pre-Trained Large "
                + "Language Models via Weight Disentanglement\" (WIDEN)", "matrices: 1; other tensors: 1, 2 when cut into chunks");
    }

    private MergeMethods() {
    }

    private static void register(MergeMethod method, String paper, String passes) {
        METHODS.put(method.name(), method);
        ORIGINS.put(method.name(), new Origin(paper, passes));
    }

    /** The paper and passes of a registered method. */
    public static Origin origin(String name) {
        return ORIGINS.get(name);
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
