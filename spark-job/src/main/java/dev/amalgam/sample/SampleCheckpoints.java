package dev.amalgam.sample;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.amalgam.format.CheckpointReader;
import dev.amalgam.format.CheckpointWriter;
import dev.amalgam.format.LocalFiles;
import dev.amalgam.format.OutputTokenizer;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.kernels.ElementCodec;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Generates small Llama-shaped checkpoints: a base and fine-tunes whose deltas are quantized
 * to a few levels with random signs, so merges meet ties in |delta| and sign conflicts.
 * Deterministic for a seed; used by the demo, the benchmark and the tests.
 */
public final class SampleCheckpoints {

    /** The architecture of the generated models. */
    public record Shape(int layers, int hidden, int intermediate, int vocab) {
        public static Shape tiny() {
            return new Shape(4, 64, 128, 256);
        }

        public List<CheckpointWriter.Spec> tensors(Dtype dtype) {
            List<CheckpointWriter.Spec> specs = new ArrayList<>();
            specs.add(new CheckpointWriter.Spec("model.embed_tokens.weight", dtype, new long[]{vocab, hidden}));
            for (int l = 0; l < layers; l++) {
                String p = "model.layers." + l + ".";
                specs.add(new CheckpointWriter.Spec(p + "input_layernorm.weight", dtype, new long[]{hidden}));
                specs.add(new CheckpointWriter.Spec(p + "self_attn.q_proj.weight", dtype, new long[]{hidden, hidden}));
                specs.add(new CheckpointWriter.Spec(p + "self_attn.k_proj.weight", dtype, new long[]{hidden, hidden}));
                specs.add(new CheckpointWriter.Spec(p + "self_attn.v_proj.weight", dtype, new long[]{hidden, hidden}));
                specs.add(new CheckpointWriter.Spec(p + "self_attn.o_proj.weight", dtype, new long[]{hidden, hidden}));
                specs.add(new CheckpointWriter.Spec(p + "post_attention_layernorm.weight", dtype, new long[]{hidden}));
                specs.add(new CheckpointWriter.Spec(p + "mlp.gate_proj.weight", dtype, new long[]{intermediate, hidden}));
                specs.add(new CheckpointWriter.Spec(p + "mlp.up_proj.weight", dtype, new long[]{intermediate, hidden}));
                specs.add(new CheckpointWriter.Spec(p + "mlp.down_proj.weight", dtype, new long[]{hidden, intermediate}));
            }
            specs.add(new CheckpointWriter.Spec("model.norm.weight", dtype, new long[]{hidden}));
            specs.add(new CheckpointWriter.Spec("lm_head.weight", dtype, new long[]{vocab, hidden}));
            return specs;
        }

        /** A shape whose parameter count is close to {@code bytes / dtype size}, for benchmarks. */
        public static Shape ofBytes(long bytes, Dtype dtype) {
            long elements = bytes / dtype.byteSize();
            int hidden = 1024;
            int intermediate = 2816;
            int vocab = 8192;
            long perLayer = 4L * hidden * hidden + 3L * hidden * intermediate + 2L * hidden;
            long fixed = 2L * vocab * hidden + hidden;
            int layers = (int) Math.max(1, (elements - fixed) / perLayer);
            return new Shape(layers, hidden, intermediate, vocab);
        }
    }

    private SampleCheckpoints() {
    }

    /**
     * Writes {@code base} and {@code fineTunes} checkpoints under {@code root}
     * ({@code root/base}, {@code root/model-1}, ...); returns the fine-tune directories.
     */
    public static List<String> write(Configuration hadoop, String root, Shape shape, Dtype dtype, int fineTunes,
                                     long seed, long shardBytes) throws IOException {
        List<CheckpointWriter.Spec> specs = shape.tensors(dtype);
        String base = root + "/base";
        CheckpointWriter.write(hadoop, base, specs, shardBytes, spec -> values(spec, seed, -1));
        writeSideFiles(hadoop, base, shape, dtype);
        List<String> models = new ArrayList<>();
        for (int m = 1; m <= fineTunes; m++) {
            String dir = root + "/model-" + m;
            int model = m;
            CheckpointWriter.write(hadoop, dir, specs, shardBytes, spec -> values(spec, seed, model));
            writeSideFiles(hadoop, dir, shape, dtype);
            models.add(dir);
        }
        return models;
    }

