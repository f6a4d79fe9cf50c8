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
 * config.json drops quantization_config. With an FP8 out_dtype the output is FP8 again, its block
 * scales beside it, equal to a plain quantization of the reference merge written out in the test.
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
        new MergeJob(TestSpark.context()).run(MergeRequest.of(config.toString(), out).withChunkElements(1000).withWholeTensorStatistics(false)
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

    /** Three FP8 inputs merged with TIES and written as FP8 with block scales; returns the output directory. */
    private String mergeFp8ToFp8(List<Fp8Model> inputs, String name, boolean wholeTensorStatistics) throws Exception {
        List<String> dirs = new ArrayList<>();
        for (int m = 0; m < inputs.size(); m++) {
            dirs.add(writeFp8(temp.resolve(name + "-in-" + m), inputs.get(m), true));
        }
        Path config = temp.resolve(name + ".yml");
        Files.writeString(config, "merge_method: ties\nbase_model: " + dirs.get(0) + "\nmodels:\n"
                + "  - model: " + dirs.get(1) + "\n    parameters: {weight: 1.0, density: 0.5}\n"
                + "  - model: " + dirs.get(2) + "\n    parameters: {weight: 0.6, density: 0.3}\n"
                + "out_dtype: float8_e4m3fn\n");
        String out = temp + "/" + name;
        new MergeJob(TestSpark.context()).run(MergeRequest.of(config.toString(), out).withChunkElements(1000)
                .withWholeTensorStatistics(wholeTensorStatistics).withPartitions(3));
        return out;
    }

    @Test
    void fp8InputsWrittenAsFp8AreRequantizedWithBlockScalesLikeAStraightforwardReference() throws Exception {
        List<Fp8Model> inputs = List.of(fp8Model(new Random(17)), fp8Model(new Random(18)), fp8Model(new Random(19)));
        String out = mergeFp8ToFp8(inputs, "fp8-out", false);

        float[] merged = ReferenceMerge.taskVector("ties", WEIGHT, new long[]{ROWS, COLS}, dequantizeFp8(inputs.get(0)),
                List.of(new ReferenceMerge.Model(dequantizeFp8(inputs.get(1)), 1.0f, 0.5, 0, 0),
                        new ReferenceMerge.Model(dequantizeFp8(inputs.get(2)), 0.6f, 0.3, 0, 0)),
                new ReferenceMerge.Settings(true, false, 1.0f, 0));
        Fp8Model expected = quantizeReference(merged);

        // It reads back as a block-quantized checkpoint: the scales pair with their weight again.
        Checkpoint result = Tensors.open(out);
        assertThat(result.tensors()).extracting(StoredTensor::name).containsExactlyInAnyOrder(WEIGHT, NORM);
        StoredTensor w = result.byName().get(WEIGHT);
        assertEquals(Dtype.F8_E4M3, w.dtype());
        StoredTensor scales = w.quantization().scales();
        assertEquals(WEIGHT + "_scale_inv", scales.name());
        assertEquals(Dtype.F32, scales.dtype());
        assertArrayEquals(new long[]{ceil(ROWS), ceil(COLS)}, scales.shape());
        assertArrayEquals(Tensors.encode(expected.scales(), Dtype.F32), Tensors.bytes(scales));
        assertArrayEquals(expected.weight(), java.util.Arrays.copyOf(Tensors.bytes(w), ROWS * COLS));
        assertEquals(Dtype.BF16, result.byName().get(NORM).dtype(), "tensors stored as floats stay floats");
        assertThat(Files.readString(Path.of(out, "config.json"))).contains("\"weight_block_size\"")
                .contains("\"torch_dtype\" : \"bfloat16\"");
    }

    @Test
    void fp8OutputBytesDoNotDependOnTheChunking() throws Exception {
        List<Fp8Model> inputs = List.of(fp8Model(new Random(7)), fp8Model(new Random(8)), fp8Model(new Random(9)));
        assertEquals(Tensors.shardDigests(mergeFp8ToFp8(inputs, "fp8-rows", false)),
                Tensors.shardDigests(mergeFp8ToFp8(inputs, "fp8-whole", true)));
    }

    @Test
    void fp8OutputOfInputsWithoutFp8BlockScalesIsRefusedWithTheFix() throws Exception {
        Path dir = temp.resolve("bf16");
        CheckpointWriter.write(new Configuration(), dir.toString(),
                List.of(new CheckpointWriter.Spec(NORM, Dtype.BF16, new long[]{COLS})), Long.MAX_VALUE,
                s -> ByteBuffer.wrap(new byte[COLS * 2]));
        Path config = temp.resolve("bf16.yml");
        Files.writeString(config, "merge_method: linear\nmodels:\n  - model: " + dir + "\n    parameters: {weight: 1}\n"
                + "out_dtype: float8_e4m3fn\n");
        AmalgamException e = assertThrows(AmalgamException.class, () -> new MergeJob(TestSpark.context())
                .inspect(MergeRequest.of(config.toString(), temp + "/never")));
        assertEquals(AmalgamException.Kind.CONFIG, e.kind());
        assertThat(e.getMessage()).contains("out_dtype float8_e4m3fn").contains(dir.toString()).contains("bfloat16");
    }

    @Test
    void fusedExpertStacksAreRequantizedWithAGridPerMatrix() throws Exception {
        int experts = 2;
        int rows = 150;  // one full block row and a partial one per matrix
        int n = experts * rows * COLS;
        int gridRows = experts * ceil(rows);
        List<float[]> values = new ArrayList<>();
        List<String> dirs = new ArrayList<>();
        for (int m = 0; m < 2; m++) {
            Random random = new Random(40 + m);
            byte[] bytes = new byte[n];
            for (int i = 0; i < n; i++) {
                int b;
                do {
                    b = random.nextInt(256);
                } while ((b & 0x7f) == 0x7f);
                bytes[i] = (byte) b;
            }
            float[] scales = new float[gridRows * ceil(COLS)];
            for (int i = 0; i < scales.length; i++) {
                scales[i] = (float) Math.scalb(1.0 + random.nextInt(64) / 64.0, -8 - random.nextInt(4));
            }
            float[] dequantized = new float[n];
            for (int i = 0; i < n; i++) {
                int matrix = i / (rows * COLS);
                int r = i / COLS % rows;
                int c = i % COLS;
                dequantized[i] = e4m3(bytes[i]) * scales[(matrix * ceil(rows) + r / BLOCK) * ceil(COLS) + c / BLOCK];
            }
            values.add(dequantized);
            Path dir = temp.resolve("experts-" + m);
            CheckpointWriter.write(new Configuration(), dir.toString(), List.of(
                    new CheckpointWriter.Spec(EXPERTS, Dtype.F8_E4M3, new long[]{experts, rows, COLS}),
                    new CheckpointWriter.Spec(EXPERTS + "_scale_inv", Dtype.F32, new long[]{experts, ceil(rows), ceil(COLS)})),
                    Long.MAX_VALUE, spec -> spec.name().equals(EXPERTS) ? ByteBuffer.wrap(bytes)
                            : ByteBuffer.wrap(Tensors.encode(scales, Dtype.F32)));
            Files.writeString(dir.resolve("config.json"), "{\"quantization_config\": {\"quant_method\": \"fp8\", "
                    + "\"weight_block_size\": [128, 128]}}");
            dirs.add(dir.toString());
        }
        Path config = linear70to30("experts.yml", dirs, "out_dtype: float8_e4m3fn\n");
        String out = temp + "/experts-out";
        new MergeJob(TestSpark.context()).run(MergeRequest.of(config.toString(), out).withChunkElements(1000)
                .withPartitions(3));

        float[] merged = ReferenceMerge.linear(List.of(new ReferenceMerge.Model(values.get(0), 0.7f, 1, 0, 0),
                new ReferenceMerge.Model(values.get(1), 0.3f, 1, 0, 0)), true);
        StoredTensor w = Tensors.open(out).byName().get(EXPERTS);
        byte[] stored = Tensors.bytes(w);
        byte[] scaleBytes = Tensors.bytes(w.quantization().scales());
        for (int matrix = 0; matrix < experts; matrix++) {
            for (int br = 0; br < ceil(rows); br++) {
                for (int bc = 0; bc < ceil(COLS); bc++) {
                    float amax = 0;
                    for (int r = br * BLOCK; r < Math.min(rows, (br + 1) * BLOCK); r++) {
                        for (int c = bc * BLOCK; c < Math.min(COLS, (bc + 1) * BLOCK); c++) {
                            amax = Math.max(amax, Math.abs(merged[(matrix * rows + r) * COLS + c]));
                        }
                    }
                    float scale = amax == 0 ? 1.0f : amax / 448.0f;
                    int s = (matrix * ceil(rows) + br) * ceil(COLS) + bc;
                    assertEquals(scale, ByteBuffer.wrap(scaleBytes).order(ByteOrder.LITTLE_ENDIAN).getFloat(s * 4),
                            "scale of expert " + matrix + " block " + br + "," + bc);
                    for (int r = br * BLOCK; r < Math.min(rows, (br + 1) * BLOCK); r++) {
                        for (int c = bc * BLOCK; c < Math.min(COLS, (bc + 1) * BLOCK); c++) {
                            int i = (matrix * rows + r) * COLS + c;
                            assertEquals(nearestE4m3(merged[i] / scale), stored[i], "value " + i);
                        }
                    }
                }
            }
        }
    }

    /**
     * The re-quantization rule, written out plainly: per 128 x 128 block, scale = max |x| / 448 in
     * float32 (1 for a block of zeros); each byte is the E4M3 value nearest x / scale, found by
     * trying every byte of x's sign, the even byte on a tie.
     */
    private static Fp8Model quantizeReference(float[] x) {
        float[] scales = new float[ceil(ROWS) * ceil(COLS)];
        byte[] bytes = new byte[ROWS * COLS];
        for (int br = 0; br < ceil(ROWS); br++) {
            for (int bc = 0; bc < ceil(COLS); bc++) {
                float amax = 0;
                for (int r = br * BLOCK; r < Math.min(ROWS, (br + 1) * BLOCK); r++) {
                    for (int c = bc * BLOCK; c < Math.min(COLS, (bc + 1) * BLOCK); c++) {
                        amax = Math.max(amax, Math.abs(x[r * COLS + c]));
                    }
                }
                float scale = amax / 448.0f == 0 ? 1.0f : amax / 448.0f;
                scales[br * ceil(COLS) + bc] = scale;
                for (int r = br * BLOCK; r < Math.min(ROWS, (br + 1) * BLOCK); r++) {
                    for (int c = bc * BLOCK; c < Math.min(COLS, (bc + 1) * BLOCK); c++) {
                        bytes[r * COLS + c] = nearestE4m3(x[r * COLS + c] / scale);
                    }
                }
            }
        }
        return new Fp8Model(bytes, scales, null);
    }

    private static byte nearestE4m3(float q) {
        int sign = Float.floatToRawIntBits(q) < 0 ? 0x80 : 0;
        double a = Math.abs((double) q);
        int best = 0;
        for (int code = 1; code <= 0x7e; code++) {
            double d = Math.abs(e4m3((byte) code) - a);
            double bestD = Math.abs(e4m3((byte) best) - a);
            if (d < bestD || (d == bestD && code % 2 == 0)) {
                best = code;
            }
        }
        return (byte) (sign | best);
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
        Path config = linear70to30("linear.yml", dirs, "");
        String out = temp + "/out-mxfp4";
        // 100-element chunks are cut to 96: MXFP4 chunks start on 32-value blocks.
        new MergeJob(TestSpark.context()).run(MergeRequest.of(config.toString(), out).withChunkElements(100).withWholeTensorStatistics(false)
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

    /** A linear merge config of two models weighted 0.7 and 0.3, with {@code extra} top-level lines. */
    private Path linear70to30(String name, List<String> dirs, String extra) throws Exception {
        Path config = temp.resolve(name);
        Files.writeString(config, "merge_method: linear\nmodels:\n"
                + "  - model: " + dirs.get(0) + "\n    parameters: {weight: 0.7}\n"
                + "  - model: " + dirs.get(1) + "\n    parameters: {weight: 0.3}\n" + extra);
        return config;
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
