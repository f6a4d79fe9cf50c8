package dev.amalgam.sample;

import dev.amalgam.format.CheckpointWriter.Spec;
import dev.amalgam.kernels.Dtype;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.BiConsumer;

/**
 * The tensor layouts of real large checkpoints (names, shapes, dtypes as published), for the
 * generated-checkpoint file system: planning, memory and throughput measured on the real tensor
 * counts and sizes without the disk. {@code layers} keeps the first layers only (all when -1).
 */
public enum ModelLayout {
    /** Qwen2-72B: 80 layers, hidden 8192, MLP 29568, vocabulary 152064, attention biases. */
    QWEN2_72B("qwen2-72b", 80),
    /** Llama-3-70B: 80 layers, hidden 8192, MLP 28672, vocabulary 128256. */
    LLAMA3_70B("llama3-70b", 80),
    /** Mixtral-8x22B: 56 layers, hidden 6144, 8 experts of 16384, vocabulary 32768. */
    MIXTRAL_8X22B("mixtral-8x22b", 56),
    /** Qwen3-235B-A22B with fused experts: 94 layers, hidden 4096, 128 experts of 1536 in one tensor each. */
    QWEN3_235B_A22B("qwen3-235b-a22b", 94),
    /** DeepSeek-V3 (671B) in FP8 with 128 x 128 block scales: 61 layers, 256 routed experts of 2048. */
    DEEPSEEK_V3("deepseek-v3", 61);

    private final String id;
    private final int layers;

    ModelLayout(String id, int layers) {
        this.id = id;
        this.layers = layers;
    }

    public String id() {
        return id;
    }

    public int layers() {
        return layers;
    }

    public static ModelLayout of(String id) {
        for (ModelLayout l : values()) {
            if (l.id.equals(id.toLowerCase(Locale.ROOT))) {
                return l;
            }
        }
        throw new IllegalArgumentException("unknown layout '" + id + "' (known: qwen2-72b, llama3-70b, mixtral-8x22b, "
                + "qwen3-235b-a22b, deepseek-v3)");
    }

    /** The tensors of the first {@code keep} layers (all when -1), embeddings and head included. */
    public List<Spec> tensors(int keep) {
        int n = keep < 0 ? layers : Math.min(keep, layers);
        List<Spec> specs = new ArrayList<>();
        BiConsumer<String, long[]> bf16 = (name, shape) -> specs.add(new Spec(name, Dtype.BF16, shape));
        switch (this) {
            case QWEN2_72B, LLAMA3_70B -> {
                boolean qwen = this == QWEN2_72B;
                long hidden = 8192;
                long mlp = qwen ? 29568 : 28672;
                long vocab = qwen ? 152064 : 128256;
                long kv = 1024;
                bf16.accept("model.embed_tokens.weight", new long[]{vocab, hidden});
                for (int l = 0; l < n; l++) {
                    String p = "model.layers." + l + ".";
                    bf16.accept(p + "input_layernorm.weight", new long[]{hidden});
                    attention(bf16, p, hidden, hidden, kv, qwen);
                    bf16.accept(p + "post_attention_layernorm.weight", new long[]{hidden});
                    mlp(bf16, p + "mlp.", hidden, mlp, Dtype.BF16, specs);
                }
                bf16.accept("model.norm.weight", new long[]{hidden});
                bf16.accept("lm_head.weight", new long[]{vocab, hidden});
            }
            case MIXTRAL_8X22B -> {
                long hidden = 6144;
                bf16.accept("model.embed_tokens.weight", new long[]{32768, hidden});
                for (int l = 0; l < n; l++) {
                    String p = "model.layers." + l + ".";
                    bf16.accept(p + "input_layernorm.weight", new long[]{hidden});
                    attention(bf16, p, hidden, hidden, 1024, false);
                    bf16.accept(p + "post_attention_layernorm.weight", new long[]{hidden});
                    bf16.accept(p + "block_sparse_moe.gate.weight", new long[]{8, hidden});
                    for (int e = 0; e < 8; e++) {
                        String x = p + "block_sparse_moe.experts." + e + ".";
                        bf16.accept(x + "w1.weight", new long[]{16384, hidden});
                        bf16.accept(x + "w2.weight", new long[]{hidden, 16384});
                        bf16.accept(x + "w3.weight", new long[]{16384, hidden});
                    }
                }
                bf16.accept("model.norm.weight", new long[]{hidden});
                bf16.accept("lm_head.weight", new long[]{32768, hidden});
            }
            case QWEN3_235B_A22B -> {
                long hidden = 4096;
                bf16.accept("model.embed_tokens.weight", new long[]{151936, hidden});
                for (int l = 0; l < n; l++) {
                    String p = "model.layers." + l + ".";
                    bf16.accept(p + "input_layernorm.weight", new long[]{hidden});
                    attention(bf16, p, hidden, 8192, 512, false);
                    bf16.accept(p + "self_attn.q_norm.weight", new long[]{128});
                    bf16.accept(p + "self_attn.k_norm.weight", new long[]{128});
                    bf16.accept(p + "post_attention_layernorm.weight", new long[]{hidden});
                    bf16.accept(p + "mlp.gate.weight", new long[]{128, hidden});
                    // Fused experts: one tensor for all 128 experts' gate and up projections, one for down.
                    bf16.accept(p + "mlp.experts.gate_up_proj", new long[]{128, hidden, 2 * 1536});
                    bf16.accept(p + "mlp.experts.down_proj", new long[]{128, 1536, hidden});
                }
                bf16.accept("model.norm.weight", new long[]{hidden});
                bf16.accept("lm_head.weight", new long[]{151936, hidden});
            }
            case DEEPSEEK_V3 -> {
                long hidden = 7168;
                bf16.accept("model.embed_tokens.weight", new long[]{129280, hidden});
                for (int l = 0; l < n; l++) {
                    String p = "model.layers." + l + ".";
                    bf16.accept(p + "input_layernorm.weight", new long[]{hidden});
                    fp8(specs, p + "self_attn.q_a_proj.weight", 1536, hidden);
                    bf16.accept(p + "self_attn.q_a_layernorm.weight", new long[]{1536});
                    fp8(specs, p + "self_attn.q_b_proj.weight", 128L * 192, 1536);
                    fp8(specs, p + "self_attn.kv_a_proj_with_mqa.weight", 576, hidden);
                    bf16.accept(p + "self_attn.kv_a_layernorm.weight", new long[]{512});
                    fp8(specs, p + "self_attn.kv_b_proj.weight", 128L * 256, 512);
                    fp8(specs, p + "self_attn.o_proj.weight", hidden, 128L * 128);
                    bf16.accept(p + "post_attention_layernorm.weight", new long[]{hidden});
                    if (l < 3) {
                        mlp(bf16, p + "mlp.", hidden, 18432, Dtype.F8_E4M3, specs);
                        continue;
                    }
                    bf16.accept(p + "mlp.gate.weight", new long[]{256, hidden});
                    specs.add(new Spec(p + "mlp.gate.e_score_correction_bias", Dtype.F32, new long[]{256}));
                    for (int e = 0; e < 256; e++) {
                        mlp(bf16, p + "mlp.experts." + e + ".", hidden, 2048, Dtype.F8_E4M3, specs);
                    }
                    mlp(bf16, p + "mlp.shared_experts.", hidden, 2048, Dtype.F8_E4M3, specs);
                }
                bf16.accept("model.norm.weight", new long[]{hidden});
                bf16.accept("lm_head.weight", new long[]{129280, hidden});
            }
        }
        return specs;
    }

