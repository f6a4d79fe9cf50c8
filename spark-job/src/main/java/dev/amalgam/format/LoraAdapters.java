package dev.amalgam.format;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * A PEFT LoRA adapter directory ({@code adapter_config.json} and {@code adapter_model.safetensors})
 * joined to its base checkpoint: every weight it targets reads as {@code W + s * B A}; tensors it
 * saves whole ({@code modules_to_save}) replace the base's. Everything is validated against the
 * base's headers before any data moves, each problem naming the adapter file and tensor.
 */
final class LoraAdapters {
    static final String CONFIG = "adapter_config.json";
    static final String WEIGHTS = "adapter_model.safetensors";
    /** PEFT saves the wrapped model's names under this prefix. */
    private static final String PREFIX = "base_model.model.";
    private static final Pattern FACTOR = Pattern.compile("^(.*)\\.lora_([AB])(?:\\.default)?\\.weight$");

    private LoraAdapters() {
    }

    /** The adapter's settings from adapter_config.json. */
    record Settings(int rank, double alpha, boolean rsLora, boolean fanInFanOut, JsonNode targetModules) {
        float scale() {
            return (float) (rsLora ? alpha / Math.sqrt(rank) : alpha / rank);
        }
    }

    static Settings settings(FileSystem fs, Path dir, List<String> problems) throws IOException {
        Path file = new Path(dir, CONFIG);
        if (!fs.exists(file)) {
            problems.add(dir + ": holds no " + CONFIG + "; a LoRA adapter directory (model: BASE+ADAPTER) holds "
                    + CONFIG + " and " + WEIGHTS + ", as PEFT saves them");
            return null;
        }
        JsonNode c;
        try (InputStream in = fs.open(file)) {
            c = new ObjectMapper().readTree(in);
        } catch (IOException e) {
            problems.add(file + ": is not valid JSON: " + e.getMessage());
            return null;
        }
        int before = problems.size();
        if (c.has("peft_type") && !"LORA".equals(c.path("peft_type").asText())) {
            problems.add(file + ": peft_type is " + c.path("peft_type").asText() + "; only LORA adapters can be applied");
        }
        if (!c.path("r").isIntegralNumber() || c.path("r").asInt() < 1) {
            problems.add(file + ": 'r' must be a positive whole number (the adapter's rank), got " + c.path("r"));
        }
        if (!c.path("lora_alpha").isNumber()) {
            problems.add(file + ": 'lora_alpha' must be a number, got " + c.path("lora_alpha"));
        }
        if (c.path("use_dora").asBoolean(false)) {
            problems.add(file + ": use_dora is true; DoRA adapters (magnitude vectors) are not supported, only plain LoRA");
        }
        for (String pattern : new String[]{"rank_pattern", "alpha_pattern"}) {
            if (c.path(pattern).isObject() && !c.path(pattern).isEmpty()) {
                problems.add(file + ": '" + pattern + "' gives some modules their own rank or alpha, which is not "
                        + "supported; merge the adapter with PEFT first (merge_and_unload) and use the result as a model");
            }
        }
        if (problems.size() > before) {
            return null;
        }
        return new Settings(c.path("r").asInt(), c.path("lora_alpha").asDouble(), c.path("use_rslora").asBoolean(false),
                c.path("fan_in_fan_out").asBoolean(false), c.get("target_modules"));
    }

    /** Whether PEFT's {@code target_modules} (a list of name suffixes, or a regex on the whole name) takes {@code module}. */
    static boolean targets(JsonNode targetModules, String module) {
        if (targetModules == null || targetModules.isNull()) {
            return true;
        }
        if (targetModules.isTextual()) {
            String t = targetModules.asText();
            return t.equals("all-linear") || Pattern.compile(t).matcher(module).matches();
        }
        for (JsonNode n : targetModules) {
            String t = n.asText();
            if (module.equals(t) || module.endsWith("." + t)) {
                return true;
            }
        }
        return false;
    }

