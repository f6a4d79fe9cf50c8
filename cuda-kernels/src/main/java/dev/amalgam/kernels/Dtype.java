package dev.amalgam.kernels;

import java.util.Arrays;
import java.util.Optional;

/**
 * Storage dtypes the kernels decode from and encode to. Computation is always float32;
 * these only describe bytes at rest.
 */
public enum Dtype {
    F32("F32", 4, "float32"),
    F16("F16", 2, "float16"),
    BF16("BF16", 2, "bfloat16"),
    /** FP8 (OCP E4M3, no infinities: DeepSeek-V3's block-scaled weights); always with block scales. */
    F8_E4M3("F8_E4M3", 1, "float8_e4m3fn"),
    /** FP8 (OCP E5M2); always with block scales. */
    F8_E5M2("F8_E5M2", 1, "float8_e5m2"),
    /** Bytes: only as MXFP4's packed blocks and E8M0 scales, never merged as numbers. */
    U8("U8", 1, "uint8");

    private final String safetensorsName;
    private final int byteSize;
    private final String torchName;

    Dtype(String safetensorsName, int byteSize, String torchName) {
        this.safetensorsName = safetensorsName;
        this.byteSize = byteSize;
        this.torchName = torchName;
    }

    /** The name in a safetensors header ("BF16"). */
    public String safetensorsName() {
        return safetensorsName;
    }

    public int byteSize() {
        return byteSize;
    }

    /** The name in config.json's torch_dtype and in merge configs ("bfloat16"). */
    public String torchName() {
        return torchName;
    }

    /** The plain float dtypes, the ones merges write: F32, F16, BF16 in that order. */
    public static Dtype[] floats() {
        return new Dtype[]{F32, F16, BF16};
    }

    /**
     * Whether merge output can be written in this dtype as plain values. FP8 output exists only as a
     * block-quantized weight with its scales (Fp8BlockQuantizer); the byte layout is input only.
     */
    public boolean writable() {
        return this == F32 || this == F16 || this == BF16;
    }

    /** Whether values of this dtype are numbers a merge reads (U8 is only a packed layout's storage). */
    public boolean numeric() {
        return this != U8;
    }

    public static Optional<Dtype> fromSafetensors(String name) {
        return Arrays.stream(values()).filter(d -> d.safetensorsName.equals(name)).findFirst();
    }

    /** Accepts the names merge configs use: float32/fp32/f32, float16/fp16/half, bfloat16/bf16. */
    public static Optional<Dtype> fromConfigName(String name) {
        return switch (name.toLowerCase()) {
            case "float32", "fp32", "f32", "float" -> Optional.of(F32);
            case "float16", "fp16", "f16", "half" -> Optional.of(F16);
            case "bfloat16", "bf16" -> Optional.of(BF16);
            default -> Optional.empty();
        };
    }
}
