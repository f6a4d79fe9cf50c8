package dev.amalgam.plan;

import dev.amalgam.method.Inputs;
import dev.amalgam.method.MethodSettings;
import dev.amalgam.method.Parameter;
import dev.amalgam.method.ParameterTable;
import dev.amalgam.method.TensorParameters;

import dev.amalgam.AmalgamException;
import dev.amalgam.config.LayerRange;
import com.fasterxml.jackson.databind.JsonNode;
import dev.amalgam.config.MergeConfig;
import dev.amalgam.config.MoeConfig;
import dev.amalgam.config.ModelSpec;
import dev.amalgam.config.ParameterResolver;
import dev.amalgam.config.ParameterValue;
import dev.amalgam.config.SliceSpec;
import dev.amalgam.format.Checkpoint;
import dev.amalgam.format.CheckpointReader;
import dev.amalgam.format.FormatException;
import dev.amalgam.format.StoredTensor;
import dev.amalgam.format.TensorEntry;
import dev.amalgam.format.SafetensorsHeader;
import dev.amalgam.format.ShardLayout;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.kernels.Fp8BlockQuantizer;
import dev.amalgam.method.MergeMethod;
import dev.amalgam.method.ModelExtent;
import dev.amalgam.method.MergeMethods;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Turns a config and the inputs' headers into a {@link MergePlan}, validating everything
 * before any data moves. All problems are collected and reported together.
 */
public final class Planner {
    private static final int MAX_REPORTED = 30;
    private static final MergeMethod PASSTHROUGH = MergeMethods.byName("passthrough").orElseThrow();

    private final CheckpointReader reader;
    private final ResourceCheck.Settings resources;

    /** A planner that cuts every tensor by the chunk size alone. */
    public Planner(CheckpointReader reader) {
        this(reader, null);
    }

    /**
     * A planner that keeps a tensor needing statistics whole when the executors' memory
     * ({@code resources}) holds it, so its statistics and its merge share one read.
     */
    public Planner(CheckpointReader reader, ResourceCheck.Settings resources) {
        this.reader = reader;
        this.resources = resources;
    }

    /**
     * A plan and the checkpoints it was made from (for side files and the report).
     *
     * @param models       per model slot, the (first) checkpoint it reads
     * @param inputs       every checkpoint read, each once
     * @param modelNames   per model slot, the checkpoints it reads ("a | b" when slices read several)
     * @param layerOrigins per output layer, the reference's layer it follows when slices renumber
     *                     layers (for config.json), else null
     * @param moe          the MoE an assembly writes (its config.json follows it), else null
     * @param vocabulary   the output vocabulary when the config sets one (tokenizer files, rows), else null
     */
    public record Planned(MergePlan plan, MergeMethod method, Checkpoint reference, List<Checkpoint> models,
                          List<Checkpoint> inputs, List<String> modelNames, int[] layerOrigins,
                          MoeArchitecture.Assembly moe, VocabularyPlan.Output vocabulary) {
    }

