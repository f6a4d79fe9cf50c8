package dev.amalgam.format;

import com.fasterxml.jackson.databind.JsonNode;
import dev.amalgam.kernels.Dtype;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Turns a checkpoint's stored tensors into the tensors a model sees, where some are stored
 * block-quantized: an FP8 weight with its {@code <name>_scale_inv} (or {@code <name>_scale})
 * companion, and an MXFP4 pair {@code <name>_blocks} / {@code <name>_scales}. Each pair becomes
 * one tensor that carries its scales ({@link Quantization}); the companions are consumed. Every
 * inconsistency is reported at once, naming the file, the tensor and the fix.
 */
public final class QuantizedLayouts {
    static final String BLOCKS = "_blocks";
    static final String SCALES = "_scales";

    private QuantizedLayouts() {
    }

    /** The tensors as a model sees them, or problems; {@code config} is config.json (null: none). */
    public static List<StoredTensor> pair(String directory, List<StoredTensor> stored, JsonNode config,
                                          List<String> problems) {
        Map<String, StoredTensor> byName = new LinkedHashMap<>();
        stored.forEach(t -> byName.put(t.name(), t));
        if (stored.stream().noneMatch(t -> t.dtype() == Dtype.F8_E4M3 || t.dtype() == Dtype.F8_E5M2
                || t.dtype() == Dtype.U8)) {
            return stored;
        }
        int[] block = blockSize(config);
        // Companions first, so a scale tensor listed before its weight is not taken for a tensor of its own.
        java.util.Set<String> consumed = new java.util.HashSet<>();
        for (StoredTensor t : stored) {
            if (fp8(t) && scaleOf(t, byName) != null) {
                consumed.add(scaleOf(t, byName).name());
            } else if (t.dtype() == Dtype.U8 && t.name().endsWith(BLOCKS)) {
                consumed.add(baseName(t) + SCALES);
            }
        }
        List<StoredTensor> out = new ArrayList<>();
        for (StoredTensor t : stored) {
            if (consumed.contains(t.name())) {
                continue;
            }
            if (fp8(t)) {
                StoredTensor scale = scaleOf(t, byName);
                if (scale == null) {
                    problems.add(t.file() + ": tensor '" + t.name() + "' is " + t.dtype().safetensorsName()
                            + " but its scales ('" + t.name() + "_scale_inv' or '" + t.name() + "_scale') are "
                            + "missing; FP8 weights are read only with their scales: add them to the checkpoint");
                    continue;
                }
                Quantization q = blockScaled(directory, t, scale, block, problems);
                if (q != null) {
                    out.add(t.withQuantization(t.name(), t.shape(), q));
                }
            } else if (t.dtype() == Dtype.U8 && t.name().endsWith(BLOCKS)) {
                StoredTensor scales = byName.get(baseName(t) + SCALES);
                if (scales == null) {
                    problems.add(t.file() + ": tensor '" + t.name() + "' looks like MXFP4 blocks, but '" + baseName(t)
                            + SCALES + "' (its E8M0 scales) is missing: add it to the checkpoint");
                    continue;
                }
                StoredTensor q = mxfp4(t, baseName(t), scales, problems);
                if (q != null) {
                    out.add(q);
                }
            } else if (t.dtype() == Dtype.U8) {
                problems.add(t.file() + ": tensor '" + t.name() + "' is U8, which Amalgam reads only as MXFP4 "
                        + "(<name>" + BLOCKS + " with <name>" + SCALES + ")");
            } else {
                out.add(t);
            }
        }
        return out;
    }

    private static boolean fp8(StoredTensor t) {
        return t.dtype() == Dtype.F8_E4M3 || t.dtype() == Dtype.F8_E5M2;
    }

    /** An FP8 weight's scales: {@code <name>_scale_inv} (DeepSeek), else {@code <name>_scale}; null when neither. */
    private static StoredTensor scaleOf(StoredTensor weight, Map<String, StoredTensor> byName) {
        StoredTensor inverse = byName.get(weight.name() + "_scale_inv");
        return inverse != null ? inverse : byName.get(weight.name() + "_scale");
    }

