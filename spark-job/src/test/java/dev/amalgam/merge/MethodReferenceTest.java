package dev.amalgam.merge;

import dev.amalgam.format.Checkpoint;
import dev.amalgam.format.StoredTensor;
import dev.amalgam.job.MergeJob;
import dev.amalgam.job.MergeRequest;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.testing.MergeFixture;
import dev.amalgam.testing.ReferenceMerge;
import dev.amalgam.testing.TestSpark;
import dev.amalgam.testing.Tensors;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every method, on bf16, f16 and f32 checkpoints with ties in |delta| and sign conflicts, gives
 * bit for bit what the whole-tensor reference gives. Small odd chunks make every statistic cross
 * chunk boundaries.
 */
class MethodReferenceTest {
    private static final float[] WEIGHTS = {1.0f, 0.6f, 0.35f};
    private static final double[] DENSITIES = {0.5, 0.3, 0.9};
    private static final double[] GAMMAS = {0.05, 0.1, 0.0};
    private static final double[] EPSILONS = {0.1, 0.05, 0.05};

    @TempDir
    static Path temp;
    private static Map<Dtype, MergeFixture> fixtures;

    @BeforeAll
    static void generate() {
        fixtures = MergeFixture.perDtype(temp, 3, 6_000);
    }

    static Stream<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>();
        for (String method : List.of("linear", "task_arithmetic", "ties", "dare_ties", "dare_linear", "breadcrumbs",
                "breadcrumbs_ties", "della", "della_linear")) {
            for (Dtype dtype : Dtype.floats()) {
                cases.add(Arguments.of(method, dtype, "", 3));
            }
            // Two models take the kernels' specialised two-model path.
            cases.add(Arguments.of(method, Dtype.BF16, "", 2));
        }
        cases.add(Arguments.of("ties", Dtype.BF16, "rescale: true, lambda: 0.8", 3));
        cases.add(Arguments.of("task_arithmetic", Dtype.F16, "normalize: true, lambda: 1.5", 3));
        cases.add(Arguments.of("dare_ties", Dtype.F32, "rescale: false, random_seed: 99", 2));
        cases.add(Arguments.of("della_linear", Dtype.BF16, "normalize: true, rescale: false", 3));
        cases.add(Arguments.of("linear", Dtype.F32, "normalize: false", 2));
        return cases.stream();
    }

    @ParameterizedTest(name = "{0} on {1} {2} with {3} models")
    @MethodSource("cases")
    void matchesTheWholeTensorReferenceBitForBit(String method, Dtype dtype, String globals, int modelCount) {
        MergeFixture f = fixtures.get(dtype);
        String name = method + "-" + dtype + "-" + Math.abs(globals.hashCode()) + "-" + modelCount;
        String configFile = f.config(name + ".yml", config(method, f.base, f.models.subList(0, modelCount), globals));
        String out = f.out(name);
        new MergeJob(TestSpark.context()).run(MergeRequest.of(configFile, out).withChunkElements(37).withWholeTensorStatistics(false).withPartitions(3));

        Checkpoint merged = Tensors.open(out);
        Map<String, StoredTensor> base = Tensors.open(f.base).byName();
        List<Map<String, StoredTensor>> models = f.models.subList(0, modelCount).stream()
                .map(m -> Tensors.open(m).byName()).toList();
        ReferenceMerge.Settings settings = settings(method, globals);
        boolean normalize = !globals.contains("normalize: false");
        for (StoredTensor t : merged.tensors()) {
            List<ReferenceMerge.Model> inputs = new ArrayList<>();
            for (int i = 0; i < models.size(); i++) {
                inputs.add(new ReferenceMerge.Model(Tensors.floats(models.get(i).get(t.name())), WEIGHTS[i], DENSITIES[i],
                        GAMMAS[i], EPSILONS[i]));
            }
            float[] expected = method.equals("linear")
                    ? ReferenceMerge.linear(inputs, normalize)
                    : ReferenceMerge.taskVector(method, t.name(), t.shape(), Tensors.floats(base.get(t.name())), inputs,
                    settings);
            assertArrayEquals(Tensors.encode(expected, dtype), Tensors.bytes(t), method + " differs on " + t.name());
        }
        assertTrue(merged.tensors().size() > 10);
    }

    private static String config(String method, String base, List<String> models, String globals) {
        StringBuilder s = new StringBuilder("merge_method: " + method + "\n");
        if (!method.equals("linear")) {
            s.append("base_model: ").append(base).append('\n');
        }
        s.append("models:\n");
        for (int i = 0; i < models.size(); i++) {
            s.append("  - model: ").append(models.get(i)).append("\n    parameters: {weight: ").append(WEIGHTS[i]);
            if (!method.equals("linear") && !method.equals("task_arithmetic")) {
                s.append(", density: ").append(DENSITIES[i]);
            }
            if (method.startsWith("breadcrumbs")) {
                s.append(", gamma: ").append(GAMMAS[i]);
            }
            if (method.startsWith("della")) {
                s.append(", epsilon: ").append(EPSILONS[i]);
            }
            s.append("}\n");
        }
        if (!globals.isEmpty()) {
            s.append("parameters: {").append(globals).append("}\n");
        }
        return s.toString();
    }

    private static ReferenceMerge.Settings settings(String method, String globals) {
        boolean normalize = switch (method) {
            case "ties", "della" -> true;
            default -> false;
        };
        boolean rescale = switch (method) {
            case "dare_ties", "dare_linear", "della", "della_linear" -> true;
            default -> false;
        };
        float lambda = 1.0f;
        long seed = 0;
        for (String part : globals.split(",")) {
            String[] kv = part.split(":");
            if (kv.length != 2) {
                continue;
            }
            String value = kv[1].trim();
            switch (kv[0].trim()) {
                case "normalize" -> normalize = Boolean.parseBoolean(value);
                case "rescale" -> rescale = Boolean.parseBoolean(value);
                case "lambda" -> lambda = Float.parseFloat(value);
                case "random_seed" -> seed = Long.parseLong(value);
                default -> throw new IllegalArgumentException(part);
            }
        }
        return new ReferenceMerge.Settings(normalize, rescale, lambda, seed);
    }
}