    /**
     * The base's tensors with the adapter applied: targeted weights carry their {@link LowRank},
     * saved modules replace the base's tensors. {@code adapterTensors} are the adapter file's.
     */
    static List<StoredTensor> apply(String adapterDir, Settings settings, List<StoredTensor> base,
                                    List<StoredTensor> adapterTensors, List<String> problems) {
        String file = adapterDir + "/" + WEIGHTS;
        Map<String, StoredTensor[]> factors = new LinkedHashMap<>();
        Map<String, StoredTensor> replaced = new LinkedHashMap<>();
        for (StoredTensor t : adapterTensors) {
            String name = t.name().startsWith(PREFIX) ? t.name().substring(PREFIX.length()) : t.name();
            var m = FACTOR.matcher(name);
            if (name.contains("lora_embedding_") || name.contains("lora_magnitude_vector")) {
                problems.add(file + ": tensor '" + t.name() + "' is an embedding LoRA or a DoRA magnitude, which is "
                        + "not supported; merge the adapter with PEFT first and use the result as a model");
            } else if (m.matches()) {
                StoredTensor[] ab = factors.computeIfAbsent(m.group(1), k -> new StoredTensor[2]);
                ab[m.group(2).equals("A") ? 0 : 1] = t;
            } else {
                replaced.put(name.replace(".modules_to_save.default.", ".").replace(".modules_to_save.", "."), t);
            }
            if (!t.dtype().writable()) {
                problems.add(file + ": tensor '" + t.name() + "' is " + t.dtype().safetensorsName()
                        + "; adapter factors must be F32, F16 or BF16");
            }
        }
        Map<String, StoredTensor> byName = new LinkedHashMap<>();
        base.forEach(t -> byName.put(t.name(), t));
        Map<String, LowRank> adapted = new LinkedHashMap<>();
        factors.forEach((module, ab) -> {
            String weightName = module + ".weight";
            StoredTensor w = byName.get(weightName);
            if (ab[0] == null || ab[1] == null) {
                problems.add(file + ": module '" + module + "' has lora_" + (ab[0] == null ? "B" : "A")
                        + " but no lora_" + (ab[0] == null ? "A" : "B") + "; the adapter file is incomplete");
                return;
            }
            if (w == null) {
                problems.add(file + ": module '" + module + "' has LoRA factors but the base has no tensor '"
                        + weightName + "'; is this adapter for another model?");
                return;
            }
            if (!targets(settings.targetModules(), module)) {
                problems.add(file + ": module '" + module + "' is not among " + CONFIG + "'s target_modules "
                        + settings.targetModules() + "; the adapter's files disagree");
            }
            long[] a = ab[0].shape();
            long[] b = ab[1].shape();
            long[] ws = w.shape();
            long out = settings.fanInFanOut() ? (ws.length == 2 ? ws[1] : -1) : ws[0];
            long in = settings.fanInFanOut() ? ws[0] : (ws.length == 2 ? ws[1] : -1);
            if (ws.length != 2 || a.length != 2 || b.length != 2 || a[0] != settings.rank() || b[1] != settings.rank()
                    || b[0] != out || a[1] != in) {
                problems.add(file + ": module '" + module + "': lora_A " + Arrays.toString(a) + " and lora_B "
                        + Arrays.toString(b) + " do not fit weight " + Arrays.toString(ws) + " at rank " + settings.rank()
                        + (settings.fanInFanOut() ? " (fan_in_fan_out: the weight is [in, out])" : "")
                        + "; expected lora_A [" + settings.rank() + ", " + in + "] and lora_B [" + out + ", "
                        + settings.rank() + "]");
                return;
            }
            if (!w.dtype().writable() || w.quantization() != null) {
                problems.add(w.file() + ": tensor '" + weightName + "' is block-quantized; a LoRA adapter can only be "
                        + "applied to F32, F16 or BF16 weights");
                return;
            }
            adapted.put(weightName, new LowRank(ab[0], ab[1], settings.scale(), settings.fanInFanOut(), adapterDir));
        });
        replaced.forEach((name, t) -> {
            StoredTensor w = byName.get(name);
            if (w == null || !Arrays.equals(w.shape(), t.shape())) {
                problems.add(file + ": tensor '" + t.name() + "' is neither a LoRA factor nor a saved module of the "
                        + "base (" + (w == null ? "no tensor '" + name + "' there" : "shape " + Arrays.toString(t.shape())
                        + " against " + Arrays.toString(w.shape())) + ")");
            }
        });
        List<StoredTensor> out = new ArrayList<>();
        for (StoredTensor t : base) {
            StoredTensor saved = replaced.get(t.name());
            if (saved != null) {
                out.add(new StoredTensor(t.name(), saved.file(), saved.offset(), saved.dtype(), saved.shape()));
            } else if (adapted.containsKey(t.name())) {
                out.add(t.withLowRank(adapted.get(t.name())));
            } else {
                out.add(t);
            }
        }
        return out;
    }
}
