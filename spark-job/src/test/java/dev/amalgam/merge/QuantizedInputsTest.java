package dev.amalgam.merge;

import dev.amalgam.AmalgamException;
import dev.amalgam.format.Checkpoint;
import dev.amalgam.format.CheckpointWriter;
import dev.amalgam.format.StoredTensor;
import dev.amalgam.job.MergeJob;
import dev.amalgam.job.MergeRequest;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.testing.ReferenceMerge;
import dev.amalgam.testing.TestSpark;
import dev.amalgam.testing.Tensors;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Block-quantized inputs (DeepSeek-V3's FP8 with 128 x 128 block scales, gpt-oss's MXFP4) are
 * dequantized per chunk and merged in float32, bit for bit as a straightforward whole-tensor
 * reference that decodes the formats from their bit layouts; the output is bf16 and its
 * config.json drops quantization_config.
 */
class QuantizedInputsTest {
    @TempDir
    Path temp;

    private static final String WEIGHT = "model.layers.0.mlp.down_proj.weight";
    private static final String NORM = "model.layers.0.input_layernorm.weight";
    private static final String EXPERTS = "model.layers.0.mlp.experts.down_proj";
    private static final int ROWS = 300;   // not a multiple of 128: the last block row is partial
    private static final int COLS = 200;   // nor this
    private static final int BLOCK = 128;

    /** One FP8 model: weight bytes, its block scales, and a bf16 norm. */
    private record Fp8Model(byte[] weight, float[] scales, float[] norm) {
    }

    @Test
    void fp8WithBlockScalesMergesLikeTheDequantizedReference() throws Exception {
        List<Fp8Model> inputs = new ArrayList<>();
        List<String> dirs = new ArrayList<>();
        for (int m = 0; m < 3; m++) {
            Fp8Model model = fp8Model(new Random(17 + m));
            inputs.add(model);
            dirs.add(writeFp8(temp.resolve("fp8-" + m), model, true));
        }
        Path config = temp.resolve("ties.yml");
        Files.writeString(config, "merge_method: ties\nbase_model: " + dirs.get(0) + "\nmodels:\n"
                + "  - model: " + dirs.get(1) + "\n    parameters: {weight: 1.0, density: 0.5}\n"
                + "  - model: " + dirs.get(2) + "\n    parameters: {weight: 0.6, density: 0.3}\n");
        String out = temp + "/out";
        new MergeJob(TestSpark.context()).run(MergeRequest.of(config.toString(), out).withChunkElements(1000)
                .withPartitions(3));

        Checkpoint merged = Tensors.open(out);
        assertThat(merged.tensors()).extracting(StoredTensor::name).containsExactlyInAnyOrder(WEIGHT, NORM);
        ReferenceMerge.Settings settings = new ReferenceMerge.Settings(true, false, 1.0f, 0);
        float[][] weights = new float[3][];
        for (int m = 0; m < 3; m++) {
            weights[m] = dequantizeFp8(inputs.get(m));
        }
        float[] expected = ReferenceMerge.taskVector("ties", WEIGHT, new long[]{ROWS, COLS}, weights[0],
                List.of(new ReferenceMerge.Model(weights[1], 1.0f, 0.5, 0, 0),
                        new ReferenceMerge.Model(weights[2], 0.6f, 0.3, 0, 0)), settings);
        StoredTensor w = merged.byName().get(WEIGHT);
        assertEquals(Dtype.BF16, w.dtype());
        assertArrayEquals(Tensors.encode(expected, Dtype.BF16), Tensors.bytes(w));
        String outConfig = Files.readString(Path.of(out, "config.json"));
        assertThat(outConfig).doesNotContain("quantization_config").contains("\"hidden_size\"");
    }

