package dev.amalgam.merge;

import dev.amalgam.AmalgamException;
import dev.amalgam.job.MergeJob;
import dev.amalgam.job.MergeRequest;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.testing.MergeFixture;
import dev.amalgam.testing.TestSpark;
import dev.amalgam.testing.Tensors;
import dev.amalgam.testing.WholeModelReference;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Methods whose statistics span the whole model, against {@link WholeModelReference} (every
 * tensor in memory, flattened in canonical order), bit for bit on bf16, f16 and f32 checkpoints
 * with ties at the whole-model thresholds and sign conflicts; single-chunk tensors and chunks of
 * 37 elements over three partitions give the same bytes.
 */
class WholeModelMethodsTest {
    private static final double[] DENSITY = {0.3, 0.55, 0.2};
    private static final float[] WEIGHT = {1.0f, 0.7f, 1.3f};

    @TempDir
    static Path temp;
    private static Map<Dtype, MergeFixture> fixtures;

    @BeforeAll
    static void generate() {
        fixtures = MergeFixture.perDtype(temp, 3, 6_000);
    }

    /** The fixture's three fine-tunes, each flattened in canonical order. */
    private static float[][] flatModels(MergeFixture f, List<String> order) {
        float[][] x = new float[3][];
        for (int i = 0; i < 3; i++) {
            x[i] = WholeModelReference.flatten(Tensors.all(f.models.get(i)), order);
        }
        return x;
    }

    static Stream<Arguments> chunkings() {
        List<Arguments> cases = new ArrayList<>();
        for (Dtype dtype : Dtype.floats()) {
            cases.add(Arguments.of(dtype, 37));
            cases.add(Arguments.of(dtype, 1 << 20));
        }
        return cases.stream();
    }

    private static String tiesConfig(MergeFixture f, String extra) {
        StringBuilder s = new StringBuilder("merge_method: ties\nbase_model: " + f.base + "\nmodels:\n");
        for (int i = 0; i < 3; i++) {
            s.append("  - model: ").append(f.models.get(i)).append("\n    parameters: {weight: ").append(WEIGHT[i])
                    .append(", density: ").append(DENSITY[i]).append("}\n");
        }
        return s.append("parameters: {trim_scope: model, lambda: 1.5").append(extra).append("}\n").toString();
    }

    @ParameterizedTest(name = "{0}, chunks of {1}")
    @MethodSource("chunkings")
    void tiesWithModelTrimScopeIsThePapersTies(Dtype dtype, int chunk) {
        MergeFixture f = fixtures.get(dtype);
        String name = "ties-model-" + dtype + "-" + chunk;
        String config = f.config(name + ".yml", tiesConfig(f, ""));
        String out = f.out(name);
        new MergeJob(TestSpark.context()).run(MergeRequest.of(config, out).withChunkElements(chunk).withPartitions(3));

        Map<String, float[]> base = Tensors.all(f.base);
        List<String> order = WholeModelReference.canonical(base.keySet());
        float[][] x = flatModels(f, order);
        float[] flatBase = WholeModelReference.flatten(base, order);
        float[] expected = WholeModelReference.tiesPaper(flatBase, x, DENSITY, WEIGHT, 1.5f);
        Map<String, float[]> expectedTensors = WholeModelReference.split(expected, base, order);
        Map<String, dev.amalgam.format.StoredTensor> merged = Tensors.open(out).byName();
        assertEquals(base.keySet(), merged.keySet());
        for (String t : order) {
            assertArrayEquals(Tensors.encode(expectedTensors.get(t), dtype), Tensors.bytes(merged.get(t)),
                    "ties trim_scope: model differs on " + t);
        }
        assertThat(straddledThresholds(flatBase, x)).as("equal magnitudes straddle a whole-model threshold").isPositive();
    }

