package dev.amalgam.merge;

import dev.amalgam.format.CheckpointWriter;
import dev.amalgam.format.StoredTensor;
import dev.amalgam.job.MergeJob;
import dev.amalgam.job.MergeRequest;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.testing.ReferenceMerge;
import dev.amalgam.testing.TestSpark;
import dev.amalgam.testing.Tensors;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * Fused expert tensors ({@code [experts, rows, cols]}) get their statistics per expert by default,
 * so a checkpoint that fuses its experts and one that stores each expert as its own tensor merge
 * to the same values; {@code expert_scope: tensor} takes them over the whole fused tensor.
 * Experts whose deltas differ in scale make the two scopes keep different entries.
 */
class ExpertScopeTest {
    private static final int EXPERTS = 4;
    private static final int ROWS = 6;
    private static final int COLS = 9;
    private static final String FUSED = "model.layers.0.mlp.experts.down_proj";

    @TempDir
    static Path temp;

    /** Model m's value of expert e, element j (m = 0: the base). */
    private static float value(int m, int e, int j) {
        SplittableRandom r = new SplittableRandom(1000L * m + 31L * e + j);
        float base = (float) new SplittableRandom(31L * e + j).nextGaussian() * 0.02f;
        // Deltas on a coarse grid (ties) with both signs, scaled per expert (per-expert thresholds differ).
        return m == 0 ? base : base + (r.nextInt(9) - 4) * 0.0078125f * (1 << e);
    }

    private static void write(Dtype dtype, String dir, int m, boolean fused) throws Exception {
        List<CheckpointWriter.Spec> specs = new ArrayList<>();
        if (fused) {
            specs.add(new CheckpointWriter.Spec(FUSED, dtype, new long[]{EXPERTS, ROWS, COLS}));
        } else {
            for (int e = 0; e < EXPERTS; e++) {
                specs.add(new CheckpointWriter.Spec("model.layers.0.mlp.experts." + e + ".down_proj.weight", dtype,
                        new long[]{ROWS, COLS}));
            }
        }
        CheckpointWriter.write(new Configuration(), dir, specs, Long.MAX_VALUE, spec -> {
            ByteBuffer out = ByteBuffer.allocate((int) spec.bytes()).order(ByteOrder.LITTLE_ENDIAN);
            int first = fused ? 0 : Integer.parseInt(spec.name().split("\\.")[5]);
            int count = fused ? EXPERTS : 1;
            float[] v = new float[count * ROWS * COLS];
            for (int e = 0; e < count; e++) {
                for (int j = 0; j < ROWS * COLS; j++) {
                    v[e * ROWS * COLS + j] = value(m, first + e, j);
                }
            }
            return out.put(Tensors.encode(v, dtype)).flip();
        });
    }

    @BeforeAll
    static void generate() throws Exception {
        for (Dtype dtype : Dtype.floats()) {
            for (int m = 0; m < 3; m++) {
                write(dtype, temp + "/" + dtype + "/fused-" + m, m, true);
                write(dtype, temp + "/" + dtype + "/split-" + m, m, false);
            }
        }
    }

    private static String merge(Dtype dtype, String layout, String name, String extra, int chunk) throws Exception {
        String root = temp + "/" + dtype;
        Path config = Path.of(root, name + ".yml");
        Files.writeString(config, "merge_method: ties\nbase_model: " + root + "/" + layout + "-0\nmodels:\n"
                + "  - model: " + root + "/" + layout + "-1\n    parameters: {weight: 0.7, density: 0.3}\n"
                + "  - model: " + root + "/" + layout + "-2\n    parameters: {weight: 0.5, density: 0.6}\n"
                + "parameters: {rescale: true}\n" + extra);
        String out = root + "/out-" + name;
        new MergeJob(TestSpark.context()).run(MergeRequest.of(config.toString(), out).withChunkElements(chunk)
                .withPartitions(3));
        return out;
    }

    private static float[] reference(float[] base, float[] a, float[] b, long[] shape) {
        return ReferenceMerge.taskVector("ties", FUSED, shape, base,
                List.of(new ReferenceMerge.Model(a, 0.7f, 0.3, 0, 0), new ReferenceMerge.Model(b, 0.5f, 0.6, 0, 0)),
                new ReferenceMerge.Settings(true, true, 1.0f, 0));
    }

    @ParameterizedTest
    @EnumSource(value = Dtype.class, names = {"BF16", "F16", "F32"})
    void aFusedAndAPerExpertCheckpointMergeToTheSameValues(Dtype dtype) throws Exception {
        Map<String, StoredTensor> fused = Tensors.open(merge(dtype, "fused", "fused", "", 1 << 20)).byName();
        Map<String, StoredTensor> cut = Tensors.open(merge(dtype, "fused", "fused-cut", "", 7)).byName();
        Map<String, StoredTensor> split = Tensors.open(merge(dtype, "split", "split", "", 1 << 20)).byName();
        assertEquals(List.of(FUSED), new ArrayList<>(fused.keySet()), "one output tensor, as the inputs store it");
        assertArrayEquals(new long[]{EXPERTS, ROWS, COLS}, fused.get(FUSED).shape());
        byte[] whole = Tensors.bytes(fused.get(FUSED));
        assertArrayEquals(whole, Tensors.bytes(cut.get(FUSED)), "however the work is cut");
        int width = dtype.byteSize() * ROWS * COLS;
        float[][] in = new float[3][];
        for (int m = 0; m < 3; m++) {
            in[m] = Tensors.floats(Tensors.open(temp + "/" + dtype + "/fused-" + m).byName().get(FUSED));
        }
        for (int e = 0; e < EXPERTS; e++) {
            byte[] expert = Arrays.copyOfRange(whole, e * width, (e + 1) * width);
            assertArrayEquals(Tensors.bytes(split.get("model.layers.0.mlp.experts." + e + ".down_proj.weight")), expert,
                    "expert " + e);
            int from = e * ROWS * COLS;
            int to = from + ROWS * COLS;
            float[] expected = reference(Arrays.copyOfRange(in[0], from, to), Arrays.copyOfRange(in[1], from, to),
                    Arrays.copyOfRange(in[2], from, to), new long[]{ROWS, COLS});
            assertArrayEquals(Tensors.encode(expected, dtype), expert, "expert " + e + " against the reference");
        }
    }

    @ParameterizedTest
    @EnumSource(value = Dtype.class, names = {"BF16", "F32"})
    void expertScopeTensorTakesTheStatisticsOverTheWholeFusedTensor(Dtype dtype) throws Exception {
        byte[] perExpert = Tensors.bytes(Tensors.open(merge(dtype, "fused", "scope-expert", "", 1 << 20)).byName()
                .get(FUSED));
        byte[] whole = Tensors.bytes(Tensors.open(merge(dtype, "fused", "scope-tensor", "expert_scope: tensor\n", 13))
                .byName().get(FUSED));
        float[][] in = new float[3][];
        for (int m = 0; m < 3; m++) {
            in[m] = Tensors.floats(Tensors.open(temp + "/" + dtype + "/fused-" + m).byName().get(FUSED));
        }
        assertArrayEquals(Tensors.encode(reference(in[0], in[1], in[2], new long[]{EXPERTS, ROWS, COLS}), dtype), whole);
        assertFalse(Arrays.equals(perExpert, whole), "the scopes keep different entries here");
    }
}