    @Test
    void mxfp4BlocksAndScalesMergeLikeTheDequantizedReference() throws Exception {
        int experts = 2;
        int rows = 24;
        int groups = 5;              // 160 values a row
        List<byte[][]> inputs = new ArrayList<>();
        List<String> dirs = new ArrayList<>();
        for (int m = 0; m < 2; m++) {
            Random random = new Random(31 + m);
            byte[] blocks = new byte[experts * rows * groups * 16];
            random.nextBytes(blocks);
            byte[] scales = new byte[experts * rows * groups];
            for (int i = 0; i < scales.length; i++) {
                scales[i] = (byte) (120 + random.nextInt(10));
            }
            inputs.add(new byte[][]{blocks, scales});
            Path dir = temp.resolve("mxfp4-" + m);
            Map<String, ByteBuffer> data = new LinkedHashMap<>();
            data.put(EXPERTS + "_blocks", ByteBuffer.wrap(blocks));
            data.put(EXPERTS + "_scales", ByteBuffer.wrap(scales));
            CheckpointWriter.write(new Configuration(), dir.toString(), List.of(
                    new CheckpointWriter.Spec(EXPERTS + "_blocks", Dtype.U8, new long[]{experts, rows, groups, 16}),
                    new CheckpointWriter.Spec(EXPERTS + "_scales", Dtype.U8, new long[]{experts, rows, groups})),
                    Long.MAX_VALUE, s -> data.get(s.name()).duplicate());
            Files.writeString(dir.resolve("config.json"), "{\"model_type\": \"gpt_oss\", \"quantization_config\": "
                    + "{\"quant_method\": \"mxfp4\"}}");
            dirs.add(dir.toString());
        }
        Path config = temp.resolve("linear.yml");
        Files.writeString(config, "merge_method: linear\nmodels:\n"
                + "  - model: " + dirs.get(0) + "\n    parameters: {weight: 0.7}\n"
                + "  - model: " + dirs.get(1) + "\n    parameters: {weight: 0.3}\n");
        String out = temp + "/out-mxfp4";
        // 100-element chunks are cut to 96: MXFP4 chunks start on 32-value blocks.
        new MergeJob(TestSpark.context()).run(MergeRequest.of(config.toString(), out).withChunkElements(100)
                .withPartitions(2));

        StoredTensor merged = Tensors.open(out).byName().get(EXPERTS);
        assertArrayEquals(new long[]{experts, rows, groups * 32}, merged.shape());
        float[] expected = ReferenceMerge.linear(List.of(
                new ReferenceMerge.Model(dequantizeMxfp4(inputs.get(0)), 0.7f, 1, 0, 0),
                new ReferenceMerge.Model(dequantizeMxfp4(inputs.get(1)), 0.3f, 1, 0, 0)), true);
        assertArrayEquals(Tensors.encode(expected, Dtype.BF16), Tensors.bytes(merged));
        assertThat(Files.readString(Path.of(out, "config.json"))).doesNotContain("quantization_config");
    }

    @Test
    void anFp8WeightWithoutItsScalesIsRefusedNamingTheFileAndTensor() throws Exception {
        String base = writeFp8(temp.resolve("with"), fp8Model(new Random(1)), true);
        String bad = writeFp8(temp.resolve("without"), fp8Model(new Random(2)), false);
        Path config = temp.resolve("bad.yml");
        Files.writeString(config, "merge_method: linear\nmodels:\n  - model: " + base + "\n    parameters: {weight: 1}\n"
                + "  - model: " + bad + "\n    parameters: {weight: 1}\n");
        AmalgamException e = assertThrows(AmalgamException.class, () -> new MergeJob(TestSpark.context())
                .inspect(MergeRequest.of(config.toString(), temp + "/never")));
        assertEquals(AmalgamException.Kind.INPUT, e.kind());
        assertThat(e.getMessage()).contains(bad).contains("tensor '" + WEIGHT + "' is F8_E4M3")
                .contains(WEIGHT + "_scale_inv");
    }

    @Test
    void scalesThatDoNotMatchTheBlockSizeAreRefusedNamingTheShapeTheyNeed() throws Exception {
        Path dir = temp.resolve("mismatch");
        writeFp8(dir, fp8Model(new Random(3)), true);
        Files.writeString(dir.resolve("config.json"), "{\"hidden_size\": 200, \"quantization_config\": "
                + "{\"quant_method\": \"fp8\", \"weight_block_size\": [64, 64]}}");
        Path config = temp.resolve("mismatch.yml");
        Files.writeString(config, "merge_method: linear\nmodels:\n  - model: " + dir + "\n    parameters: {weight: 1}\n");
        AmalgamException e = assertThrows(AmalgamException.class, () -> new MergeJob(TestSpark.context())
                .inspect(MergeRequest.of(config.toString(), temp + "/never")));
        assertThat(e.getMessage()).contains("have shape [3, 2]").contains("need [5, 4]").contains("weight_block_size");
    }