    /**
     * Writes a PEFT LoRA adapter for checkpoints of {@code shape} into {@code dir}: factors of
     * {@code rank} for the attention and MLP modules named in {@code targets} ("q_proj", "down_proj"...)
     * of every layer, with random values (B non-zero, as after training), and its adapter_config.json.
     */
    public static void writeAdapter(Configuration hadoop, String dir, Shape shape, Dtype dtype, int rank, double alpha,
                                    boolean rsLora, List<String> targets, long seed) throws IOException {
        List<CheckpointWriter.Spec> specs = new ArrayList<>();
        for (CheckpointWriter.Spec w : shape.tensors(dtype)) {
            String module = w.name().substring(0, w.name().length() - ".weight".length());
            String last = module.substring(module.lastIndexOf('.') + 1);
            if (w.shape().length != 2 || !targets.contains(last) || !module.contains(".layers.")) {
                continue;
            }
            specs.add(new CheckpointWriter.Spec("base_model.model." + module + ".lora_A.weight", dtype,
                    new long[]{rank, w.shape()[1]}));
            specs.add(new CheckpointWriter.Spec("base_model.model." + module + ".lora_B.weight", dtype,
                    new long[]{w.shape()[0], rank}));
        }
        CheckpointWriter.write(hadoop, dir, specs, Long.MAX_VALUE, spec -> {
            ByteBuffer out = ByteBuffer.allocate((int) spec.bytes()).order(ByteOrder.LITTLE_ENDIAN);
            SplittableRandom random = new SplittableRandom(seed * 17 + spec.name().hashCode());
            float spread = spec.name().contains("lora_B") ? 0.01f : 1.0f;
            for (long i = 0; i < spec.bytes() / spec.dtype().byteSize(); i++) {
                float value = (float) random.nextGaussian() * spread;
                switch (spec.dtype()) {
                    case F32 -> out.putFloat(value);
                    case BF16 -> out.putShort(ElementCodec.floatToBfloat16(value));
                    default -> out.putShort(ElementCodec.floatToHalf(value));
                }
            }
            return out.flip();
        });
        Path single = new Path(dir, CheckpointReader.SINGLE_FILE);
        single.getFileSystem(hadoop).rename(single, new Path(dir, "adapter_model.safetensors"));
        ObjectMapper json = new ObjectMapper();
        ObjectNode config = json.createObjectNode();
        config.put("peft_type", "LORA");
        config.put("r", rank);
        config.put("lora_alpha", alpha);
        config.put("use_rslora", rsLora);
        config.put("fan_in_fan_out", false);
        targets.forEach(config.putArray("target_modules")::add);
        write(hadoop, dir + "/adapter_config.json", json.writerWithDefaultPrettyPrinter().writeValueAsString(config));
    }

    /**
     * Writes a companion checkpoint for fine-tune {@code model} (1, 2, ...) of {@code shape} into
     * {@code dir}: tensors of the model's names and shapes holding {@code fisher} (a diagonal
     * Fisher: squared gradients) or {@code second_moment} (Adam's {@code exp_avg_sq}). Values are
     * non-negative, from a few levels, with exact zeros (so a Fisher floor matters) and ties.
     */
    public static void writeCompanion(Configuration hadoop, String dir, Shape shape, Dtype dtype, String kind, int model,
                                      long seed) throws IOException {
        if (!kind.equals("fisher") && !kind.equals("second_moment")) {
            throw new IllegalArgumentException("no companion kind '" + kind + "' (fisher, second_moment)");
        }
        long salt = kind.equals("fisher") ? 1009 : 2003;
        CheckpointWriter.write(hadoop, dir, shape.tensors(dtype), Long.MAX_VALUE, spec -> {
            long n = spec.bytes() / spec.dtype().byteSize();
            ByteBuffer out = ByteBuffer.allocate((int) spec.bytes()).order(ByteOrder.LITTLE_ENDIAN);
            SplittableRandom random = new SplittableRandom(seed * salt + spec.name().hashCode() * 13L + model);
            for (long i = 0; i < n; i++) {
                int level = random.nextInt(6);
                // Squared-gradient scale: 0, then powers of two from 2^-20 up.
                float value = level == 0 ? 0.0f : Math.scalb(1.0f + random.nextInt(4) * 0.25f, -20 + 3 * level);
                switch (spec.dtype()) {
                    case F32 -> out.putFloat(value);
                    case BF16 -> out.putShort(ElementCodec.floatToBfloat16(value));
                    default -> out.putShort(ElementCodec.floatToHalf(value));
                }
            }
            return out.flip();
        });
    }

    /** Base weights, or base plus a quantized delta for fine-tune {@code model} (>= 1). */
    static ByteBuffer values(CheckpointWriter.Spec spec, long seed, int model) {
        long n = spec.bytes() / spec.dtype().byteSize();
        ByteBuffer out = ByteBuffer.allocate((int) spec.bytes()).order(ByteOrder.LITTLE_ENDIAN);
        long nameHash = spec.name().hashCode();
        SplittableRandom baseRandom = new SplittableRandom(seed * 31 + nameHash);
        SplittableRandom deltaRandom = new SplittableRandom(seed * 131 + nameHash * 7 + model);
        for (long i = 0; i < n; i++) {
            float value = (float) (baseRandom.nextGaussian() * 0.02);
            if (model > 0) {
                // Few distinct magnitudes and random signs: ties and sign conflicts on purpose.
                int level = deltaRandom.nextInt(8);
                float delta = level * 0.00390625f;
                value += deltaRandom.nextBoolean() ? delta : -delta;
            }
            switch (spec.dtype()) {
                case F32 -> out.putFloat(value);
                case BF16 -> out.putShort(ElementCodec.floatToBfloat16(value));
                case F16 -> out.putShort(ElementCodec.floatToHalf(value));
            }
        }
        out.flip();
        return out;
    }