    @ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.EnumSource(value = Dtype.class, names = {"BF16", "F16", "F32"})
    void tiesWithModelTrimScopeTakesTheWholeModelsMajorityWhereTheTotalIsZero(Dtype dtype) {
        // Two models of weight 1 whose deltas often cancel exactly: the majority rule decides those entries.
        MergeFixture f = fixtures.get(dtype);
        String name = "ties-majority-" + dtype;
        String config = f.config(name + ".yml", "merge_method: ties\nbase_model: " + f.base + "\nmodels:\n"
                + "  - model: " + f.models.get(0) + "\n    parameters: {weight: 1.0, density: 0.6}\n"
                + "  - model: " + f.models.get(1) + "\n    parameters: {weight: 1.0, density: 0.6}\n"
                + "parameters: {trim_scope: model}\n");
        new MergeJob(TestSpark.context()).run(MergeRequest.of(config, f.out(name)).withChunkElements(37)
                .withPartitions(3));

        Map<String, float[]> base = Tensors.all(f.base);
        List<String> order = WholeModelReference.canonical(base.keySet());
        float[][] x = {WholeModelReference.flatten(Tensors.all(f.models.get(0)), order),
                WholeModelReference.flatten(Tensors.all(f.models.get(1)), order)};
        float[] flatBase = WholeModelReference.flatten(base, order);
        double[] density = {0.6, 0.6};
        float[] weight = {1.0f, 1.0f};
        long[] decided = WholeModelReference.decidedByMajority(flatBase, x, density, weight);
        assertThat(decided[0]).as("entries decided by the majority").isPositive();
        assertThat(decided[1]).as("the whole model's majority").isNotZero();
        Map<String, float[]> expected = WholeModelReference.split(
                WholeModelReference.tiesPaper(flatBase, x, density, weight, 1.0f), base, order);
        Map<String, dev.amalgam.format.StoredTensor> merged = Tensors.open(f.out(name)).byName();
        for (String t : order) {
            assertArrayEquals(Tensors.encode(expected.get(t), dtype), Tensors.bytes(merged.get(t)),
                    "ties trim_scope: model differs on " + t);
        }
    }

    /** How many models' thresholds fall inside a run of equal magnitudes (so the tie rule decides). */
    private static int straddled(float[] d, double density) {
        float[] sorted = new float[d.length];
        for (int j = 0; j < d.length; j++) {
            sorted[j] = Math.abs(d[j]);
        }
        java.util.Arrays.sort(sorted);
        int k = (int) Math.floor(density * d.length);
        int at = d.length - k;
        return at > 0 && sorted[at] == sorted[at - 1] ? 1 : 0;
    }

    private static int straddledThresholds(float[] base, float[][] x) {
        int n = 0;
        for (int i = 0; i < x.length; i++) {
            float[] d = new float[base.length];
            for (int j = 0; j < d.length; j++) {
                d[j] = x[i][j] - base[j];
            }
            n += straddled(d, DENSITY[i]);
        }
        return n;
    }