    private static Fp8Model fp8Model(Random random) {
        byte[] weight = new byte[ROWS * COLS];
        for (int i = 0; i < weight.length; i++) {
            int b;
            do {
                b = random.nextInt(256);
            } while ((b & 0x7f) == 0x7f); // E4M3's NaN
            weight[i] = (byte) b;
        }
        float[] scales = new float[ceil(ROWS) * ceil(COLS)];
        for (int i = 0; i < scales.length; i++) {
            scales[i] = (float) Math.scalb(1.0 + random.nextInt(64) / 64.0, -9 - random.nextInt(4));
        }
        float[] norm = new float[COLS];
        for (int i = 0; i < COLS; i++) {
            norm[i] = 1.0f + random.nextInt(32) / 64.0f;
        }
        return new Fp8Model(weight, scales, norm);
    }

    private static int ceil(int n) {
        return (n + BLOCK - 1) / BLOCK;
    }

    private static String writeFp8(Path dir, Fp8Model m, boolean withScales) throws Exception {
        List<CheckpointWriter.Spec> specs = new ArrayList<>();
        specs.add(new CheckpointWriter.Spec(NORM, Dtype.BF16, new long[]{COLS}));
        specs.add(new CheckpointWriter.Spec(WEIGHT, Dtype.F8_E4M3, new long[]{ROWS, COLS}));
        if (withScales) {
            specs.add(new CheckpointWriter.Spec(WEIGHT + "_scale_inv", Dtype.F32, new long[]{ceil(ROWS), ceil(COLS)}));
        }
        CheckpointWriter.write(new Configuration(), dir.toString(), specs, Long.MAX_VALUE, s -> {
            if (s.name().equals(WEIGHT)) {
                return ByteBuffer.wrap(m.weight());
            }
            float[] values = s.name().equals(NORM) ? m.norm() : m.scales();
            return ByteBuffer.wrap(Tensors.encode(values, s.dtype())).order(ByteOrder.LITTLE_ENDIAN);
        });
        Files.writeString(dir.resolve("config.json"), "{\"hidden_size\": 200, \"torch_dtype\": \"bfloat16\", "
                + "\"quantization_config\": {\"activation_scheme\": \"dynamic\", \"fmt\": \"e4m3\", "
                + "\"quant_method\": \"fp8\", \"weight_block_size\": [128, 128]}}");
        return dir.toString();
    }

    /** E4M3 from its bits: sign, 4 exponent bits (bias 7), 3 mantissa bits; exponent 0 is subnormal. */
    private static float e4m3(byte b) {
        int sign = (b >> 7) & 1;
        int exponent = (b >> 3) & 0xf;
        int mantissa = b & 7;
        double magnitude = exponent == 0 ? mantissa / 8.0 * Math.pow(2, -6)
                : (1 + mantissa / 8.0) * Math.pow(2, exponent - 7);
        return (float) (sign == 1 ? -magnitude : magnitude);
    }

    private static float[] dequantizeFp8(Fp8Model m) {
        float[] out = new float[ROWS * COLS];
        for (int r = 0; r < ROWS; r++) {
            for (int c = 0; c < COLS; c++) {
                out[r * COLS + c] = e4m3(m.weight()[r * COLS + c]) * m.scales()[(r / BLOCK) * ceil(COLS) + c / BLOCK];
            }
        }
        return out;
    }

    /** E2M1 from its bits: sign bit 3, 2 exponent bits (bias 1), 1 mantissa bit; low nibble first. */
    private static float e2m1(int nibble) {
        int exponent = (nibble >> 1) & 3;
        int mantissa = nibble & 1;
        double magnitude = exponent == 0 ? mantissa * 0.5 : (1 + mantissa / 2.0) * Math.pow(2, exponent - 1);
        return (float) ((nibble & 8) != 0 ? -magnitude : magnitude);
    }

    private static float[] dequantizeMxfp4(byte[][] stored) {
        byte[] blocks = stored[0];
        byte[] scales = stored[1];
        float[] out = new float[blocks.length * 2];
        for (int i = 0; i < out.length; i++) {
            int packed = blocks[i / 2] & 0xff;
            int nibble = i % 2 == 0 ? packed & 0xf : packed >>> 4;
            out[i] = (float) (e2m1(nibble) * Math.pow(2, (scales[i / 32] & 0xff) - 127));
        }
        return out;
    }
}
