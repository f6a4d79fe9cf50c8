package dev.amalgam.plan;

import dev.amalgam.AmalgamException;
import dev.amalgam.config.MergeConfig;
import dev.amalgam.config.ModelSpec;
import dev.amalgam.config.ParameterResolver;
import dev.amalgam.config.ParameterValue;
import dev.amalgam.format.Checkpoint;
import dev.amalgam.format.CheckpointReader;
import dev.amalgam.format.FormatException;
import dev.amalgam.format.StoredTensor;
import dev.amalgam.format.TensorEntry;
import dev.amalgam.format.SafetensorsHeader;
import dev.amalgam.format.ShardLayout;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.merge.MergeMethod;
import dev.amalgam.merge.MergeMethods;

import java.util.ArrayList;
import java.util.Arrays;
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

    private final CheckpointReader reader;

    public Planner(CheckpointReader reader) {
        this.reader = reader;
    }

    /** A plan and the checkpoints it was made from (for side files and the report). */
    public record Planned(MergePlan plan, MergeMethod method, Checkpoint reference, List<Checkpoint> models) {
    }

    public Planned plan(String configFile, MergeConfig config, PlanOptions options) {
        List<String> configProblems = new ArrayList<>();
        MergeMethod method = MergeMethods.byName(config.mergeMethod()).orElse(null);
        if (method == null) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, configFile + ": merge_method '"
                    + config.mergeMethod() + "' is unknown (known: " + String.join(", ", MergeMethods.names()) + ")");
        }
        checkParameterNames(configFile, config, method, configProblems);
        if (method.requiresBase() && config.baseModel() == null) {
            configProblems.add(configFile + ": merge_method " + method.name() + " needs base_model (the model the "
                    + "others were fine-tuned from)");
        }
        if (!configProblems.isEmpty()) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, configProblems);
        }
        MethodSettings settings = settings(config, method);

        List<ModelSpec> specs = new ArrayList<>();
        for (ModelSpec spec : config.models()) {
            if (!(method.requiresBase() && samePath(spec.model(), config.baseModel()))) {
                specs.add(spec);
            }
        }
        if (specs.isEmpty()) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, configFile + ": 'models' lists no model besides "
                    + "the base; add the fine-tuned models to merge");
        }

        List<String> inputProblems = new ArrayList<>();
        Checkpoint base = method.requiresBase() ? read(config.baseModel(), inputProblems) : null;
        List<Checkpoint> models = new ArrayList<>();
        for (ModelSpec spec : specs) {
            models.add(read(spec.model(), inputProblems));
        }
        if (!inputProblems.isEmpty()) {
            throw new AmalgamException(AmalgamException.Kind.INPUT, inputProblems);
        }
        Checkpoint reference = base != null ? base : models.get(0);
        checkSameTensors(reference, models, inputProblems);
        if (!inputProblems.isEmpty()) {
            throw new AmalgamException(AmalgamException.Kind.INPUT, limit(inputProblems));
        }

        int layers = reference.tensors().stream().mapToInt(t -> ParameterResolver.layerOf(t.name())).max().orElse(-1) + 1;
        ParameterResolver resolver = new ParameterResolver(layers);
        List<TensorPlan> tensors = new ArrayList<>();
        List<String> valueProblems = new ArrayList<>();
        List<Map<String, StoredTensor>> byName = models.stream().map(Checkpoint::byName).toList();
        for (StoredTensor ref : reference.tensors()) {
            StoredTensor[] inputs = new StoredTensor[models.size()];
            ModelParameters[] params = new ModelParameters[models.size()];
            for (int i = 0; i < models.size(); i++) {
                inputs[i] = byName.get(i).get(ref.name());
                params[i] = resolve(configFile, config, specs.get(i), i, method, resolver, ref.name(), valueProblems);
            }
            long[] shape = ref.shape();
            int cols = shape.length == 0 ? 1 : (int) Math.max(1, shape[shape.length - 1]);
            Dtype out = config.outDtype() != null ? config.outDtype() : ref.dtype();
            TensorPlan t = new TensorPlan(tensors.size(), ref.name(), shape, ref.elements(), cols, out,
                    base != null ? ref : null, inputs, params, 0, 0);
            if (valueProblems.isEmpty()) {
                valueProblems.addAll(method.check(t));
            }
            tensors.add(t);
        }
        if (!valueProblems.isEmpty()) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, limit(new ArrayList<>(new LinkedHashSet<>(valueProblems))));
        }

        List<TensorPlan> placed = new ArrayList<>();
        ShardPlan[] shards = layoutShards(tensors, options.shardBytes(), placed);
        ChunkPlan[] chunks = chunk(placed, options.chunkElements(), method.rowAligned());
        MergePlan plan = new MergePlan(settings, models.size(), placed.toArray(TensorPlan[]::new), chunks, shards);
        return new Planned(plan, method, reference, models);
    }

    private Checkpoint read(String directory, List<String> problems) {
        try {
            return reader.read(directory);
        } catch (FormatException e) {
            problems.addAll(e.problems());
            return null;
        }
    }

    private static boolean samePath(String a, String b) {
        return b != null && strip(a).equals(strip(b));
    }

    private static String strip(String path) {
        return path.endsWith("/") ? path.substring(0, path.length() - 1) : path;
    }

    private static void checkParameterNames(String file, MergeConfig config, MergeMethod method, List<String> problems) {
        Set<String> global = method.globalParameters().keySet();
        Set<String> perModel = method.modelParameters().keySet();
        String takes = " (" + method.name() + " takes: " + String.join(", ", method.parameterNames()) + ")";
        config.parameters().forEach((name, value) -> {
            if (!global.contains(name) && !perModel.contains(name)) {
                problems.add(file + ": parameters." + name + " is not a parameter of " + method.name() + takes);
            } else if (global.contains(name) && !(value instanceof ParameterValue.Scalar)) {
                problems.add(file + ": parameters." + name + " must be a single value, not a gradient or filter list");
            }
        });
        for (int i = 0; i < config.models().size(); i++) {
            int index = i;
            config.models().get(i).parameters().forEach((name, value) -> {
                String key = file + ": models[" + index + "].parameters." + name;
                if (global.contains(name)) {
                    problems.add(key + " is a global parameter; move it to the top-level 'parameters'");
                } else if (!perModel.contains(name)) {
                    problems.add(key + " is not a parameter of " + method.name() + takes);
                }
            });
        }
        for (var entry : method.globalParameters().entrySet()) {
            ParameterValue v = config.parameters().get(entry.getKey());
            if (v instanceof ParameterValue.Scalar s && entry.getValue() != null
                    && s.value().getClass() != entry.getValue().getClass()) {
                problems.add(file + ": parameters." + entry.getKey() + " must be "
                        + (entry.getValue() instanceof Boolean ? "true or false" : "a number") + ", got " + s.value());
            }
        }
    }

    private static MethodSettings settings(MergeConfig config, MergeMethod method) {
        Map<String, Object> defaults = method.globalParameters();
        boolean normalize = (Boolean) global(config, "normalize", defaults.getOrDefault("normalize", false));
        boolean rescale = (Boolean) global(config, "rescale", defaults.getOrDefault("rescale", false));
        double lambda = (Double) global(config, "lambda", defaults.getOrDefault("lambda", 1.0));
        long seed = config.randomSeed() != null ? config.randomSeed()
                : (long) (double) (Double) global(config, "random_seed", 0.0);
        return new MethodSettings(method.name(), normalize, rescale, (float) lambda, seed);
    }

    private static Object global(MergeConfig config, String name, Object fallback) {
        ParameterValue v = config.parameters().get(name);
        return v instanceof ParameterValue.Scalar s ? s.value() : fallback;
    }

    private static ModelParameters resolve(String file, MergeConfig config, ModelSpec spec, int index,
                                           MergeMethod method, ParameterResolver resolver, String tensor,
                                           List<String> problems) {
        float[] values = new float[4];
        String[] names = {"weight", "density", "gamma", "epsilon"};
        for (int p = 0; p < names.length; p++) {
            String name = names[p];
            if (!method.modelParameters().containsKey(name)) {
                values[p] = name.equals("density") ? 1.0f : 0.0f;
                continue;
            }
            Object v = null;
            if (spec.parameters().containsKey(name)) {
                v = resolver.resolve(spec.parameters().get(name), tensor);
            }
            if (v == null && config.parameters().containsKey(name)) {
                v = resolver.resolve(config.parameters().get(name), tensor);
            }
            if (v == null) {
                v = method.modelParameters().get(name);
            }
            if (v == null) {
                problems.add(file + ": models[" + index + "] (" + spec.model() + ") has no '" + name
                        + "' for tensor '" + tensor + "'; set it in the model's parameters (a filter list needs an "
                        + "entry without filter as a fallback) or in the global parameters");
            } else if (!(v instanceof Double d)) {
                problems.add(file + ": models[" + index + "].parameters." + name + " must be a number, got " + v);
            } else {
                values[p] = (float) (double) d;
            }
        }
        return new ModelParameters(values[0], values[1], values[2], values[3]);
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

    private static ShardPlan[] layoutShards(List<TensorPlan> tensors, long limit, List<TensorPlan> placed) {
        List<List<TensorPlan>> groups = ShardLayout.greedy(tensors, TensorPlan::outBytes, limit);
        ShardPlan[] shards = new ShardPlan[groups.size()];
        for (int s = 0; s < groups.size(); s++) {
            String fileName = ShardLayout.fileName(s, groups.size());
            List<TensorEntry> entries = new ArrayList<>();
            long offset = 0;
            for (TensorPlan t : groups.get(s)) {
                entries.add(new TensorEntry(t.name(), t.outDtype(), t.shape(), offset, offset + t.outBytes()));
                offset += t.outBytes();
            }
            byte[] header = SafetensorsHeader.encode(entries, Map.of("format", "pt"));
            int first = placed.size();
            for (int i = 0; i < groups.get(s).size(); i++) {
                TensorPlan t = groups.get(s).get(i);
                placed.add(new TensorPlan(t.index(), t.name(), t.shape(), t.elements(), t.cols(), t.outDtype(), t.base(),
                        t.models(), t.parameters(), s, header.length + entries.get(i).begin()));
            }
            shards[s] = new ShardPlan(fileName, header, header.length + offset, first, groups.get(s).size());
        }
        return shards;
    }

    private static ChunkPlan[] chunk(List<TensorPlan> tensors, int chunkElements, boolean rowAligned) {
        List<ChunkPlan> chunks = new ArrayList<>();
        for (TensorPlan t : tensors) {
            long size = chunkElements;
            if (rowAligned) {
                size = Math.max(t.cols(), (size / t.cols()) * t.cols());
            }
            int ordinal = 0;
            for (long start = 0; start < t.elements(); start += size) {
                int count = (int) Math.min(size, t.elements() - start);
                chunks.add(new ChunkPlan(chunks.size(), t.index(), start, count, ordinal++));
            }
        }
        return chunks.toArray(ChunkPlan[]::new);
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