    private static void attention(BiConsumer<String, long[]> bf16, String p, long hidden, long q, long kv,
                                  boolean biases) {
        bf16.accept(p + "self_attn.q_proj.weight", new long[]{q, hidden});
        bf16.accept(p + "self_attn.k_proj.weight", new long[]{kv, hidden});
        bf16.accept(p + "self_attn.v_proj.weight", new long[]{kv, hidden});
        if (biases) {
            bf16.accept(p + "self_attn.q_proj.bias", new long[]{q});
            bf16.accept(p + "self_attn.k_proj.bias", new long[]{kv});
            bf16.accept(p + "self_attn.v_proj.bias", new long[]{kv});
        }
        bf16.accept(p + "self_attn.o_proj.weight", new long[]{hidden, q});
    }

    private static void mlp(BiConsumer<String, long[]> bf16, String p, long hidden, long inner, Dtype dtype,
                            List<Spec> specs) {
        if (dtype == Dtype.F8_E4M3) {
            fp8(specs, p + "gate_proj.weight", inner, hidden);
            fp8(specs, p + "up_proj.weight", inner, hidden);
            fp8(specs, p + "down_proj.weight", hidden, inner);
            return;
        }
        bf16.accept(p + "gate_proj.weight", new long[]{inner, hidden});
        bf16.accept(p + "up_proj.weight", new long[]{inner, hidden});
        bf16.accept(p + "down_proj.weight", new long[]{hidden, inner});
    }

    /** An FP8 weight and its 128 x 128 block scales, as DeepSeek-V3 publishes them. */
    private static void fp8(List<Spec> specs, String name, long rows, long cols) {
        specs.add(new Spec(name, Dtype.F8_E4M3, new long[]{rows, cols}));
        specs.add(new Spec(name + "_scale_inv", Dtype.F32, new long[]{(rows + 127) / 128, (cols + 127) / 128}));
    }

    /** The layout's config.json, with {@code num_hidden_layers} as kept. */
    public Map<String, Object> config(int keep) {
        int n = keep < 0 ? layers : Math.min(keep, layers);
        Map<String, Object> c = new java.util.LinkedHashMap<>();
        c.put("model_type", switch (this) {
            case QWEN2_72B -> "qwen2";
            case LLAMA3_70B -> "llama";
            case MIXTRAL_8X22B -> "mixtral";
            case QWEN3_235B_A22B -> "qwen3_moe";
            case DEEPSEEK_V3 -> "deepseek_v3";
        });
        c.put("num_hidden_layers", n);
        c.put("torch_dtype", "bfloat16");
        if (this == DEEPSEEK_V3) {
            c.put("quantization_config", Map.of("activation_scheme", "dynamic", "fmt", "e4m3", "quant_method", "fp8",
                    "weight_block_size", List.of(128, 128)));
        }
        return c;
    }
}
