package dev.amalgam.plan;

import dev.amalgam.config.LayerRange;
import dev.amalgam.config.MergeConfig;
import dev.amalgam.config.ModelSpec;
import dev.amalgam.config.ParameterResolver;
import dev.amalgam.config.ParameterValue;
import dev.amalgam.config.SliceSpec;
import dev.amalgam.format.Checkpoint;
import dev.amalgam.format.StoredTensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * The plan's map from each output tensor to the input tensors it is merged from. With
 * {@code models}, every output tensor is the same-named tensor of every input. With
 * {@code slices}, output layers are numbered in slice order and each is merged from the layers
 * its slice's sources give at the same offset (renamed); the tensors outside the layer stack
 * come from the first slice's sources (embeddings) or the last slice's (the final norm and the
 * output head), as the widely used tool does.
 */
final class OutputLayout {

    /**
     * One output tensor.
     *
     * @param base          the base's input tensor, or null
     * @param models        each model slot's input tensor
     * @param t             where layer gradients are read: 0 to 1 over the slice's layers
     * @param modelSources  per slot, the parameter maps in precedence order (source, slice, global)
     * @param globalSources the global parameters' maps in precedence order (slice, global)
     * @param owners        per slot, how messages name the model ("models[0] (path)")
     * @param copy          one source's tensor copied (its slice has one source): {@code models} holds it
     * @param part          null, or which part of a stacked output tensor this is (an MoE's fused experts)
     */
    record Output(String name, StoredTensor base, StoredTensor[] models, double t,
                  List<List<Map<String, ParameterValue>>> modelSources, List<Map<String, ParameterValue>> globalSources,
                  String[] owners, boolean copy, TensorPlan.Part part) {

        Output(String name, StoredTensor base, StoredTensor[] models, double t,
               List<List<Map<String, ParameterValue>>> modelSources, List<Map<String, ParameterValue>> globalSources,
               String[] owners, boolean copy) {
            this(name, base, models, t, modelSources, globalSources, owners, copy, null);
        }

        /** The input whose dtype and layout the output follows: the base's, else the first model's. */
        StoredTensor reference() {
            return base != null ? base : models[0];
        }
    }

    /**
     * @param slotModels  per model slot, the (first) model path it reads
     * @param slotNames   per model slot, the checkpoint(s) it reads, for the report
     * @param layerOrigins per output layer, the layer of the slice's first source it comes from
     *                     (its config.json entries follow it); null when layers keep their numbers
     */
    record Layout(List<Output> outputs, List<String> slotModels, List<String> slotNames, int[] layerOrigins) {
    }

    private OutputLayout() {
    }

    /** The number of layers a checkpoint's tensor names show (one past the highest index), 0 for none. */
    static int layerCount(Checkpoint c) {
        return c.tensors().stream().mapToInt(t -> ParameterResolver.layerOf(t.name())).max().orElse(-1) + 1;
    }

    /** {@code name} with its layer index replaced by {@code layer}. */
    static String renumbered(String name, int layer) {
        return ParameterResolver.withLayer(name, layer);
    }

    /** Whether a tensor outside the layer stack comes before it (embeddings) rather than after (norm, head). */
    static boolean beforeLayers(String name) {
        String n = name.toLowerCase(java.util.Locale.ROOT);
        return n.contains("embed") || n.contains("wte") || n.contains("wpe");
    }

    /**
     * The outputs of a {@code models} config: every tensor of {@code reference} (the base, else the
     * first model), merged from the same-named tensor of every input; the checkpoints were checked
     * to hold the same tensors.
     */
    static Layout ofModels(MergeConfig config, List<ModelSpec> specs, Checkpoint base, List<Checkpoint> models,
                           Checkpoint reference) {
        ParameterResolver layers = new ParameterResolver(layerCount(reference));
        List<Map<String, StoredTensor>> byName = models.stream().map(Checkpoint::byName).toList();
        List<List<Map<String, ParameterValue>>> sources = new ArrayList<>();
        String[] owners = new String[specs.size()];
        for (int i = 0; i < specs.size(); i++) {
            sources.add(List.of(specs.get(i).parameters(), config.parameters()));
            owners[i] = "models[" + i + "] (" + specs.get(i).model() + ")";
        }
        List<Output> outputs = new ArrayList<>();
        for (StoredTensor ref : reference.tensors()) {
            StoredTensor[] stored = new StoredTensor[models.size()];
            for (int i = 0; i < stored.length; i++) {
                stored[i] = byName.get(i).get(ref.name());
            }
            outputs.add(new Output(ref.name(), base != null ? ref : null, stored, layers.position(ref.name()), sources,
                    List.of(config.parameters()), owners, false));
        }
        List<String> names = specs.stream().map(ModelSpec::model).toList();
        return new Layout(outputs, names, names, null);
    }