    static Stream<Arguments> varmCases() {
        List<Arguments> cases = new ArrayList<>();
        String[][] settings = {
                {"tensor", "square", "sum"}, {"module", "abs", "softmax"}, {"layer", "signed", "sum"},
                {"model", "square", "softmax"}, {"element", "square", "sum"}, {"element", "signed", "softmax"}};
        for (Dtype dtype : Dtype.floats()) {
            for (String[] c : settings) {
                cases.add(Arguments.of(dtype, c[0], c[1], c[2], 37));
                if (dtype == Dtype.BF16) {
                    cases.add(Arguments.of(dtype, c[0], c[1], c[2], 1 << 20));
                }
            }
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0} {1} {2} {3}, chunks of {4}")
    @MethodSource("varmCases")
    void varmWeighsModelsByTheirVariation(Dtype dtype, String granularity, String variation, String weighting,
                                          int chunk) {
        MergeFixture f = fixtures.get(dtype);
        double temperature = weighting.equals("softmax") ? 0.5 : 1.0;
        String name = "varm-" + dtype + "-" + granularity + "-" + variation + "-" + weighting + "-" + chunk;
        StringBuilder yaml = new StringBuilder("merge_method: varm\nbase_model: " + f.base + "\nmodels:\n");
        for (int i = 0; i < 3; i++) {
            yaml.append("  - model: ").append(f.models.get(i)).append('\n');
        }
        yaml.append("parameters: {granularity: ").append(granularity).append(", variation: ").append(variation)
                .append(", weighting: ").append(weighting).append(", temperature: ").append(temperature).append("}\n");
        String out = f.out(name);
        new MergeJob(TestSpark.context()).run(MergeRequest.of(f.config(name + ".yml", yaml.toString()), out)
                .withChunkElements(chunk).withPartitions(3));

        Map<String, float[]> base = Tensors.all(f.base);
        List<Map<String, float[]>> models = f.models.subList(0, 3).stream().map(Tensors::all).toList();
        int v = List.of("square", "abs", "signed").indexOf(variation);
        boolean softmax = weighting.equals("softmax");
        Map<String, float[]> expected = new java.util.HashMap<>();
        if (granularity.equals("element")) {
            for (String t : base.keySet()) {
                float[][] x = models.stream().map(m -> m.get(t)).toArray(float[][]::new);
                expected.put(t, WholeModelReference.varmElement(base.get(t), x, v, softmax, (float) temperature));
            }
        } else {
            expected = WholeModelReference.varm(base, models, granularity, v, softmax, temperature);
        }
        Map<String, dev.amalgam.format.StoredTensor> merged = Tensors.open(out).byName();
        assertEquals(base.keySet(), merged.keySet());
        for (String t : base.keySet()) {
            assertArrayEquals(Tensors.encode(expected.get(t), dtype), Tensors.bytes(merged.get(t)),
                    "varm " + granularity + " differs on " + t);
        }
    }

    /** The fixture's Fisher checkpoints, one per fine-tune (generated beside each). */
    private static List<String> fishers(MergeFixture f, Dtype dtype) {
        return f.models.stream().map(m -> dev.amalgam.cli.ExampleConfigs.companion(m, "fisher")).toList();
    }

    static Stream<Arguments> fisherCases() {
        List<Arguments> cases = new ArrayList<>();
        for (Dtype dtype : Dtype.floats()) {
            cases.add(Arguments.of(dtype, true, true, 37));
            cases.add(Arguments.of(dtype, false, true, 1 << 20));
        }
        cases.add(Arguments.of(Dtype.BF16, true, false, 1 << 20));
        cases.add(Arguments.of(Dtype.F32, false, false, 37));
        return cases.stream();
    }

    @ParameterizedTest(name = "{0} normalize {1} favor target {2}, chunks of {3}")
    @MethodSource("fisherCases")
    void fisherAveragesByTheSuppliedDiagonals(Dtype dtype, boolean normalize, boolean favorTarget, int chunk) {
        MergeFixture f = fixtures.get(dtype);
        List<String> fishers = fishers(f, dtype);
        double[] weights = {1.0, 0.5, 2.0};
        String name = "fisher-" + dtype + "-" + normalize + "-" + favorTarget + "-" + chunk;
        StringBuilder yaml = new StringBuilder("merge_method: fisher\nmodels:\n");
        for (int i = 0; i < 3; i++) {
            yaml.append("  - model: ").append(f.models.get(i)).append("\n    fisher: ").append(fishers.get(i))
                    .append("\n    parameters: {weight: ").append(weights[i]).append("}\n");
        }
        yaml.append("parameters: {normalize_fishers: ").append(normalize).append(", favor_target_model: ")
                .append(favorTarget).append(", fisher_floor: 0.0001}\n");
        String out = f.out(name);
        new MergeJob(TestSpark.context()).run(MergeRequest.of(f.config(name + ".yml", yaml.toString()), out)
                .withChunkElements(chunk).withPartitions(3));

        List<Map<String, float[]>> models = f.models.subList(0, 3).stream().map(Tensors::all).toList();
        List<Map<String, float[]>> fisherValues = fishers.stream().map(Tensors::all).toList();
        Map<String, float[]> expected = WholeModelReference.fisher(models, fisherValues, weights, 0.0001f, favorTarget,
                normalize);
        Map<String, dev.amalgam.format.StoredTensor> merged = Tensors.open(out).byName();
        assertEquals(expected.keySet(), merged.keySet());
        for (String t : expected.keySet()) {
            assertArrayEquals(Tensors.encode(expected.get(t), dtype), Tensors.bytes(merged.get(t)),
                    "fisher differs on " + t);
        }
    }

    @Test
    void fisherNeedsAFisherCheckpointPerModel() {
        MergeFixture f = fixtures.get(Dtype.F32);
        String config = f.config("fisher-missing.yml", "merge_method: fisher\nmodels:\n  - model: " + f.models.get(0)
                + "\n  - model: " + f.models.get(1) + "\n    fisher: " + fishers(f, Dtype.F32).get(1) + "\n");
        assertThatThrownBy(() -> new MergeJob(TestSpark.context()).run(MergeRequest.of(config, f.out("fm"))))
                .isInstanceOf(AmalgamException.class)
                .hasMessageContaining("models[0] (" + f.models.get(0) + ") has no 'fisher' checkpoint");
    }

    @Test
    void aFisherCheckpointMustHoldEveryTensorInItsShape() throws Exception {
        MergeFixture f = fixtures.get(Dtype.F32);
        String wrong = f.root + "/fisher-wrong-shape";
        dev.amalgam.sample.SampleCheckpoints.writeCompanion(new org.apache.hadoop.conf.Configuration(), wrong,
                new dev.amalgam.sample.SampleCheckpoints.Shape(1, 16, 24, 40), Dtype.F32, "fisher", 1, 11);
        String config = f.config("fisher-wrong.yml", "merge_method: fisher\nmodels:\n  - model: " + f.models.get(0)
                + "\n    fisher: " + wrong + "\n  - model: " + f.models.get(1) + "\n    fisher: "
                + fishers(f, Dtype.F32).get(1) + "\n");
        assertThatThrownBy(() -> new MergeJob(TestSpark.context()).run(MergeRequest.of(config, f.out("fw"))))
                .isInstanceOf(AmalgamException.class)
                .hasMessageContaining("models[0].fisher (" + wrong + ") has no tensor 'model.layers.1.");
    }

    static Stream<Arguments> consensusCases() {
        List<Arguments> cases = new ArrayList<>();
        for (Dtype dtype : Dtype.floats()) {
            cases.add(Arguments.of(dtype, "consensus_ta", 37));
            cases.add(Arguments.of(dtype, "consensus_ties", 37));
        }
        cases.add(Arguments.of(Dtype.BF16, "consensus_ta", 1 << 20));
        cases.add(Arguments.of(Dtype.BF16, "consensus_ties", 1 << 20));
        return cases.stream();
    }

    @ParameterizedTest(name = "{1} on {0}, chunks of {2}")
    @MethodSource("consensusCases")
    void consensusKeepsTheMultiTaskVectorWhereTasksAgree(Dtype dtype, String method, int chunk) {
        MergeFixture f = fixtures.get(dtype);
        boolean ties = method.equals("consensus_ties");
        float[] tallLambda = {0.4f, 0.6f, 0.3f};
        String name = method + "-" + dtype + "-" + chunk;
        StringBuilder yaml = new StringBuilder("merge_method: " + method + "\nbase_model: " + f.base + "\nmodels:\n");
        for (int i = 0; i < 3; i++) {
            yaml.append("  - model: ").append(f.models.get(i)).append("\n    parameters: {weight: ").append(WEIGHT[i])
                    .append(", tall_mask_lambda: ").append(tallLambda[i])
                    .append(ties ? ", density: " + DENSITY[i] : "").append("}\n");
        }
        yaml.append("parameters: {k: 2, lambda: 0.8}\n");
        String out = f.out(name);
        new MergeJob(TestSpark.context()).run(MergeRequest.of(f.config(name + ".yml", yaml.toString()), out)
                .withChunkElements(chunk).withPartitions(3));

        Map<String, float[]> base = Tensors.all(f.base);
        List<String> order = WholeModelReference.canonical(base.keySet());
        float[][] x = flatModels(f, order);
        double[] density = ties ? DENSITY : new double[]{1, 1, 1};
        float[] expected = WholeModelReference.consensus(WholeModelReference.flatten(base, order), x, WEIGHT, density,
                tallLambda, 2, 0.8f, ties);
        Map<String, float[]> expectedTensors = WholeModelReference.split(expected, base, order);
        Map<String, dev.amalgam.format.StoredTensor> merged = Tensors.open(out).byName();
        for (String t : order) {
            assertArrayEquals(Tensors.encode(expectedTensors.get(t), dtype), Tensors.bytes(merged.get(t)),
                    method + " differs on " + t);
        }
    }

    static Stream<Arguments> linesCases() {
        List<Arguments> cases = new ArrayList<>();
        for (Dtype dtype : Dtype.floats()) {
            cases.add(Arguments.of(dtype, "task_arithmetic", "{beta: 0.5}", 37));
            cases.add(Arguments.of(dtype, "ties", "{alpha: 0.6, beta: 0.4}", 37));
            cases.add(Arguments.of(dtype, "ties", "{beta: 1.5}", 1 << 20));
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{1} lines {2} on {0}, chunks of {3}")
    @MethodSource("linesCases")
    void linesScalesTheMergedDeltaByLayer(Dtype dtype, String method, String lines, int chunk) {
        MergeFixture f = fixtures.get(dtype);
        String name = "lines-" + method + "-" + dtype + "-" + Math.abs(lines.hashCode()) + "-" + chunk;
        boolean ties = method.equals("ties");
        StringBuilder yaml = new StringBuilder("merge_method: " + method + "\nbase_model: " + f.base + "\nmodels:\n");
        for (int i = 0; i < 3; i++) {
            yaml.append("  - model: ").append(f.models.get(i)).append("\n    parameters: {weight: ").append(WEIGHT[i])
                    .append(ties ? ", density: " + DENSITY[i] : "").append("}\n");
        }
        yaml.append("parameters: {lambda: 1.25, lines: ").append(lines).append("}\n");
        String out = f.out(name);
        new MergeJob(TestSpark.context()).run(MergeRequest.of(f.config(name + ".yml", yaml.toString()), out)
                .withChunkElements(chunk).withPartitions(3));

        Map<String, float[]> base = Tensors.all(f.base);
        List<Map<String, float[]>> models = f.models.subList(0, 3).stream().map(Tensors::all).toList();
        Map<String, dev.amalgam.format.StoredTensor> shapes = Tensors.open(f.base).byName();
        // Without alpha: |sum_i w_i d_i| and |merged delta| summed exactly over the whole model.
        java.math.BigDecimal weightedL1 = java.math.BigDecimal.ZERO;
        java.math.BigDecimal mergedL1 = java.math.BigDecimal.ZERO;
        int layers = 0;
        for (String t : base.keySet()) {
            float[] b = base.get(t);
            float[] merged = referenceTaskVector(method, t, shapes.get(t).shape(), b, models, 1.25f);
            for (int j = 0; j < b.length; j++) {
                float u = WEIGHT[0] * (models.get(0).get(t)[j] - b[j]);
                for (int i = 1; i < 3; i++) {
                    u += WEIGHT[i] * (models.get(i).get(t)[j] - b[j]);
                }
                weightedL1 = weightedL1.add(new java.math.BigDecimal(Math.abs(u)));
                mergedL1 = mergedL1.add(new java.math.BigDecimal(Math.abs(merged[j] - b[j])));
            }
            layers = Math.max(layers, dev.amalgam.config.ParameterResolver.layerOf(t) + 1);
        }
        double alpha = lines.contains("alpha") ? 0.6
                : (double) weightedL1.floatValue() / (3 * (double) mergedL1.floatValue());
        double beta = Double.parseDouble(lines.substring(lines.indexOf("beta:") + 5, lines.indexOf('}')).trim());
        Map<String, dev.amalgam.format.StoredTensor> mergedOut = Tensors.open(out).byName();
        for (String t : base.keySet()) {
            int layer = dev.amalgam.config.ParameterResolver.layerOf(t);
            double scale = layer < 0 || layers <= 1 ? alpha : alpha + beta * layer / (layers - 1);
            float[] expected = referenceTaskVector(method, t, shapes.get(t).shape(), base.get(t), models,
                    (float) (1.25 * scale));
            assertArrayEquals(Tensors.encode(expected, dtype), Tensors.bytes(mergedOut.get(t)),
                    method + " with LiNeS differs on " + t);
        }
    }

    private static float[] referenceTaskVector(String method, String tensor, long[] shape, float[] base,
                                               List<Map<String, float[]>> models, float lambda) {
        List<dev.amalgam.testing.ReferenceMerge.Model> inputs = new ArrayList<>();
        for (int i = 0; i < models.size(); i++) {
            inputs.add(new dev.amalgam.testing.ReferenceMerge.Model(models.get(i).get(tensor), WEIGHT[i],
                    method.equals("ties") ? DENSITY[i] : 1.0, 0.0, 0.0));
        }
        return dev.amalgam.testing.ReferenceMerge.taskVector(method, tensor, shape, base, inputs,
                new dev.amalgam.testing.ReferenceMerge.Settings(method.equals("ties"), false, lambda, 0));
    }

    @Test
    void tiesWithModelTrimScopeDiffersFromPerTensorTrimming() {
        MergeFixture f = fixtures.get(Dtype.F32);
        String paper = f.config("ties-model-vs.yml", tiesConfig(f, ""));
        String perTensor = f.config("ties-tensor-vs.yml", tiesConfig(f, "").replace("trim_scope: model", "trim_scope: tensor"));
        new MergeJob(TestSpark.context()).run(MergeRequest.of(paper, f.out("ties-model-vs")));
        new MergeJob(TestSpark.context()).run(MergeRequest.of(perTensor, f.out("ties-tensor-vs")));
        assertThat(Tensors.shardDigests(f.out("ties-model-vs"))).isNotEqualTo(Tensors.shardDigests(f.out("ties-tensor-vs")));
    }

    @Test
    void aDensityThatVariesByTensorIsRefusedWithModelTrimScope() {
        MergeFixture f = fixtures.get(Dtype.F32);
        String config = f.config("ties-model-varies.yml", tiesConfig(f, "").replace("density: 0.3}",
                "density: [{filter: mlp, value: 0.5}, {value: 0.3}]}"));
        assertThatThrownBy(() -> new MergeJob(TestSpark.context()).run(MergeRequest.of(config, f.out("varies"))))
                .isInstanceOf(AmalgamException.class)
                .hasMessageContaining("ties-model-varies.yml")
                .hasMessageContaining("one density over its whole checkpoint");
    }

    @Test
    void anUnknownTrimScopeIsRefused() {
        MergeFixture f = fixtures.get(Dtype.F32);
        String config = f.config("ties-scope-typo.yml", tiesConfig(f, "").replace("trim_scope: model", "trim_scope: modle"));
        assertThatThrownBy(() -> new MergeJob(TestSpark.context()).run(MergeRequest.of(config, f.out("typo"))))
                .isInstanceOf(AmalgamException.class)
                .hasMessageContaining("parameters.trim_scope must be one of tensor, model; got modle");
    }
    static Stream<Arguments> pcbCases() {
        List<Arguments> cases = new ArrayList<>();
        for (Dtype dtype : Dtype.floats()) {
            cases.add(Arguments.of(dtype, 0.1, 37));
            cases.add(Arguments.of(dtype, 0.7, 1 << 20));
        }
        cases.add(Arguments.of(Dtype.BF16, 1.0, 37));
        return cases.stream();
    }

    @ParameterizedTest(name = "{0} pcb_ratio {1}, chunks of {2}")
    @MethodSource("pcbCases")
    void pcbBalancesTheModelsByWholeModelQuantiles(Dtype dtype, double ratio, int chunk) {
        MergeFixture f = fixtures.get(dtype);
        String name = "pcb-" + dtype + "-" + ratio + "-" + chunk;
        StringBuilder yaml = new StringBuilder("merge_method: pcb\nbase_model: " + f.base + "\nmodels:\n");
        for (int i = 0; i < 3; i++) {
            yaml.append("  - model: ").append(f.models.get(i)).append("\n");
        }
        yaml.append("parameters: {pcb_ratio: ").append(ratio).append(", lambda: 0.9}\n");
        String out = f.out(name);
        new MergeJob(TestSpark.context()).run(MergeRequest.of(f.config(name + ".yml", yaml.toString()), out)
                .withChunkElements(chunk).withPartitions(3));

        Map<String, float[]> base = Tensors.all(f.base);
        List<String> order = WholeModelReference.canonical(base.keySet());
        float[][] x = flatModels(f, order);
        float[] expected = WholeModelReference.pcb(WholeModelReference.flatten(base, order), x, ratio, 0.9f);
        Map<String, float[]> expectedTensors = WholeModelReference.split(expected, base, order);
        Map<String, dev.amalgam.format.StoredTensor> merged = Tensors.open(out).byName();
        for (String t : order) {
            assertArrayEquals(Tensors.encode(expectedTensors.get(t), dtype), Tensors.bytes(merged.get(t)),
                    "pcb differs on " + t);
        }
    }
    @ParameterizedTest(name = "{0}, chunks of {1}")
    @MethodSource("chunkings")
    void varmMeasuresVariationOverTheConfigsGroups(Dtype dtype, int chunk) {
        MergeFixture f = fixtures.get(dtype);
        String name = "varm-groups-" + dtype + "-" + chunk;
        StringBuilder yaml = new StringBuilder("merge_method: varm\nbase_model: " + f.base + "\nmodels:\n");
        for (int i = 0; i < 3; i++) {
            yaml.append("  - model: ").append(f.models.get(i)).append('\n');
        }
        // Attention across every layer is one group; the layer norms another; the rest per tensor.
        yaml.append("groups: {attention: 'self_attn\\.', norms: 'layers\\.\\d+\\..*layernorm'}\n");
        yaml.append("parameters: {granularity: group, variation: abs, weighting: softmax, temperature: 0.5}\n");
        String out = f.out(name);
        new MergeJob(TestSpark.context()).run(MergeRequest.of(f.config(name + ".yml", yaml.toString()), out)
                .withChunkElements(chunk).withPartitions(3));

        Map<String, float[]> base = Tensors.all(f.base);
        List<Map<String, float[]>> models = f.models.subList(0, 3).stream().map(Tensors::all).toList();
        java.util.function.Function<String, String> groups = t -> t.contains("self_attn.") ? "attention"
                : t.matches(".*layers\\.\\d+\\..*layernorm.*") ? "norms" : t;
        Map<String, float[]> expected = WholeModelReference.varm(base, models, "group", 1, true, 0.5, groups);
        Map<String, dev.amalgam.format.StoredTensor> merged = Tensors.open(out).byName();
        for (String t : base.keySet()) {
            assertArrayEquals(Tensors.encode(expected.get(t), dtype), Tensors.bytes(merged.get(t)),
                    "varm by group differs on " + t);
        }
    }

    /** A varm-by-group config over two fine-tunes with {@code groups} as given. */
    private static String groupConfig(MergeFixture f, String name, String groups) {
        return f.config(name, "merge_method: varm\nbase_model: " + f.base + "\nmodels:\n  - model: " + f.models.get(0)
                + "\n  - model: " + f.models.get(1) + "\n" + groups + "parameters: {granularity: group}\n");
    }

    private static void refused(String config, String message) {
        assertThatThrownBy(() -> new MergeJob(TestSpark.context()).run(MergeRequest.of(config, config + "-out")))
                .isInstanceOf(AmalgamException.class)
                .hasMessageContaining(message);
    }

    @Test
    void aGroupPatternThatMatchesNoTensorIsRefused() {
        refused(groupConfig(fixtures.get(Dtype.F32), "groups-typo.yml", "groups: {attention: 'self_atn'}\n"),
                "groups.attention ('self_atn') has no merged tensor");
    }

    @Test
    void groupGranularityNeedsTheConfigsGroups() {
        refused(groupConfig(fixtures.get(Dtype.F32), "groups-none.yml", ""), "add a top-level 'groups:' mapping");
    }

    @Test
    void anInvalidGroupPatternIsRefused() {
        refused(groupConfig(fixtures.get(Dtype.F32), "groups-bad.yml", "groups: {attention: 'self_attn('}\n"),
                "'groups.attention' is not a valid regular expression");
    }
}