    /** {@code <name>} of an MXFP4 {@code <name>_blocks} tensor. */
    private static String baseName(StoredTensor blocks) {
        return blocks.name().substring(0, blocks.name().length() - BLOCKS.length());
    }

    /** {@code quantization_config.weight_block_size} of config.json, or null. */
    private static int[] blockSize(JsonNode config) {
        JsonNode size = config == null ? null : config.path("quantization_config").get("weight_block_size");
        if (size == null || !size.isArray() || size.size() != 2 || !size.get(0).canConvertToInt()
                || !size.get(1).canConvertToInt() || size.get(0).asInt() < 1 || size.get(1).asInt() < 1) {
            return null;
        }
        return new int[]{size.get(0).asInt(), size.get(1).asInt()};
    }

    private static Quantization blockScaled(String directory, StoredTensor t, StoredTensor scale, int[] block,
                                            List<String> problems) {
        String where = t.file() + ": tensor '" + t.name() + "'";
        if (!(scale.dtype() == Dtype.F32 || scale.dtype() == Dtype.BF16 || scale.dtype() == Dtype.F16)) {
            problems.add(where + ": its scales '" + scale.name() + "' are " + scale.dtype().safetensorsName()
                    + "; scales must be F32, BF16 or F16");
            return null;
        }
        long[] shape = t.shape();
        long cols = shape.length == 0 ? 1 : shape[shape.length - 1];
        long rows = shape.length < 2 ? 1 : shape[shape.length - 2];
        long matrices = shape.length < 3 ? 1 : t.elements() / Math.max(1, rows * cols);
        if (scale.elements() == 1) {
            // One scale for the whole tensor: a single block spanning every row of every matrix.
            long allRows = Math.max(1, matrices * rows);
            if (allRows > Integer.MAX_VALUE || cols > Integer.MAX_VALUE) {
                problems.add(where + ": a tensor this large needs block scales, not one per tensor");
                return null;
            }
            return new Quantization.BlockScaled(scale, (int) allRows, (int) Math.max(1, cols));
        }
        if (block == null) {
            problems.add(where + ": has block scales '" + scale.name() + "' " + Arrays.toString(scale.shape())
                    + ", but " + directory + "/config.json has no quantization_config.weight_block_size; add it "
                    + "(DeepSeek-V3 uses [128, 128])");
            return null;
        }
        long[] expected = shape.length < 3
                ? new long[]{ceil(rows, block[0]), ceil(cols, block[1])}
                : new long[]{matrices, ceil(rows, block[0]), ceil(cols, block[1])};
        if (!Arrays.equals(scale.shape(), expected)) {
            problems.add(where + " " + Arrays.toString(shape) + ": its scales '" + scale.name() + "' have shape "
                    + Arrays.toString(scale.shape()) + ", but blocks of " + block[0] + " x " + block[1]
                    + " (config.json's weight_block_size) need " + Arrays.toString(expected)
                    + "; fix weight_block_size or the scales");
            return null;
        }
        return new Quantization.BlockScaled(scale, block[0], block[1]);
    }

    private static StoredTensor mxfp4(StoredTensor blocks, String name, StoredTensor scales, List<String> problems) {
        long[] b = blocks.shape();
        long[] s = scales.shape();
        String where = blocks.file() + ": MXFP4 tensor '" + name + "'";
        if (b.length < 2 || b[b.length - 1] != 16) {
            problems.add(where + ": blocks " + Arrays.toString(b) + " must end in 16 bytes (32 values a block)");
            return null;
        }
        if (scales.dtype() != Dtype.U8 || !Arrays.equals(Arrays.copyOf(b, b.length - 1), s)) {
            problems.add(where + ": scales '" + scales.name() + "' " + scales.dtype().safetensorsName() + " "
                    + Arrays.toString(s) + " must be U8 of shape " + Arrays.toString(Arrays.copyOf(b, b.length - 1)));
            return null;
        }
        long[] shape = Arrays.copyOf(s, s.length);
        shape[shape.length - 1] = s[s.length - 1] * 32;
        return blocks.withQuantization(name, shape, new Quantization.Mxfp4(scales));
    }

    private static long ceil(long a, long b) {
        return (a + b - 1) / b;
    }
}