    public Planned plan(String configFile, MergeConfig config, PlanOptions options) {
        if (config.moe() != null) {
            return planMoe(configFile, config, options);
        }
        MergeMethod method = MergeMethods.byName(config.mergeMethod()).orElse(null);
        if (method == null) {
            String known = " (known: " + String.join(", ", MergeMethods.names()) + ")";
            throw new AmalgamException(AmalgamException.Kind.CONFIG, MergeMethods.NOT_YET.contains(config.mergeMethod())
                    ? configFile + ": merge_method '" + config.mergeMethod() + "' is not supported yet; use one of"
                    + known.substring(8, known.length() - 1)
                    : configFile + ": merge_method '" + config.mergeMethod() + "' is unknown" + known);
        }
        Inputs inputs = method.inputs();
        boolean hasBase = inputs.base() != Inputs.Base.NONE && config.baseModel() != null;
        List<String> configProblems = new ArrayList<>();
        checkParameterNames(configFile, config, method, configProblems);
        boolean sliced = !config.slices().isEmpty() || config.models().stream().anyMatch(m -> m.layerRange() != null);
        List<ModelSpec> specs = new ArrayList<>();
        for (ModelSpec spec : config.models()) {
            if (hasBase && samePath(spec.model(), config.baseModel())) {
                if (inputs.base() == Inputs.Base.OPTIONAL) {
                    configProblems.add(configFile + ": " + spec.model() + " is both base_model and one of the models; "
                            + method.name() + " takes " + inputs.describe() + ": list it only once");
                }
                continue;
            }
            specs.add(spec);
        }
        configProblems.addAll(companionProblems(configFile, config, method, specs, sliced));
        if (!sliced) {
            configProblems.addAll(method.checkInputs(configFile, hasBase, specs.size(), "models"));
        } else {
            for (int s = 0; s < config.slices().size(); s++) {
                if (copies(method, config.slices().get(s))) {
                    continue; // one source: copied, whatever the method takes
                }
                long others = config.slices().get(s).sources().stream()
                        .filter(src -> !hasBase || !samePath(src.model(), config.baseModel())).count();
                configProblems.addAll(method.checkInputs(configFile, hasBase, (int) others, "slices[" + s + "].sources"));
            }
        }
        if (!configProblems.isEmpty()) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, configProblems);
        }
        MethodSettings settings = settings(config, method, hasBase);

        List<String> inputProblems = new ArrayList<>();
        Map<String, Checkpoint> read = new LinkedHashMap<>();
        for (String path : config.referencedModels()) {
            if (!hasBase && samePath(path, config.baseModel())) {
                continue; // a base the method does not take is no input
            }
            Checkpoint c = read(path, inputProblems);
            if (c != null) {
                read.put(strip(path), c);
            }
        }
        if (!inputProblems.isEmpty()) {
            throw new AmalgamException(AmalgamException.Kind.INPUT, inputProblems);
        }
        // Companion checkpoints are inputs like the models: read, validated and fingerprinted with them.
        List<Map<String, Checkpoint>> companions = new ArrayList<>();
        for (ModelSpec spec : specs) {
            Map<String, Checkpoint> byKind = new LinkedHashMap<>();
            for (String kind : method.companions()) {
                String path = spec.companions().get(kind);
                Checkpoint c = read.containsKey(strip(path)) ? read.get(strip(path)) : read(path, inputProblems);
                if (c != null) {
                    read.put(strip(path), c);
                    byKind.put(kind, c);
                }
            }
            companions.add(byKind);
        }
        if (!inputProblems.isEmpty()) {
            throw new AmalgamException(AmalgamException.Kind.INPUT, inputProblems);
        }
        java.util.function.Function<String, Checkpoint> checkpoint = path -> read.get(strip(path));
        Checkpoint base = hasBase ? checkpoint.apply(config.baseModel()) : null;
        List<Checkpoint> models = new ArrayList<>();
        for (ModelSpec spec : specs) {
            models.add(checkpoint.apply(spec.model()));
        }
        VocabularyPlan.Result vocabulary = null;
        if (!sliced) {
            List<Checkpoint> all = new ArrayList<>();
            List<String> owners = new ArrayList<>();
            if (base != null) {
                all.add(base);
                owners.add("base_model (" + config.baseModel() + ")");
            }
            for (int i = 0; i < models.size(); i++) {
                all.add(models.get(i));
                owners.add("models[" + i + "] (" + specs.get(i).model() + ")");
            }
            vocabulary = VocabularyPlan.of(configFile, config, base != null, all, owners, reader, inputProblems);
            if (!inputProblems.isEmpty()) {
                throw new AmalgamException(config.remapsVocabulary() ? AmalgamException.Kind.INPUT
                        : AmalgamException.Kind.CONFIG, limit(inputProblems));
            }
            if (vocabulary != null) {
                base = vocabulary.apply(base);
                models = new ArrayList<>(models.stream().map(vocabulary::apply).toList());
            }
        } else if ("union".equals(config.tokenizerSource()) || config.tokenizer().any()) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, configFile + ": tokenizer_source: union, the "
                    + "tokenizer: section and chat_template are not supported with slices yet; merge with models:, "
                    + "or give tokenizer_source: base or a model path (its tokenizer files are copied)");
        }
        Checkpoint reference;
        OutputLayout.Layout layout;
        if (sliced) {
            List<SliceSpec> slices = config.slices();
            if (slices.isEmpty()) {
                // models with layer ranges: one slice; a model (or the base) without one gives all its layers.
                List<ModelSpec> sources = new ArrayList<>();
                if (hasBase && specs.size() == config.models().size()) {
                    sources.add(new ModelSpec(config.baseModel(), Map.of(),
                            new LayerRange(0, Math.max(1, OutputLayout.layerCount(base)))));
                }
                for (ModelSpec m : config.models()) {
                    sources.add(m.layerRange() != null ? m : new ModelSpec(m.model(), m.parameters(),
                            new LayerRange(0, Math.max(1, OutputLayout.layerCount(checkpoint.apply(m.model()))))));
                }
                slices = List.of(new SliceSpec(sources, Map.of()));
            }
            layout = OutputLayout.ofSlices(configFile, config, slices, hasBase ? config.baseModel() : null,
                    !method.name().equals(PASSTHROUGH.name()), checkpoint, inputProblems);
            if (!inputProblems.isEmpty()) {
                throw new AmalgamException(AmalgamException.Kind.INPUT, limit(inputProblems));
            }
            SliceSpec first = slices.get(0);
            ModelSpec firstSource = first.sources().stream()
                    .filter(src -> hasBase && samePath(src.model(), config.baseModel())).findFirst()
                    .orElse(first.sources().get(0));
            reference = checkpoint.apply(hasBase ? config.baseModel() : firstSource.model());
            models = new ArrayList<>();
            for (String slot : layout.slotModels()) {
                models.add(checkpoint.apply(slot));
            }
        } else {
            reference = base != null ? base : models.get(0);
            checkSameTensors(reference, models, inputProblems);
            if (!inputProblems.isEmpty()) {
                throw new AmalgamException(AmalgamException.Kind.INPUT, limit(inputProblems));
            }
            layout = OutputLayout.ofModels(config, specs, base, models, reference);
        }
        Planned planned = finish(configFile, config, method, hasBase, settings, layout, reference, models, read, options,
                null, vocabulary == null ? null : vocabulary.output());
        return method.companions().isEmpty() ? planned : withCompanions(planned, method, specs, companions);
    }

    /** Parameters, dtypes, shards and chunks of the outputs {@code layout} maps. */
    private Planned finish(String configFile, MergeConfig config, MergeMethod method, boolean hasBase,
                           MethodSettings settings, OutputLayout.Layout layout, Checkpoint reference,
                           List<Checkpoint> models, Map<String, Checkpoint> read, PlanOptions options,
                           MoeArchitecture.Assembly moe, VocabularyPlan.Output vocabulary) {
        int modelCount = layout.slotNames().size();

        ParameterTable table = ParameterTable.of(method);
        List<TensorPlan> tensors = new ArrayList<>();
        Set<String> valueProblems = new LinkedHashSet<>();
        Dtype uniformOut = config.effectiveOutDtype();
        for (OutputLayout.Output o : layout.outputs()) {
            StoredTensor ref = o.reference();
            // A copied tensor carries passthrough's parameters: scale 1.
            double[][] perModel = new double[o.copy() ? 1 : modelCount][];
            if (o.copy()) {
                perModel[0] = new double[]{1.0};
            }
            for (int i = 0; i < modelCount && !o.copy(); i++) {
                perModel[i] = new double[table.perModel().size()];
                for (int p = 0; p < perModel[i].length; p++) {
                    perModel[i][p] = resolve(configFile, table.perModel().get(p), o.owners()[i], o.t(),
                            o.models()[i].name(), valueProblems, o.modelSources().get(i));
                }
            }
            double[] globals = new double[o.copy() ? 0 : table.globals().size()];
            for (int g = 0; g < globals.length; g++) {
                globals[g] = resolve(configFile, table.globals().get(g), "parameters", o.t(), o.name(),
                        valueProblems, o.globalSources());
            }
            long[] shape = ref.shape();
            int cols = shape.length == 0 ? 1 : (int) Math.max(1, shape[shape.length - 1]);
            // Block-quantized inputs are written as bf16 unless out_dtype says otherwise; an FP8
            // out_dtype re-quantizes the tensors stored in FP8 with block scales and keeps the rest.
            Dtype kept = ref.dtype().writable() ? ref.dtype() : Dtype.BF16;
            Dtype out = uniformOut == null ? kept : uniformOut.writable() ? uniformOut
                    : fp8Blocks(ref) != null ? uniformOut : kept;
            if (uniformOut != null && !uniformOut.writable() && fp8Blocks(ref) == null
                    && ref.quantization() instanceof dev.amalgam.format.Quantization.BlockScaled) {
                valueProblems.add(configFile + ": out_dtype " + uniformOut.torchName() + " keeps the inputs' block "
                        + "scales, but tensor '" + ref.name() + "' in " + ref.file() + " has one scale for the whole "
                        + "tensor; write it as bfloat16 (out_dtype: bfloat16)");
            }
            OutputQuantization q = out.writable() ? null
                    : new OutputQuantization.Weight(-1, grid(fp8Blocks(ref), shape, cols));
            TensorPlan t = new TensorPlan(tensors.size(), o.name(), shape, ref.elements(), cols, out,
                    o.base(), o.models(), new TensorParameters(globals, perModel), 0, 0, q, o.copy(), o.part());
            tensors.add(t);
        }
        if (uniformOut != null && !uniformOut.writable() && tensors.stream().noneMatch(t -> t.outQuantization() != null)) {
            valueProblems.add(configFile + ": out_dtype " + uniformOut.torchName() + " re-quantizes the tensors the "
                    + "inputs store in FP8 with block scales, and " + reference.directory() + " has none; use "
                    + "out_dtype: bfloat16 (or float16, float32)");
        }
        tensors = withExtent(tensors, config.groups());
        valueProblems.addAll(unmatchedGroups(configFile, config.groups(), tensors));
        if (valueProblems.isEmpty()) {
            // Method checks read resolved values, so they run once every value resolved.
            for (TensorPlan t : tensors) {
                if (!t.copy()) {
                    valueProblems.addAll(method.check(t));
                }
            }
            if (valueProblems.isEmpty()) {
                valueProblems.addAll(method.checkAll(configFile, tensors.stream().filter(t -> !t.copy()).toList()));
            }
        }
        if (!valueProblems.isEmpty()) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, limit(new ArrayList<>(valueProblems)));
        }

        if (config.expertScope() == MergeConfig.ExpertScope.EXPERT) {
            List<TensorPlan> cut = new ArrayList<>();
            for (TensorPlan t : tensors) {
                cut.addAll(ExpertParts.fused(t) ? ExpertParts.split(t) : List.of(t));
            }
            tensors = cut;
        }
        List<TensorPlan> placed = new ArrayList<>();
        ShardPlan[] shards = layoutShards(withScales(tensors), options.shardBytes(), placed);
        linkScales(placed);
        int wholeLimit = resources == null || !options.wholeTensorStatistics() ? 0
                // Companion inputs take a buffer each, like models.
                : ResourceCheck.largestChunk(resources, modelCount * (1 + method.companions().size()), hasBase,
                uniformOut != null && !uniformOut.writable());
        ChunkPlan[] chunks = chunk(placed, options.chunkElements(), wholeLimit, method);
        MergePlan plan = new MergePlan(settings, modelCount, placed.toArray(TensorPlan[]::new), chunks, shards);
        return new Planned(plan, method, reference, models, List.copyOf(read.values()), layout.slotNames(),
                layout.layerOrigins(), moe, vocabulary);
    }

    /**
     * Config problems with companion checkpoints: each model entry names every kind the method
     * reads and no other; not with slices or a remapped vocabulary, whose rows would need the same map.
     */
    private static List<String> companionProblems(String file, MergeConfig config, MergeMethod method,
                                                  List<ModelSpec> specs, boolean sliced) {
        List<String> problems = new ArrayList<>();
        List<String> kinds = method.companions();
        for (int i = 0; i < specs.size(); i++) {
            ModelSpec spec = specs.get(i);
            String where = file + ": models[" + i + "] (" + spec.model() + ")";
            for (String kind : kinds) {
                if (!spec.companions().containsKey(kind)) {
                    problems.add(where + " has no '" + kind + "' checkpoint; " + method.name() + " reads one per model: "
                            + "add '" + kind + ": DIR' to the entry (tensors named and shaped as the model's)");
                }
            }
            for (String kind : spec.companions().keySet()) {
                if (!kinds.contains(kind)) {
                    problems.add(where + " names a '" + kind + "' checkpoint, which " + method.name() + " does not read"
                            + (kinds.isEmpty() ? "" : " (it reads " + String.join(", ", kinds) + ")")
                            + "; remove it or choose a method that does");
                }
            }
        }
        if (!kinds.isEmpty() && sliced) {
            problems.add(file + ": " + method.name() + " reads " + String.join(", ", kinds) + " checkpoints, which "
                    + "are not supported with slices or layer ranges; merge whole models under 'models:'");
        }
        if (!kinds.isEmpty() && (config.remapsVocabulary())) {
            problems.add(file + ": " + method.name() + " with a merged vocabulary (tokenizer_source union or the "
                    + "tokenizer: section) is not supported: companion rows would need the same remapping");
        }
        return problems;
    }

    /**
     * The plan with each merged tensor reading its models' companion tensors, after checking that
     * every companion checkpoint holds every merged tensor with the model's shape in a float dtype
     * (all problems at once, before any work).
     */
    private static Planned withCompanions(Planned planned, MergeMethod method, List<ModelSpec> specs,
                                          List<Map<String, Checkpoint>> companions) {
        List<String> problems = new ArrayList<>();
        List<String> kinds = method.companions();
        int m = specs.size();
        MergePlan plan = planned.plan();
        TensorPlan[] tensors = plan.tensors().clone();
        List<Map<String, StoredTensor>> byName = new ArrayList<>();
        for (Map<String, Checkpoint> c : companions) {
            for (String kind : kinds) {
                byName.add(c.get(kind).byName());
            }
        }
        for (int t = 0; t < tensors.length; t++) {
            TensorPlan tensor = tensors[t];
            if (tensor.copy() || tensor.derived()) {
                continue;
            }
            StoredTensor[] slots = new StoredTensor[kinds.size() * m];
            for (int k = 0; k < kinds.size(); k++) {
                for (int i = 0; i < m; i++) {
                    String path = specs.get(i).companions().get(kinds.get(k));
                    StoredTensor c = byName.get(i * kinds.size() + k).get(tensor.name());
                    String where = "models[" + i + "]." + kinds.get(k) + " (" + path + ")";
                    if (c == null) {
                        problems.add(where + " has no tensor '" + tensor.name() + "'; it must hold every tensor the "
                                + "model has, with the same names");
                    } else if (!java.util.Arrays.equals(c.shape(), tensor.models()[i].shape())) {
                        problems.add(where + ": tensor '" + tensor.name() + "' has shape " + java.util.Arrays.toString(
                                c.shape()) + ", the model's is " + java.util.Arrays.toString(tensor.models()[i].shape()));
                    } else if (!c.dtype().writable() || c.quantization() != null) {
                        problems.add(where + ": tensor '" + tensor.name() + "' is " + c.dtype().safetensorsName()
                                + "; companion tensors must be F32, BF16 or F16");
                    } else {
                        slots[k * m + i] = c;
                    }
                }
            }
            tensors[t] = tensor.withCompanions(slots);
        }
        if (!problems.isEmpty()) {
            throw new AmalgamException(AmalgamException.Kind.INPUT, limit(problems));
        }
        MergePlan with = new MergePlan(plan.settings(), plan.modelCount(), tensors, plan.chunks(), plan.shards());
        return new Planned(with, planned.method(), planned.reference(), planned.models(), planned.inputs(),
                planned.modelNames(), planned.layerOrigins(), planned.moe(), planned.vocabulary());
    }

    /** A group no merged tensor belongs to is a typo in its pattern (or a pattern an earlier group shadows). */
    private static List<String> unmatchedGroups(String configFile, Map<String, String> groups, List<TensorPlan> tensors) {
        List<String> problems = new ArrayList<>();
        List<String> names = new ArrayList<>(groups.keySet());
        for (int g = 0; g < names.size(); g++) {
            int group = g;
            if (tensors.stream().noneMatch(t -> !t.copy() && !t.derived() && t.extent().groupOf(t.name()) == group)) {
                problems.add(configFile + ": groups." + names.get(g) + " ('" + groups.get(names.get(g)) + "') has no "
                        + "merged tensor" + (g > 0 ? " that an earlier group does not already take" : "")
                        + "; fix the pattern (a Java regular expression found anywhere in a tensor name)");
            }
        }
        return problems;
    }

    /**
     * Every tensor, seeing how many elements the merged tensors hold together, how many layers
     * there are, and the config's groups.
     */
    private static List<TensorPlan> withExtent(List<TensorPlan> tensors, Map<String, String> groups) {
        long elements = 0;
        int layers = 0;
        for (TensorPlan t : tensors) {
            if (!t.copy() && !t.derived()) {
                elements += t.elements();
            }
            layers = Math.max(layers, t.layer() + 1);
        }
        ModelExtent extent = new ModelExtent(elements, layers, groups.values().toArray(new String[0]));
        return tensors.stream().map(t -> t.withExtent(extent)).collect(java.util.stream.Collectors.toList());
    }

    /**
     * An MoE assembly: the architecture the config names (or the first that suits the inputs),
     * routers made now, and every output tensor copied (or scaled) by passthrough.
     */
    private Planned planMoe(String configFile, MergeConfig config, PlanOptions options) {
        MoeConfig moe = config.moe();
        List<String> problems = new ArrayList<>();
        Map<String, Checkpoint> read = new LinkedHashMap<>();
        for (String path : moe.referencedModels()) {
            Checkpoint c = read(path, problems);
            if (c != null) {
                read.put(strip(path), c);
            }
        }
        if (!problems.isEmpty()) {
            throw new AmalgamException(AmalgamException.Kind.INPUT, limit(problems));
        }
        Checkpoint base = read.get(strip(moe.baseModel()));
        String baseType = modelType(base);
        for (String path : moe.referencedModels()) {
            String type = modelType(read.get(strip(path)));
            if (!type.equals(baseType)) {
                problems.add(configFile + ": " + path + " is a " + type + " model but base_model " + moe.baseModel()
                        + " is " + baseType + "; an MoE is assembled from models of one architecture (config.json "
                        + "model_type)");
            }
        }
        if (!problems.isEmpty()) {
            throw new AmalgamException(AmalgamException.Kind.INPUT, limit(problems));
        }
        MoeArchitecture arch = architecture(configFile, moe, baseType, problems);
        long[] mlp = MoeLayout.mlpShape(base);
        if (arch == null || mlp == null) {
            if (mlp == null) {
                problems.add(configFile + ": " + base.directory() + " has no MLP tensors named like "
                        + "*.mlp.gate_proj.weight; an MoE is assembled from dense Llama-style models");
            }
            throw new AmalgamException(AmalgamException.Kind.CONFIG, problems);
        }
        int layers = Math.max(1, OutputLayout.layerCount(base));
        List<MoeConfig.Expert> gated = moe.gated(arch.sharedExpertGated());
        float[][][] gates = GateVectors.of(configFile, moe, gated, layers, (int) mlp[0], base, reader, problems);
        if (!problems.isEmpty()) {
            throw new AmalgamException(moe.gateMode().hidden() ? AmalgamException.Kind.CONFIG
                    : AmalgamException.Kind.INPUT, limit(problems));
        }
        OutputLayout.Layout layout = MoeLayout.of(configFile, moe, arch, base, path -> read.get(strip(path)), gates,
                problems);
        if (!problems.isEmpty()) {
            throw new AmalgamException(AmalgamException.Kind.INPUT, limit(problems));
        }
        Dtype out = moe.dtype();
        if (out == null) {
            JsonNode baseConfig = reader.sideFile(base, "config.json");
            String torch = baseConfig == null ? null : baseConfig.path("torch_dtype").asText(null);
            out = torch == null ? null : Dtype.fromConfigName(torch).filter(Dtype::writable).orElse(null);
        }
        if (out == null) {
            out = base.tensors().get(0).dtype().writable() ? base.tensors().get(0).dtype() : Dtype.BF16;
        }
        // Every tensor is written in one dtype, the routers too, as the widely used tool does.
        MergeConfig planned = new MergeConfig(config.mergeMethod(), config.baseModel(), config.models(),
                config.slices(), config.parameters(), config.dtype(), out, null, config.randomSeed(), config.source(),
                config.expertScope(), moe);
        return finish(configFile, planned, PASSTHROUGH, false, settings(planned, PASSTHROUGH, false), layout, base,
                List.of(base), read, options, new MoeArchitecture.Assembly(arch, moe.experts().size(),
                        moe.sharedExperts().size(), moe.expertsPerToken(), moe.gateMode().configName(),
                        moe.expertLayout().configName()), null);
    }

    private String modelType(Checkpoint c) {
        JsonNode config = reader.sideFile(c, "config.json");
        return config == null ? "(no config.json)" : config.path("model_type").asText("(no model_type)");
    }

    private static MoeArchitecture architecture(String file, MoeConfig moe, String inputType, List<String> problems) {
        List<MoeArchitecture> candidates = Arrays.stream(MoeArchitecture.values())
                .filter(a -> moe.architecture() == null || a.named(moe.architecture())).toList();
        if (candidates.isEmpty()) {
            problems.add(file + ": architecture '" + moe.architecture() + "' is unknown; use one of " + String.join(", ",
                    Arrays.stream(MoeArchitecture.values()).map(MoeArchitecture::modelType).toList()));
            return null;
        }
        List<String> why = new ArrayList<>();
        for (MoeArchitecture a : candidates) {
            List<String> reasons = a.unsuitable(moe, inputType);
            if (reasons.isEmpty()) {
                return a;
            }
            why.addAll(reasons);
        }
        problems.add(file + ": no MoE architecture " + (moe.architecture() == null ? "" : "named '"
                + moe.architecture() + "' ") + "can be assembled from this config: " + String.join("; ", why));
        return null;
    }

    private Checkpoint read(String directory, List<String> problems) {
        try {
            return reader.read(directory);
        } catch (FormatException e) {
            problems.addAll(e.problems());
            return null;
        }
    }

    /** Whether a slice is copied rather than merged: one source, under a method other than passthrough. */
    private static boolean copies(MergeMethod method, SliceSpec slice) {
        return slice.sources().size() == 1 && !method.name().equals(PASSTHROUGH.name());
    }

    private static boolean samePath(String a, String b) {
        return b != null && strip(a).equals(strip(b));
    }

    private static String strip(String path) {
        return OutputLayout.strip(path);
    }

    private static void checkParameterNames(String file, MergeConfig config, MergeMethod method, List<String> problems) {
        ParameterTable table = ParameterTable.of(method);
        String takes = " (" + method.name() + " takes: " + String.join(", ",
                method.parameters().stream().map(Parameter::name).sorted().toList()) + ")";
        config.parameters().forEach((name, value) -> {
            Parameter p = table.find(name);
            if (p == null) {
                problems.add(file + ": parameters." + name + " is not a parameter of " + method.name() + takes);
            } else {
                checkForm(file, "parameters." + name, p, value, problems);
            }
        });
        for (int i = 0; i < config.models().size(); i++) {
            checkModelParameters(file, "models[" + i + "].parameters.", config.models().get(i).parameters(), table,
                    method.name(), takes, problems);
        }
        for (int s = 0; s < config.slices().size(); s++) {
            SliceSpec slice = config.slices().get(s);
            String key = "slices[" + s + "].parameters.";
            slice.parameters().forEach((name, value) -> {
                Parameter p = table.find(name);
                if (p == null) {
                    problems.add(file + ": " + key + name + " is not a parameter of " + method.name() + takes);
                } else {
                    checkForm(file, key + name, p, value, problems);
                }
            });
            for (int i = 0; i < slice.sources().size(); i++) {
                checkModelParameters(file, "slices[" + s + "].sources[" + i + "].parameters.",
                        slice.sources().get(i).parameters(), table, method.name(), takes, problems);
            }
        }
    }

    private static void checkModelParameters(String file, String key, Map<String, ParameterValue> parameters,
                                             ParameterTable table, String method, String takes,
                                             List<String> problems) {
        parameters.forEach((name, value) -> {
            Parameter p = table.find(name);
            if (p == null) {
                problems.add(file + ": " + key + name + " is not a parameter of " + method + takes);
            } else if (p.scope() == Parameter.Scope.GLOBAL) {
                problems.add(file + ": " + key + name + " is a global parameter; move it to the top-level 'parameters'"
                        + (key.startsWith("slices") ? " or the slice's" : ""));
            } else {
                checkForm(file, key + name, p, value, problems);
            }
        });
    }

    /** Whether a value's form suits the declaration: gradients and filters only where it varies, the right type. */
    private static void checkForm(String file, String key, Parameter p, ParameterValue value, List<String> problems) {
        if (!(value instanceof ParameterValue.Scalar) && !p.varies()) {
            problems.add(file + ": " + key + " must be a single value, not a gradient or filter list");
            return;
        }
        List<ParameterValue> leaves = new ArrayList<>();
        if (value instanceof ParameterValue.Filtered f) {
            f.entries().forEach(e -> leaves.add(e.value()));
        } else {
            leaves.add(value);
        }
        for (ParameterValue leaf : leaves) {
            if (leaf instanceof ParameterValue.Scalar s && s.value() instanceof Boolean && p.type() != Parameter.Type.BOOLEAN) {
                problems.add(file + ": " + key + " must be a number, got " + s.value());
            }
            if (p.type() == Parameter.Type.CHOICE && !(leaf instanceof ParameterValue.Scalar s2
                    && s2.value() instanceof String word && p.choiceIndex(word) >= 0)) {
                problems.add(file + ": " + key + " must be one of " + String.join(", ", p.choices()) + "; got "
                        + describeLeaf(leaf));
            } else if (p.type() != Parameter.Type.CHOICE && leaf instanceof ParameterValue.Scalar s3
                    && s3.value() instanceof String word) {
                problems.add(file + ": " + key + " must be a number" + (p.type() == Parameter.Type.BOOLEAN
                        ? " or a boolean" : "") + ", got '" + word + "'");
            }
        }
    }

    private static String describeLeaf(ParameterValue leaf) {
        return leaf instanceof ParameterValue.Scalar s ? String.valueOf(s.value()) : "a gradient";
    }

    private static MethodSettings settings(MergeConfig config, MergeMethod method, boolean hasBase) {
        long seed = 0;
        if (config.randomSeed() != null) {
            seed = config.randomSeed();
        } else if (config.parameters().get("random_seed") instanceof ParameterValue.Scalar s
                && s.value() instanceof Double d && ParameterTable.of(method).find("random_seed") != null) {
            seed = (long) (double) d;
        }
        return new MethodSettings(method.name(), seed, hasBase);
    }

    /**
     * One parameter's value for one tensor: the first of {@code sources} (a model's own
     * parameters, then the global ones) that gives a value for the tensor, else the default.
     * Problems (missing, out of range) are collected; the tensor is named only where the value
     * varies by tensor, so a wrong scalar is reported once.
     */
    private static double resolve(String file, Parameter parameter, String owner, double t, String tensor,
                                  Set<String> problems, List<Map<String, ParameterValue>> sources) {
        Object v = null;
        boolean varies = false;
        for (Map<String, ParameterValue> source : sources) {
            ParameterValue given = source.get(parameter.name());
            if (given != null) {
                v = ParameterResolver.resolve(given, tensor, t);
                // A value that depends on the tensor (or a filter list that missed it) names the tensor.
                varies |= !(given instanceof ParameterValue.Scalar);
                if (v != null) {
                    break;
                }
            }
        }
        if (v == null) {
            v = parameter.defaultValue();
        }
        String where = varies ? " for tensor '" + tensor + "'" : "";
        if (v == null) {
            problems.add(file + ": " + owner + " has no '" + parameter.name() + "'" + (varies ? where : "")
                    + "; set it in " + (parameter.scope() == Parameter.Scope.MODEL ? "the model's parameters or " : "")
                    + "the global parameters (a filter list needs an entry without filter as a fallback)");
            return Double.NaN;
        }
        if (v instanceof String word) {
            // checkForm refused words that are not the parameter's choices before values resolve.
            return Math.max(0, parameter.choiceIndex(word));
        }
        double value = v instanceof Boolean b ? (b ? 1.0 : 0.0) : (Double) v;
        if (parameter.computed() && Double.isNaN(value)) {
            return value; // not given: the method computes it
        }
        switch (parameter.type()) {
            case BOOLEAN -> value = value != 0.0 ? 1.0 : 0.0;
            case INTEGER -> {
                if (value != Math.rint(value)) {
                    problems.add(file + ": " + owner + "." + parameter.name() + " must be a whole number, got "
                            + value + where);
                }
            }
            case NUMBER -> {
            }
        }
        if (!parameter.range().contains(value)) {
            problems.add(file + ": " + owner + "." + parameter.name() + " is " + parameter.format(value) + where
                    + ", outside " + parameter.range() + "; give a value in that range");
        }
        return value;
    }

    private static void checkSameTensors(Checkpoint reference, List<Checkpoint> models, List<String> problems) {
        Map<String, StoredTensor> ref = reference.byName();
        for (Checkpoint model : models) {
            if (model == reference) {
                continue;
            }
            Map<String, StoredTensor> mine = model.byName();
            for (StoredTensor r : ref.values()) {
                StoredTensor t = mine.get(r.name());
                if (t == null) {
                    problems.add(model.directory() + ": tensor '" + r.name() + "' (present in " + reference.directory()
                            + ") is missing; every model must hold the same tensors");
                } else if (!Arrays.equals(t.shape(), r.shape())) {
                    problems.add(t.file() + ": tensor '" + r.name() + "' has shape " + Arrays.toString(t.shape())
                            + " but " + Arrays.toString(r.shape()) + " in " + r.file() + "; models must share an architecture");
                }
            }
            for (StoredTensor t : mine.values()) {
                if (!ref.containsKey(t.name())) {
                    problems.add(t.file() + ": tensor '" + t.name() + "' is not in " + reference.directory()
                            + "; every model must hold the same tensors");
                }
            }
        }
    }

    /**
     * Places the output tensors in shards: one header entry per output tensor, the parts of a cut
     * fused tensor (consecutive in {@code tensors}) side by side inside its entry, in expert order.
     */
    private static ShardPlan[] layoutShards(List<TensorPlan> tensors, long limit, List<TensorPlan> placed) {
        List<List<TensorPlan>> outputs = new ArrayList<>();
        for (TensorPlan t : tensors) {
            List<TensorPlan> last = outputs.isEmpty() ? null : outputs.get(outputs.size() - 1);
            if (t.part() != null && t.part().index() > 0 && last != null) {
                last.add(t);
            } else {
                outputs.add(new ArrayList<>(List.of(t)));
            }
        }
        List<List<List<TensorPlan>>> groups = ShardLayout.greedy(outputs,
                o -> o.stream().mapToLong(TensorPlan::outBytes).sum(), limit);
        ShardPlan[] shards = new ShardPlan[groups.size()];
        for (int s = 0; s < groups.size(); s++) {
            String fileName = ShardLayout.fileName(s, groups.size());
            List<TensorEntry> entries = new ArrayList<>();
            long offset = 0;
            for (List<TensorPlan> o : groups.get(s)) {
                TensorPlan t = o.get(0);
                long bytes = o.stream().mapToLong(TensorPlan::outBytes).sum();
                long[] shape = t.part() == null ? t.shape() : t.part().wholeShape();
                entries.add(new TensorEntry(t.outputName(), t.outDtype(), shape, offset, offset + bytes));
                offset += bytes;
            }
            byte[] header = SafetensorsHeader.encode(entries, Map.of("format", "pt"));
            int first = placed.size();
            int count = 0;
            for (int i = 0; i < groups.get(s).size(); i++) {
                long at = header.length + entries.get(i).begin();
                for (TensorPlan t : groups.get(s).get(i)) {
                    placed.add(t.placed(placed.size(), s, at, t.outQuantization()));
                    at += t.outBytes();
                    count++;
                }
            }
            shards[s] = new ShardPlan(fileName, header, header.length + offset, first, count);
        }
        return shards;
    }

    /**
     * Cuts each tensor into chunks of at most {@code chunkElements}, except that a tensor whose
     * method asks for statistics is one chunk when it has at most {@code wholeLimit} elements:
     * its statistics are then computed in the task that merges it, on the values already read,
     * instead of in a statistics pass that reads the inputs once more.
     */
    private static ChunkPlan[] chunk(List<TensorPlan> tensors, int chunkElements, int wholeLimit, MergeMethod method) {
        List<ChunkPlan> chunks = new ArrayList<>();
        for (TensorPlan t : tensors) {
            if (t.outQuantization() != null) {
                // An FP8 weight's chunks are whole block rows; its scales are cut the same way, row for row.
                TensorPlan weight = t.outQuantization() instanceof OutputQuantization.Scales sc
                        ? tensors.get(sc.weightTensor()) : t;
                OutputQuantization.Weight w = (OutputQuantization.Weight) weight.outQuantization();
                long size = chunkSize(weight, chunkElements, wholeLimit, weight.copy() ? PASSTHROUGH : method);
                int ordinal = 0;
                for (long[] rows : gridRowRuns(w.grid(), weight.elements(), size)) {
                    long start = t.derived() ? rows[0] * w.grid().gridCols()
                            : w.grid().firstRow(rows[0]) * w.grid().cols();
                    long end = t.derived() ? (rows[0] + rows[1]) * w.grid().gridCols()
                            : rows[0] + rows[1] >= gridRows(w.grid(), weight.elements()) ? weight.elements()
                            : w.grid().firstRow(rows[0] + rows[1]) * w.grid().cols();
                    chunks.add(new ChunkPlan(chunks.size(), t.index(), start, (int) (end - start), ordinal++));
                }
                continue;
            }
            long size = chunkSize(t, chunkElements, wholeLimit, t.copy() ? PASSTHROUGH : method);
            int ordinal = 0;
            for (long start = 0; start < t.elements(); start += size) {
                int count = (int) Math.min(size, t.elements() - start);
                chunks.add(new ChunkPlan(chunks.size(), t.index(), start, count, ordinal++));
            }
        }
        return chunks.toArray(ChunkPlan[]::new);
    }

    private static long chunkSize(TensorPlan t, int chunkElements, int wholeLimit, MergeMethod method) {
        long size = chunkElements;
        if (method.wholeTensor(t)) {
            size = Math.max(1, t.elements());
        } else if (t.elements() > size && t.elements() <= wholeLimit && !method.wideStatistics(t)
                && !method.statistics(t, 0, dev.amalgam.method.TensorStatistics.NONE).isEmpty()) {
            size = t.elements();
        } else if (method.rowAligned()) {
            size = Math.max(t.cols(), (size / t.cols()) * t.cols());
        }
        if (size % MXFP4_BLOCK != 0 && hasMxfp4(t)) {
            // MXFP4 chunks start on a 32-value block (whole rows are already multiples of 32).
            size = Math.max(MXFP4_BLOCK, size / MXFP4_BLOCK * MXFP4_BLOCK);
        }
        return size;
    }

    private static long gridRows(Fp8BlockQuantizer.Grid grid, long elements) {
        long matrices = elements / Math.max(1, grid.matrixRows() * grid.cols());
        return matrices * grid.gridRowsPerMatrix();
    }

    /** Runs {first grid row, grid rows} of at most {@code size} elements each (at least one grid row). */
    private static List<long[]> gridRowRuns(Fp8BlockQuantizer.Grid grid, long elements, long size) {
        List<long[]> runs = new ArrayList<>();
        long total = gridRows(grid, elements);
        long first = 0;
        long taken = 0;
        long rows = 0;
        for (long g = 0; g < total; g++) {
            long n = (long) grid.rowsIn(g) * grid.cols();
            if (taken > 0 && taken + n > size) {
                runs.add(new long[]{first, rows});
                first = g;
                taken = 0;
                rows = 0;
            }
            taken += n;
            rows++;
        }
        if (rows > 0) {
            runs.add(new long[]{first, rows});
        }
        return runs;
    }

    /** The FP8 block scales of a stored tensor, or null when it is not FP8 with a grid of block scales. */
    private static dev.amalgam.format.Quantization.BlockScaled fp8Blocks(StoredTensor t) {
        return (t.dtype() == Dtype.F8_E4M3 || t.dtype() == Dtype.F8_E5M2)
                && t.quantization() instanceof dev.amalgam.format.Quantization.BlockScaled b
                && b.scales().elements() > 1 ? b : null;
    }

    private static Fp8BlockQuantizer.Grid grid(dev.amalgam.format.Quantization.BlockScaled b, long[] shape, int cols) {
        long rows = shape.length < 2 ? 1 : shape[shape.length - 2];
        return new Fp8BlockQuantizer.Grid(b.blockRows(), b.blockCols(), rows, cols);
    }

    /** The tensors with each FP8 weight's scales tensor right after it, named and typed as the reference's. */
    private static List<TensorPlan> withScales(List<TensorPlan> tensors) {
        List<TensorPlan> out = new ArrayList<>();
        for (TensorPlan t : tensors) {
            out.add(t);
            if (t.outQuantization() != null) {
                StoredTensor ref = t.base() != null ? t.base() : t.models()[0];
                StoredTensor scales = ref.quantization().scales();
                long[] shape = scales.shape();
                int cols = shape.length == 0 ? 1 : (int) Math.max(1, shape[shape.length - 1]);
                out.add(new TensorPlan(-1, scales.name(), shape, scales.elements(), cols, scales.dtype(), null,
                        new StoredTensor[0], t.parameters(), 0, 0, new OutputQuantization.Scales(-1)));
            }
        }
        return out;
    }

    /** Points each FP8 weight and its scales at each other by their places in the plan. */
    private static void linkScales(List<TensorPlan> placed) {
        Map<String, Integer> scalesByName = new java.util.HashMap<>();
        for (TensorPlan t : placed) {
            if (t.derived()) {
                scalesByName.put(t.name(), t.index());
            }
        }
        for (int i = 0; i < placed.size(); i++) {
            TensorPlan t = placed.get(i);
            if (t.outQuantization() instanceof OutputQuantization.Weight w) {
                int scales = scalesByName.get((t.base() != null ? t.base() : t.models()[0]).quantization().scales().name());
                placed.set(i, t.placed(i, t.shard(), t.outOffset(), new OutputQuantization.Weight(scales, w.grid())));
                TensorPlan s = placed.get(scales);
                placed.set(scales, s.placed(scales, s.shard(), s.outOffset(), new OutputQuantization.Scales(i)));
            }
        }
    }

    private static final int MXFP4_BLOCK = dev.amalgam.kernels.BlockScales.Mxfp4.BLOCK;

    private static boolean hasMxfp4(TensorPlan t) {
        if (t.base() != null && t.base().quantization() instanceof dev.amalgam.format.Quantization.Mxfp4) {
            return true;
        }
        for (StoredTensor m : t.models()) {
            if (m.quantization() instanceof dev.amalgam.format.Quantization.Mxfp4) {
                return true;
            }
        }
        return false;
    }

    private static List<String> limit(List<String> problems) {
        if (problems.size() <= MAX_REPORTED) {
            return problems;
        }
        List<String> out = new ArrayList<>(problems.subList(0, MAX_REPORTED));
        out.add("... and " + (problems.size() - MAX_REPORTED) + " more problems of the same kind");
        return out;
    }
}