    /**
     * The outputs of a {@code slices} config (or of a {@code models} config whose models give
     * layer ranges, taken as one slice). Problems are collected, each naming the slice and the fix.
     *
     * @param base the base model's path when the method takes one, else null
     * @param copyLoneSources whether a slice with one source is copied (any method but passthrough,
     *                        whose slices all have one source and are merged by it)
     */
    static Layout ofSlices(String file, MergeConfig config, List<SliceSpec> slices, String base,
                           boolean copyLoneSources, Function<String, Checkpoint> checkpoints, List<String> problems) {
        int slots = -1;
        int firstWithSlots = -1;
        List<List<ModelSpec>> models = new ArrayList<>();
        List<ModelSpec> bases = new ArrayList<>();
        boolean[] copied = new boolean[slices.size()];
        for (int s = 0; s < slices.size(); s++) {
            String where = file + ": slices[" + s + "]";
            List<ModelSpec> mine = new ArrayList<>();
            ModelSpec baseSource = null;
            if (copyLoneSources && slices.get(s).sources().size() == 1) {
                copied[s] = true;
                models.add(List.of(slices.get(s).sources().get(0)));
                bases.add(null);
                continue;
            }
            Map<String, Integer> seen = new LinkedHashMap<>();
            List<ModelSpec> sources = slices.get(s).sources();
            for (int i = 0; i < sources.size(); i++) {
                ModelSpec src = sources.get(i);
                Integer earlier = seen.putIfAbsent(strip(src.model()), i);
                if (earlier != null) {
                    problems.add(where + ": " + src.model() + " is listed twice (sources " + earlier + " and " + i
                            + ", layer ranges " + sources.get(earlier).layerRange() + " and " + src.layerRange()
                            + "); a slice takes each model once: put the other range in a slice of its own");
                    continue;
                }
                if (base != null && strip(src.model()).equals(strip(base))) {
                    baseSource = src;
                } else {
                    mine.add(src);
                }
            }
            if (base != null && baseSource == null) {
                problems.add(where + " has no source from base_model " + base + "; add {model: " + base
                        + ", layer_range: [FROM, TO]} to its sources (the layers the others' deltas are taken against)");
            }
            int lengths = -1;
            for (ModelSpec src : sources) {
                if (src.layerRange() != null) {
                    if (lengths >= 0 && src.layerRange().length() != lengths) {
                        problems.add(where + ": its sources give different numbers of layers ("
                                + describe(sources) + "); every source of a slice gives the same number");
                        break;
                    }
                    lengths = src.layerRange().length();
                }
            }
            if (slots < 0) {
                slots = mine.size();
                firstWithSlots = s;
            } else if (mine.size() != slots) {
                problems.add(where + " merges " + mine.size() + " model" + (mine.size() == 1 ? "" : "s")
                        + (base != null ? " besides the base" : "") + " but slices[" + firstWithSlots + "] merges "
                        + slots + "; every slice must merge the same number of models (run slices with a different "
                        + "number as a separate merge, or give them the same sources)");
            }
            models.add(mine);
            bases.add(baseSource);
        }
        if (slots < 0) {
            slots = 1; // every slice is copied: one slot
        }
        if (!problems.isEmpty()) {
            return null;
        }
        // Ranges against the layers each checkpoint has.
        for (int s = 0; s < slices.size(); s++) {
            for (int i = 0; i < slices.get(s).sources().size(); i++) {
                ModelSpec src = slices.get(s).sources().get(i);
                Checkpoint c = checkpoints.apply(src.model());
                if (c == null) {
                    continue;
                }
                int layers = layerCount(c);
                LayerRange r = src.layerRange();
                if (layers == 0) {
                    problems.add(file + ": slices[" + s + "].sources[" + i + "]: " + src.model() + " has no tensors "
                            + "named like a decoder layer (layers.N., h.N. or blocks.N.), so layer ranges select "
                            + "nothing; list it under models: instead");
                } else if (r.to() > layers) {
                    problems.add(file + ": slices[" + s + "].sources[" + i + "]: layer_range " + r + " goes past the "
                            + layers + " layers of " + src.model() + " (0 to " + (layers - 1) + "); give TO at most "
                            + layers + " (TO is one past the last layer taken)");
                }
            }
        }
        if (!problems.isEmpty()) {
            return null;
        }

        List<Output> outputs = new ArrayList<>();
        List<Output> post = new ArrayList<>();
        int outLayer = 0;
        List<Integer> origins = new ArrayList<>();
        for (int s = 0; s < slices.size(); s++) {
            SliceSpec slice = slices.get(s);
            ModelSpec baseSrc = bases.get(s);
            List<ModelSpec> srcs = models.get(s);
            ModelSpec first = baseSrc != null ? baseSrc : srcs.get(0);
            Checkpoint firstCheckpoint = checkpoints.apply(first.model());
            int n = first.layerRange().length();
            // The tensors outside the layer stack: embeddings from the first slice, the rest from the
            // last (one slice gives both).
            for (StoredTensor t : firstCheckpoint.tensors()) {
                boolean before = beforeLayers(t.name());
                if (ParameterResolver.layerOf(t.name()) >= 0 || (before ? s != 0 : s != slices.size() - 1)) {
                    continue;
                }
                Output o = output(file, config, slice, s, t.name(), t.name(), baseSrc, srcs, 0.0, checkpoints,
                        problems, true, copied[s]);
                if (o != null) {
                    (before ? outputs : post).add(o);
                }
            }
            for (int idx = 0; idx < n; idx++) {
                double t = n > 1 ? (double) idx / (n - 1) : 1.0;
                int layer = outLayer++;
                int at = first.layerRange().from() + idx;
                origins.add(at);
                for (StoredTensor tensor : firstCheckpoint.tensors()) {
                    if (ParameterResolver.layerOf(tensor.name()) != at) {
                        continue;
                    }
                    String outName = renumbered(tensor.name(), layer);
                    Output o = output(file, config, slice, s, outName, tensor.name(), baseSrc, srcs, t, checkpoints,
                            problems, false, copied[s]);
                    if (o != null) {
                        outputs.add(o);
                    }
                }
            }
        }
        outputs.addAll(post);
        List<String> slotNames = new ArrayList<>();
        List<String> slotModels = new ArrayList<>();
        for (int i = 0; i < slots; i++) {
            java.util.LinkedHashSet<String> names = new java.util.LinkedHashSet<>();
            for (List<ModelSpec> m : models) {
                if (i < m.size()) {
                    names.add(m.get(i).model()); // a copied slice fills slot 0 only
                }
            }
            slotNames.add(String.join(" | ", names));
            slotModels.add(names.iterator().next());
        }
        return new Layout(outputs, slotModels, slotNames, origins.stream().mapToInt(Integer::intValue).toArray());
    }

