package dev.amalgam.config;

import com.fasterxml.jackson.databind.JsonNode;
import dev.amalgam.AmalgamException;
import dev.amalgam.kernels.Dtype;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Parses merge-config YAML and checks its structure. Every problem is collected and reported
 * at once, each naming the config file and key. Unknown keys are errors: a typo silently
 * ignored merges something other than what was meant.
 */
public final class MergeConfigParser {
    private static final Set<String> TOP_KEYS = Set.of("merge_method", "base_model", "models", "parameters",
            "dtype", "out_dtype", "tokenizer_source", "random_seed", "slices", "tokenizer", "chat_template", "name",
            "expert_scope", "groups");
    private static final Set<String> NOT_YET = Set.of();

    private MergeConfigParser() {
    }

    /** Largest config file read, in bytes (a UTF-8 character is at least one). */
    public static final long MAX_CONFIG_BYTES = 4L * ConfigYaml.MAX_CHARACTERS;

    public static MergeConfig parse(String file, String yaml) {
        JsonNode root = ConfigYaml.load(file, yaml);
        if (root == null || !root.isObject()) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, file + ": expected a YAML mapping with "
                    + "merge_method, models and parameters");
        }
        if (MoeConfigParser.isMoe(root)) {
            return MergeConfig.ofMoe(MoeConfigParser.parse(file, root), yaml);
        }
        List<String> problems = new ArrayList<>();
        root.fieldNames().forEachRemaining(key -> {
            if (!TOP_KEYS.contains(key)) {
                problems.add(file + ": unknown key '" + key + "' (known: " + String.join(", ", sorted(TOP_KEYS)) + ")");
            } else if (NOT_YET.contains(key)) {
                problems.add(file + ": '" + key + "' is not supported yet; remove it");
            }
        });
        String method = text(root, "merge_method", file, problems);
        if (method == null) {
            problems.add(file + ": 'merge_method' is required (e.g. ties, dare_ties, task_arithmetic, linear)");
        }
        String base = text(root, "base_model", file, problems);
        List<ModelSpec> models = new ArrayList<>();
        List<SliceSpec> slices = new ArrayList<>();
        JsonNode modelsNode = root.get("models");
        if (root.has("slices") && root.has("models")) {
            problems.add(file + ": give either 'models' or 'slices', not both (slices name their models in 'sources')");
        } else if (root.has("slices")) {
            slices(file, root.get("slices"), slices, problems);
        } else if (modelsNode == null || !modelsNode.isArray() || modelsNode.isEmpty()) {
            problems.add(file + ": 'models' must be a non-empty list of {model: PATH, parameters: {...}}"
                    + " (or give 'slices')");
        } else {
            for (int i = 0; i < modelsNode.size(); i++) {
                ModelSpec spec = model(file, "models[" + i + "]", modelsNode.get(i), false, problems);
                if (spec != null) {
                    models.add(spec);
                }
            }
        }
        Map<String, ParameterValue> parameters = root.has("parameters")
                ? parameters(file, "parameters", root.get("parameters"), problems) : Map.of();
        Dtype dtype = dtype(root, "dtype", file, problems);
        Dtype outDtype = outDtype(root, file, problems);
        String tokenizer = text(root, "tokenizer_source", file, problems);
        TokenizerSpec vocabulary = TokenizerSpec.NONE;
        if (root.has("tokenizer") && !root.get("tokenizer").isNull()) {
            JsonNode section = root.get("tokenizer");
            if (tokenizer != null) {
                problems.add(file + ": give either 'tokenizer_source' or 'tokenizer' (with its 'source'), not both");
            }
            if (!section.isObject()) {
                problems.add(file + ": 'tokenizer' must be a mapping with source, tokens and pad_to_multiple_of");
            } else {
                String source = text(section, "source", file + ": tokenizer", problems);
                tokenizer = source == null ? "union" : source;
                vocabulary = tokenizerSection(file, section, problems);
            }
        }
        String chatTemplate = text(root, "chat_template", file, problems);
        if (chatTemplate != null) {
            vocabulary = new TokenizerSpec(vocabulary.tokens(), vocabulary.padToMultipleOf(), chatTemplate);
        }
        Long seed = seed(root, file, problems);
        MergeConfig.ExpertScope scope = MergeConfig.ExpertScope.EXPERT;
        String scopeName = text(root, "expert_scope", file, problems);
        if (scopeName != null) {
            if (scopeName.equals("expert") || scopeName.equals("tensor")) {
                scope = MergeConfig.ExpertScope.valueOf(scopeName.toUpperCase(java.util.Locale.ROOT));
            } else {
                problems.add(file + ": 'expert_scope' is '" + scopeName + "'; use expert (statistics per expert of a "
                        + "fused [experts, ...] tensor, the default) or tensor (over the whole fused tensor)");
            }
        }
        Map<String, String> groups = groups(file, root.get("groups"), problems);
        if (!problems.isEmpty()) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, problems);
        }
        return new MergeConfig(method, base, List.copyOf(models), List.copyOf(slices), parameters, dtype, outDtype,
                tokenizer, seed, yaml, scope, null, vocabulary, groups);
    }

    /**
     * {@code groups:}: a mapping of group names to regular expressions (Java syntax, matched
     * anywhere in a tensor name), kept in the order written.
     */
    private static Map<String, String> groups(String file, JsonNode node, List<String> problems) {
        Map<String, String> groups = new java.util.LinkedHashMap<>();
        if (node == null || node.isNull()) {
            return groups;
        }
        if (!node.isObject() || node.isEmpty()) {
            problems.add(file + ": 'groups' must be a mapping of group names to tensor-name patterns, e.g. "
                    + "{attention: 'self_attn', mlp: 'mlp\\.'}");
            return groups;
        }
        node.fields().forEachRemaining(e -> {
            String key = "groups." + e.getKey();
            if (!e.getValue().isTextual() || e.getValue().asText().isEmpty()) {
                problems.add(file + ": '" + key + "' must be a regular expression a tensor name contains, as a string");
                return;
            }
            try {
                java.util.regex.Pattern.compile(e.getValue().asText());
                groups.put(e.getKey(), e.getValue().asText());
            } catch (java.util.regex.PatternSyntaxException bad) {
                problems.add(file + ": '" + key + "' is not a valid regular expression (" + bad.getDescription()
                        + " near index " + bad.getIndex() + "); fix the pattern");
            }
        });
        return groups;
    }

    private static void slices(String file, JsonNode node, List<SliceSpec> slices, List<String> problems) {
        if (node == null || !node.isArray() || node.isEmpty()) {
            problems.add(file + ": 'slices' must be a non-empty list of {sources: [{model: PATH, layer_range: [FROM, TO]}]}");
            return;
        }
        for (int s = 0; s < node.size(); s++) {
            String key = "slices[" + s + "]";
            JsonNode slice = node.get(s);
            if (!slice.isObject()) {
                problems.add(file + ": " + key + " must be a mapping with 'sources' and optionally 'parameters'");
                continue;
            }
            slice.fieldNames().forEachRemaining(k -> {
                if (!k.equals("sources") && !k.equals("parameters")) {
                    problems.add(file + ": " + key + ": unknown key '" + k + "' (known: sources, parameters)");
                }
            });
            JsonNode sources = slice.get("sources");
            if (sources == null || !sources.isArray() || sources.isEmpty()) {
                problems.add(file + ": " + key + ".sources must be a non-empty list of {model: PATH, layer_range: [FROM, TO]}");
                continue;
            }
            List<ModelSpec> specs = new ArrayList<>();
            for (int i = 0; i < sources.size(); i++) {
                ModelSpec spec = model(file, key + ".sources[" + i + "]", sources.get(i), true, problems);
                if (spec != null) {
                    specs.add(spec);
                }
            }
            Map<String, ParameterValue> parameters = slice.has("parameters")
                    ? parameters(file, key + ".parameters", slice.get("parameters"), problems) : Map.of();
            slices.add(new SliceSpec(List.copyOf(specs), parameters));
        }
    }

    /** A model entry or a slice's source; {@code rangeRequired} for sources, which must say their layers. */
    private static ModelSpec model(String file, String key, JsonNode node, boolean rangeRequired, List<String> problems) {
        String where = file + ": " + key;
        if (node.isTextual() && !rangeRequired) {
            return new ModelSpec(node.asText(), Map.of());
        }
        if (!node.isObject()) {
            problems.add(where + " must be a mapping with 'model'" + (rangeRequired ? ", 'layer_range'" : "")
                    + " and 'parameters'");
            return null;
        }
        Map<String, String> companions = new LinkedHashMap<>();
        node.fieldNames().forEachRemaining(k -> {
            if (ModelSpec.COMPANION_KINDS.contains(k) && !rangeRequired) {
                JsonNode dir = node.get(k);
                if (!dir.isTextual() || dir.asText().isBlank()) {
                    problems.add(where + "." + k + " must be a checkpoint directory path (tensors named as the model's)");
                } else {
                    companions.put(k, dir.asText());
                }
            } else if (ModelSpec.COMPANION_KINDS.contains(k)) {
                problems.add(where + ": '" + k + "' checkpoints are not supported in slices; list the models under "
                        + "'models:' to give them");
            } else if (!k.equals("model") && !k.equals("parameters") && !k.equals("layer_range")) {
                problems.add(where + ": unknown key '" + k + "' (known: model, layer_range, parameters, "
                        + String.join(", ", ModelSpec.COMPANION_KINDS) + ")");
            }
        });
        JsonNode model = node.get("model");
        if (model == null || !model.isTextual() || model.asText().isBlank()) {
            problems.add(where + ": 'model' must be a checkpoint directory path");
            return null;
        }
        LayerRange range = null;
        if (node.has("layer_range")) {
            range = layerRange(where, node.get("layer_range"), problems);
        } else if (rangeRequired) {
            problems.add(where + ": 'layer_range' is required in a slice: [FROM, TO], the layers FROM to TO - 1 of "
                    + model.asText());
        }
        Map<String, ParameterValue> parameters = node.has("parameters")
                ? parameters(file, key + ".parameters", node.get("parameters"), problems) : Map.of();
        return new ModelSpec(model.asText(), parameters, range, companions);
    }

    private static LayerRange layerRange(String where, JsonNode node, List<String> problems) {
        if (!node.isArray() || node.size() != 2 || !node.get(0).isIntegralNumber() || !node.get(1).isIntegralNumber()
                || !node.get(0).canConvertToInt() || !node.get(1).canConvertToInt()) {
            problems.add(where + ": 'layer_range' must be [FROM, TO], two whole numbers (layers FROM to TO - 1); got " + node);
            return null;
        }
        int from = node.get(0).asInt();
        int to = node.get(1).asInt();
        if (from < 0 || to <= from) {
            problems.add(where + ": 'layer_range' " + node + " holds no layers; give [FROM, TO] with 0 <= FROM < TO "
                    + "(TO is one past the last layer taken)");
            return null;
        }
        return new LayerRange(from, to);
    }

    private static Map<String, ParameterValue> parameters(String file, String key, JsonNode node, List<String> problems) {
        if (node == null || node.isNull()) {
            return Map.of();
        }
        if (!node.isObject()) {
            problems.add(file + ": '" + key + "' must be a mapping of parameter names to values");
            return Map.of();
        }
        Map<String, ParameterValue> out = new LinkedHashMap<>();
        Iterator<Map.Entry<String, JsonNode>> it = node.fields();
        while (it.hasNext()) {
            Map.Entry<String, JsonNode> e = it.next();
            if (e.getValue().isObject()) {
                // A group of parameters ("lines: {alpha: 0.5, beta: 1}") is read as "lines.alpha", "lines.beta".
                e.getValue().fields().forEachRemaining(inner -> {
                    String name = e.getKey() + "." + inner.getKey();
                    ParameterValue value = value(file, key + "." + name, inner.getValue(), problems);
                    if (value != null) {
                        out.put(name, value);
                    }
                });
                continue;
            }
            ParameterValue value = value(file, key + "." + e.getKey(), e.getValue(), problems);
            if (value != null) {
                out.put(e.getKey(), value);
            }
        }
        return out;
    }

    private static ParameterValue value(String file, String key, JsonNode node, List<String> problems) {
        if (node.isNumber()) {
            return new ParameterValue.Scalar(node.asDouble());
        }
        if (node.isBoolean()) {
            return new ParameterValue.Scalar(node.asBoolean());
        }
        if (node.isTextual()) {
            return new ParameterValue.Scalar(node.asText()); // a choice ("trim_scope: model"); the method checks the word
        }
        if (node.isArray() && !node.isEmpty() && allNumbers(node)) {
            double[] points = new double[node.size()];
            for (int i = 0; i < points.length; i++) {
                points[i] = node.get(i).asDouble();
            }
            return new ParameterValue.Gradient(points);
        }
        if (node.isArray() && !node.isEmpty()) {
            List<ParameterValue.FilterEntry> entries = new ArrayList<>();
            for (int i = 0; i < node.size(); i++) {
                JsonNode entry = node.get(i);
                String where = key + "[" + i + "]";
                if (!entry.isObject() || !entry.has("value")) {
                    problems.add(file + ": '" + where + "' must be {filter: NAME_PART, value: V} or {value: V}");
                    continue;
                }
                entry.fieldNames().forEachRemaining(k -> {
                    if (!k.equals("filter") && !k.equals("value")) {
                        problems.add(file + ": '" + where + "' has unknown key '" + k + "' (known: filter, value)");
                    }
                });
                String filter = entry.has("filter") && !entry.get("filter").isNull() ? entry.get("filter").asText() : "";
                ParameterValue inner = value(file, where + ".value", entry.get("value"), problems);
                if (inner instanceof ParameterValue.Filtered) {
                    problems.add(file + ": '" + where + ".value' cannot itself be a filter list");
                } else if (inner != null) {
                    entries.add(new ParameterValue.FilterEntry(filter, inner));
                }
            }
            return new ParameterValue.Filtered(List.copyOf(entries));
        }
        problems.add(file + ": '" + key + "' must be a number, a boolean, a word, a list of numbers (a layer "
                + "gradient) or a list of {filter, value}; got " + node);
        return null;
    }

    /** The {@code tokenizer:} section's {@code tokens} and {@code pad_to_multiple_of}. */
    private static TokenizerSpec tokenizerSection(String file, JsonNode section, List<String> problems) {
        section.fieldNames().forEachRemaining(k -> {
            if (!k.equals("source") && !k.equals("tokens") && !k.equals("pad_to_multiple_of")) {
                problems.add(file + ": tokenizer: unknown key '" + k + "' (known: source, tokens, pad_to_multiple_of)");
            }
        });
        Integer pad = null;
        JsonNode p = section.get("pad_to_multiple_of");
        if (p != null && !p.isNull()) {
            if (!p.isIntegralNumber() || !p.canConvertToInt() || p.asInt() < 1) {
                problems.add(file + ": tokenizer.pad_to_multiple_of must be a whole number of at least 1, got " + p);
            } else {
                pad = p.asInt();
            }
        }
        Map<String, TokenizerSpec.TokenSpec> tokens = new LinkedHashMap<>();
        JsonNode t = section.get("tokens");
        if (t != null && !t.isNull()) {
            if (!t.isObject()) {
                problems.add(file + ": tokenizer.tokens must map each token to {source: ..., force: ...}");
            } else {
                Iterator<Map.Entry<String, JsonNode>> it = t.fields();
                while (it.hasNext()) {
                    Map.Entry<String, JsonNode> e = it.next();
                    String key = file + ": tokenizer.tokens['" + e.getKey() + "']";
                    TokenizerSpec.TokenSpec spec = tokenSpec(key, e.getValue(), problems);
                    if (spec != null) {
                        tokens.put(e.getKey(), spec);
                    }
                }
            }
        }
        return new TokenizerSpec(java.util.Collections.unmodifiableMap(tokens), pad, null);
    }

    private static TokenizerSpec.TokenSpec tokenSpec(String key, JsonNode node, List<String> problems) {
        if (node == null || node.isNull()) {
            return new TokenizerSpec.TokenSpec(null, false);
        }
        if (!node.isObject()) {
            problems.add(key + " must be a mapping with source and force");
            return null;
        }
        node.fieldNames().forEachRemaining(k -> {
            if (!k.equals("source") && !k.equals("force")) {
                problems.add(key + ": unknown key '" + k + "' (known: source, force)");
            }
        });
        boolean force = node.path("force").asBoolean(false);
        JsonNode source = node.get("source");
        if (source == null || source.isNull()) {
            return new TokenizerSpec.TokenSpec(null, force);
        }
        if (source.isTextual()) {
            return new TokenizerSpec.TokenSpec(new TokenizerSpec.TokenSource.Model(source.asText()), force);
        }
        String kind = source.path("kind").asText("");
        if (kind.equals("zero")) {
            return new TokenizerSpec.TokenSpec(new TokenizerSpec.TokenSource.Zero(), force);
        }
        if (kind.equals("model_token")) {
            String model = source.path("model").asText(null);
            boolean hasToken = source.hasNonNull("token");
            boolean hasId = source.hasNonNull("token_id");
            if (model == null || hasToken == hasId) {
                problems.add(key + ".source: a model_token source names 'model' and one of 'token' or 'token_id'");
                return null;
            }
            return new TokenizerSpec.TokenSpec(new TokenizerSpec.TokenSource.ModelToken(model,
                    hasToken ? source.get("token").asText() : null, hasId ? source.get("token_id").asInt() : null), force);
        }
        problems.add(key + ".source must be a model path, {kind: zero} or {kind: model_token, model: PATH, token: T} "
                + "(or token_id: N); got " + source);
        return null;
    }

    private static boolean allNumbers(JsonNode array) {
        for (JsonNode n : array) {
            if (!n.isNumber()) {
                return false;
            }
        }
        return true;
    }

    static String text(JsonNode root, String key, String file, List<String> problems) {
        JsonNode node = root.get(key);
        if (node == null || node.isNull()) {
            return null;
        }
        if (!node.isTextual()) {
            problems.add(file + ": '" + key + "' must be a string, got " + node);
            return null;
        }
        return node.asText();
    }

    /** {@code random_seed}: an integer, or null when not given. */
    static Long seed(JsonNode root, String file, List<String> problems) {
        JsonNode node = root.get("random_seed");
        if (node == null) {
            return null;
        }
        if (!node.isIntegralNumber()) {
            problems.add(file + ": 'random_seed' must be an integer, got " + node);
            return null;
        }
        return node.asLong();
    }

    static Dtype dtype(JsonNode root, String key, String file, List<String> problems) {
        String name = text(root, key, file, problems);
        if (name == null) {
            return null;
        }
        return Dtype.fromConfigName(name).orElseGet(() -> {
            problems.add(file + ": '" + key + "' is '" + name + "'; use float32, float16 or bfloat16");
            return null;
        });
    }

    /**
     * {@code out_dtype}: a float dtype, or an FP8 one, which writes the tensors the inputs store
     * block-quantized in FP8 again that way (re-quantized, scales beside) and the others as they are.
     */
    private static Dtype outDtype(JsonNode root, String file, List<String> problems) {
        JsonNode node = root.get("out_dtype");
        if (node != null && node.isTextual()) {
            String name = node.asText().toLowerCase(java.util.Locale.ROOT);
            if (name.equals("float8_e4m3fn") || name.equals("fp8") || name.equals("f8_e4m3")) {
                return Dtype.F8_E4M3;
            }
            if (name.equals("float8_e5m2") || name.equals("f8_e5m2")) {
                return Dtype.F8_E5M2;
            }
        }
        Dtype d = dtype(root, "out_dtype", file, problems);
        if (d == null && node != null && node.isTextual() && !problems.isEmpty()) {
            String last = problems.remove(problems.size() - 1);
            problems.add(last + ", or float8_e4m3fn / float8_e5m2 to re-quantize FP8 inputs with block scales");
        }
        return d;
    }

    private static List<String> sorted(Set<String> keys) {
        return keys.stream().sorted().toList();
    }
}