    private static void writeSideFiles(Configuration hadoop, String dir, Shape shape, Dtype dtype) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode config = json.createObjectNode();
        config.putArray("architectures").add("LlamaForCausalLM");
        config.put("model_type", "llama");
        config.put("hidden_size", shape.hidden());
        config.put("intermediate_size", shape.intermediate());
        config.put("num_hidden_layers", shape.layers());
        config.put("num_attention_heads", Math.max(1, shape.hidden() / 16));
        config.put("num_key_value_heads", Math.max(1, shape.hidden() / 16));
        config.put("vocab_size", shape.vocab());
        config.put("max_position_embeddings", 256);
        config.put("rms_norm_eps", 1e-5);
        config.put("tie_word_embeddings", false);
        config.put("torch_dtype", dtype.torchName());
        write(hadoop, dir + "/config.json", json.writerWithDefaultPrettyPrinter().writeValueAsString(config));
        writeTokenizer(hadoop, dir, shape.vocab());
        write(hadoop, dir + "/special_tokens_map.json", "{}\n");
    }

    /** Words every sample vocabulary starts with, so prompts in tests and examples read naturally. */
    static final List<String> WORDS = List.of("the", "a", "of", "and", "to", "is", "in", "solve", "equation",
            "integral", "prove", "number", "sum", "math", "algebra", "function", "code", "python", "java", "class",
            "write", "bug", "compile", "loop", "story", "poem", "essay", "chat", "hello", "friend", "tell", "me",
            "about", "history", "science", "translate", "french", "german", "word", "sentence");

    /**
     * A word-level tokenizer over {@code vocab} tokens: {@code <s>}, {@code </s>}, {@code <unk>},
     * the {@link #WORDS}, then {@code tok<i>}; with tokenizer_config.json naming the special tokens.
     */
    public static void writeTokenizer(Configuration hadoop, String dir, int vocab) throws IOException {
        java.util.LinkedHashSet<String> tokens = new java.util.LinkedHashSet<>(List.of("<s>", "</s>", "<unk>"));
        tokens.addAll(WORDS);
        for (int i = 0; tokens.size() < vocab; i++) {
            tokens.add("tok" + i);
        }
        writeTokenizer(hadoop, dir, tokens.stream().limit(vocab).toList());
    }

    /**
     * A word-level tokenizer whose token {@code i} is {@code tokens.get(i)}; {@code <s>}, {@code </s>}
     * and {@code <unk>}, where listed, are its special (added) tokens.
     */
    public static void writeTokenizer(Configuration hadoop, String dir, List<String> tokens) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = json.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        var added = root.putArray("added_tokens");
        for (String special : List.of("<s>", "</s>", "<unk>")) {
            int id = tokens.indexOf(special);
            if (id < 0) {
                continue;
            }
            added.add(OutputTokenizer.addedToken(id, special, true));
        }
        root.putNull("normalizer");
        root.putObject("pre_tokenizer").put("type", "Whitespace");
        root.putNull("post_processor");
        root.putNull("decoder");
        ObjectNode model = root.putObject("model");
        model.put("type", "WordLevel");
        ObjectNode words = model.putObject("vocab");
        for (int i = 0; i < tokens.size(); i++) {
            words.put(tokens.get(i), i);
        }
        model.put("unk_token", "<unk>");
        write(hadoop, dir + "/tokenizer.json", json.writeValueAsString(root));
        write(hadoop, dir + "/tokenizer_config.json", "{\"model_max_length\": 256, \"tokenizer_class\": "
                + "\"PreTrainedTokenizerFast\", \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", "
                + "\"unk_token\": \"<unk>\"}\n");
    }

    private static void write(Configuration hadoop, String file, String text) throws IOException {
        Path path = new Path(file);
        try (FSDataOutputStream out = LocalFiles.withoutChecksums(path.getFileSystem(hadoop)).create(path, true)) {
            out.write(text.getBytes(StandardCharsets.UTF_8));
        }
    }

    /** Removes a generated tree. */
    public static void delete(Configuration hadoop, String root) throws IOException {
        Path path = new Path(root);
        FileSystem fs = path.getFileSystem(hadoop);
        fs.delete(path, true);
    }
}