    /**
     * One output tensor of slice {@code s}: {@code firstName} is the tensor's name in the slice's
     * first source; every source contributes its tensor at the same offset into its own range
     * ({@code outsideLayers}: a tensor outside the layer stack, found by the same name).
     */
    private static Output output(String file, MergeConfig config, SliceSpec slice, int s, String outName,
                                 String firstName, ModelSpec baseSrc, List<ModelSpec> srcs, double t,
                                 Function<String, Checkpoint> checkpoints, List<String> problems,
                                 boolean outsideLayers, boolean copy) {
        ModelSpec first = baseSrc != null ? baseSrc : srcs.get(0);
        int offset = outsideLayers ? 0 : ParameterResolver.layerOf(firstName) - first.layerRange().from();
        StoredTensor firstTensor = checkpoints.apply(first.model()).byName().get(firstName);
        StoredTensor baseTensor = baseSrc == null ? null : input(file, s, baseSrc, firstName, firstTensor, offset,
                outsideLayers, checkpoints, problems);
        StoredTensor[] stored = new StoredTensor[srcs.size()];
        List<List<Map<String, ParameterValue>>> modelSources = new ArrayList<>();
        String[] owners = new String[srcs.size()];
        for (int i = 0; i < srcs.size(); i++) {
            stored[i] = input(file, s, srcs.get(i), firstName, firstTensor, offset, outsideLayers, checkpoints, problems);
            modelSources.add(List.of(srcs.get(i).parameters(), slice.parameters(), config.parameters()));
            owners[i] = "slices[" + s + "] source " + srcs.get(i).model();
        }
        if (baseSrc != null && baseTensor == null) {
            return null;
        }
        for (StoredTensor st : stored) {
            if (st == null) {
                return null;
            }
        }
        return new Output(outName, baseTensor, stored, t, modelSources, List.of(slice.parameters(), config.parameters()),
                owners, copy);
    }

    private static StoredTensor input(String file, int s, ModelSpec src, String firstName, StoredTensor firstTensor,
                                      int offset, boolean outsideLayers, Function<String, Checkpoint> checkpoints,
                                      List<String> problems) {
        String name = outsideLayers ? firstName : renumbered(firstName, src.layerRange().from() + offset);
        Checkpoint c = checkpoints.apply(src.model());
        StoredTensor t = c.byName().get(name);
        if (t == null) {
            problems.add(file + ": slices[" + s + "]: " + src.model() + " has no tensor '" + name + "' (its "
                    + "counterpart '" + firstName + "' is in " + firstTensor.file() + "); the sources of a slice must "
                    + "share an architecture");
            return null;
        }
        if (!Arrays.equals(t.shape(), firstTensor.shape())) {
            problems.add(t.file() + ": tensor '" + name + "' has shape " + Arrays.toString(t.shape()) + " but its "
                    + "counterpart '" + firstName + "' in " + firstTensor.file() + " has " + Arrays.toString(firstTensor.shape())
                    + " (slices[" + s + "]); the sources of a slice must share an architecture");
            return null;
        }
        return t;
    }

    private static String describe(List<ModelSpec> sources) {
        StringBuilder b = new StringBuilder();
        for (ModelSpec src : sources) {
            b.append(b.length() == 0 ? "" : ", ").append(src.model()).append(' ').append(src.layerRange());
        }
        return b.toString();
    }

    static String strip(String path) {
        return path.endsWith("/") ? path.substring(0, path.length() - 1) : path;
    }
}
