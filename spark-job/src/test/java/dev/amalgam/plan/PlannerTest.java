package dev.amalgam.plan;

import dev.amalgam.method.MergeMethod;
import dev.amalgam.method.MergeMethods;
import dev.amalgam.method.MethodSettings;

import dev.amalgam.AmalgamException;
import dev.amalgam.config.MergeConfigParser;
import dev.amalgam.format.CheckpointReader;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.testing.MergeFixture;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Parameters resolve per tensor as METHODS.md says; invalid values are refused before any work. */
class PlannerTest {
    @TempDir
    static Path temp;
    static MergeFixture f;

    @BeforeAll
    static void generate() {
        f = MergeFixture.create(temp, Dtype.F32, 2, Long.MAX_VALUE);
    }

    private MergePlan plan(String yaml) {
        return new Planner(new CheckpointReader(new Configuration()))
                .plan("c.yml", MergeConfigParser.parse("c.yml", yaml), new PlanOptions(100, Long.MAX_VALUE)).plan();
    }

    private AmalgamException refused(String yaml) {
        return assertThrows(AmalgamException.class, () -> plan(yaml));
    }

    private String ties(String model0, String model1, String globals) {
        return "merge_method: ties\nbase_model: " + f.base + "\nmodels:\n  - model: " + f.models.get(0)
                + "\n    parameters: " + model0 + "\n  - model: " + f.models.get(1) + "\n    parameters: " + model1
                + (globals.isEmpty() ? "" : "\nparameters: " + globals) + "\n";
    }

    private static float value(TensorPlan t, int model, String name) {
        return (float) MergeMethods.byName("ties").orElseThrow().model(t, model, name);
    }

    private static TensorPlan tensor(MergePlan plan, String name) {
        return Arrays.stream(plan.tensors()).filter(t -> t.name().equals(name)).findFirst().orElseThrow();
    }

    @Test
    void gradientsResolvePerLayer() {
        MergePlan plan = plan(ties("{weight: 1.0, density: [1.0, 0.5]}", "{weight: 1.0}", ""));
        assertEquals(1.0f, value(tensor(plan, "model.layers.0.mlp.up_proj.weight"), 0, "density"));
        assertEquals(0.5f, value(tensor(plan, "model.layers.1.mlp.up_proj.weight"), 0, "density"));
        assertEquals(1.0f, value(tensor(plan, "model.embed_tokens.weight"), 0, "density"));
    }

    @Test
    void filtersResolvePerTensorName() {
        MergePlan plan = plan(ties("{weight: [{filter: mlp, value: 0.5}, {value: 0.3}]}", "{weight: 1}", ""));
        assertEquals(0.5f, value(tensor(plan, "model.layers.0.mlp.down_proj.weight"), 0, "weight"));
        assertEquals(0.3f, value(tensor(plan, "model.layers.0.self_attn.q_proj.weight"), 0, "weight"));
    }

    @Test
    void aModelsOwnValueTakesPrecedenceOverTheGlobalOne() {
        MergePlan plan = plan(ties("{weight: 1, density: 0.2}", "{weight: 1}", "{density: 0.6}"));
        TensorPlan t = tensor(plan, "lm_head.weight");
        assertEquals(0.2f, value(t, 0, "density"));
        assertEquals(0.6f, value(t, 1, "density"));
    }

    @Test
    void aFilterListWithoutMatchFallsBackToTheGlobalValue() {
        MergePlan plan = plan(ties("{weight: 1, density: [{filter: mlp, value: 0.2}]}", "{weight: 1}", "{density: 0.7}"));
        assertEquals(0.2f, value(tensor(plan, "model.layers.0.mlp.up_proj.weight"), 0, "density"));
        assertEquals(0.7f, value(tensor(plan, "lm_head.weight"), 0, "density"));
    }

    @Test
    void globalSettingsTakeTheMethodsDefaults() {
        MergePlan plan = plan(ties("{weight: 1}", "{weight: 1}", ""));
        assertEquals(new MethodSettings("ties", 0, true), plan.settings());
        MergeMethod ties = MergeMethods.byName("ties").orElseThrow();
        assertThat(ties.flag(plan.tensors()[0], "normalize")).isTrue();
        assertThat(ties.flag(plan.tensors()[0], "rescale")).isFalse();
        assertEquals(1.0, ties.global(plan.tensors()[0], "lambda"));
    }

    @Test
    void unknownParameterNamesAreErrors() {
        assertThat(refused(ties("{weight: 1, densty: 0.5}", "{weight: 1}", "")).getMessage())
                .contains("models[0].parameters.densty is not a parameter of ties");
        assertThat(refused(ties("{weight: 1}", "{weight: 1}", "{gamma: 0.1}")).getMessage())
                .contains("parameters.gamma is not a parameter of ties");
    }

    @Test
    void aGlobalParameterAtModelLevelIsAnError() {
        assertThat(refused(ties("{weight: 1, normalize: true}", "{weight: 1}", "")).getMessage())
                .contains("models[0].parameters.normalize is a global parameter");
    }

    @Test
    void aMissingWeightNamesTheModelOnce() {
        AmalgamException e = refused(ties("{density: 0.5}", "{weight: 1}", ""));
        assertThat(e.getMessage()).contains("models[0] (" + f.models.get(0) + ") has no 'weight';");
        assertThat(e.problems()).hasSize(1);
    }

    @Test
    void aFilterListWithoutFallbackNamesEveryTensorItMisses() {
        AmalgamException e = refused(ties("{weight: [{filter: mlp, value: 1}]}", "{weight: 1}", ""));
        assertThat(e.getMessage()).contains("has no 'weight' for tensor 'lm_head.weight'")
                .contains("for tensor 'model.layers.0.self_attn.q_proj.weight'")
                .doesNotContain("for tensor 'model.layers.0.mlp.up_proj.weight'");
    }

    @Test
    void densityOutsideTheUnitIntervalIsAnError() {
        assertThat(refused(ties("{weight: 1, density: 1.5}", "{weight: 1}", "")).getMessage())
                .contains("density is 1.5, outside (0, 1]");
        assertThat(refused(ties("{weight: 1, density: 0}", "{weight: 1}", "")).getMessage())
                .contains("density is 0.0, outside (0, 1]");
    }

    @Test
    void aTopKThatKeepsNothingNamesTheTensor() {
        assertThat(refused(ties("{weight: 1, density: 0.01}", "{weight: 1}", "")).getMessage())
                .contains("tensor 'model.layers.0.input_layernorm.weight'").contains("keeps floor(density x 16) = 0");
    }

    @Test
    void dellaEpsilonMustKeepProbabilitiesInsideTheUnitInterval() {
        String yaml = "merge_method: della\nbase_model: " + f.base + "\nmodels:\n  - model: " + f.models.get(0)
                + "\n    parameters: {weight: 1, density: 0.9, epsilon: 0.2}\n";
        assertThat(refused(yaml).getMessage()).contains("epsilon 0.2 with density 0.9 must satisfy");
    }

    @Test
    void taskVectorMethodsNeedABaseModel() {
        assertThat(refused("merge_method: ties\nmodels:\n  - model: " + f.models.get(0) + "\n    parameters: {weight: 1}\n")
                .getMessage()).contains("merge_method ties needs base_model");
    }

    @Test
    void anUnknownMethodListsTheKnownOnes() {
        assertThat(refused("merge_method: tiez\nmodels: [a]\n").getMessage())
                .contains("merge_method 'tiez' is unknown").contains("dare_ties");
    }

    @Test
    void linearRefusesWeightsThatSumToZeroWhenNormalizing() {
        String yaml = "merge_method: linear\nmodels:\n  - model: " + f.models.get(0) + "\n    parameters: {weight: 1}\n"
                + "  - model: " + f.models.get(1) + "\n    parameters: {weight: -1}\n";
        assertThat(refused(yaml).getMessage()).contains("the weights sum to 0").contains("normalize: false");
    }

    @Test
    void theBaseListedAmongTheModelsIsNotADelta() {
        String yaml = "merge_method: task_arithmetic\nbase_model: " + f.base + "\nmodels:\n  - model: " + f.base
                + "\n  - model: " + f.models.get(0) + "\n    parameters: {weight: 1}\n";
        assertEquals(1, plan(yaml).modelCount());
    }

    @Test
    void dellaChunksFallOnRowsAndOthersMayCutThem() {
        String della = "merge_method: della\nbase_model: " + f.base + "\nmodels:\n  - model: " + f.models.get(0)
                + "\n    parameters: {weight: 1, density: 0.5}\n";
        MergePlan plan = plan(della);
        for (ChunkPlan c : plan.chunks()) {
            TensorPlan t = plan.tensors()[c.tensor()];
            assertEquals(0, c.start() % t.cols());
            assertEquals(0, c.count() % t.cols());
        }
        MergePlan ties = plan(ties("{weight: 1}", "{weight: 1}", ""));
        assertThat(Arrays.stream(ties.chunks()).anyMatch(c -> c.count() % ties.tensors()[c.tensor()].cols() != 0)).isTrue();
    }

    private static ResourceCheck.Settings executors(long limit, int tasks) {
        return new ResourceCheck.Settings(limit, tasks, false, -1, 1, Runtime.getRuntime().maxMemory());
    }

    private MergePlan planWith(String yaml, ResourceCheck.Settings resources, boolean wholeTensorStatistics) {
        return new Planner(new CheckpointReader(new Configuration()), resources).plan("c.yml",
                MergeConfigParser.parse("c.yml", yaml), new PlanOptions(100, Long.MAX_VALUE, wholeTensorStatistics)).plan();
    }

    private static long chunksOf(MergePlan plan, TensorPlan t) {
        return Arrays.stream(plan.chunks()).filter(c -> c.tensor() == t.index()).count();
    }

    @Test
    void aTensorThatNeedsStatisticsIsOneChunkWhereTheExecutorsMemoryHoldsIt() {
        MergePlan ties = planWith(ties("{weight: 1, density: 0.5}", "{weight: 1, density: 0.5}", ""),
                executors(1L << 30, 2), true);
        assertThat(ties.tensors()).anyMatch(t -> t.elements() > 100);
        for (TensorPlan t : ties.tensors()) {
            assertEquals(1, chunksOf(ties, t), t.name() + " is merged with its statistics in one task");
        }
    }

    @Test
    void aTensorTooLargeForTheExecutorsMemoryIsCutAndOthersStayWhole() {
        String yaml = ties("{weight: 1, density: 0.5}", "{weight: 1, density: 0.5}", "");
        long largest = Arrays.stream(planWith(yaml, null, true).tensors()).mapToLong(TensorPlan::elements).max().orElseThrow();
        long smallest = Arrays.stream(planWith(yaml, null, true).tensors()).filter(t -> t.elements() > 100)
                .mapToLong(TensorPlan::elements).min().orElseThrow();
        assertThat(smallest).isLessThan(largest);
        // Room for two tasks' buffers of the smallest multi-chunk tensor, not of the largest.
        long limit = 2 * dev.amalgam.kernels.CpuBackend.hostBytes((int) smallest, 2, true);
        MergePlan plan = planWith(yaml, executors(limit, 2), true);
        int fits = ResourceCheck.largestChunk(executors(limit, 2), 2, true, false);
        assertThat((long) fits).isGreaterThanOrEqualTo(smallest).isLessThan(largest);
        for (TensorPlan t : plan.tensors()) {
            long expected = t.elements() <= fits ? 1 : (t.elements() + 99) / 100;
            assertEquals(expected, chunksOf(plan, t), t.name() + " of " + t.elements() + " elements");
        }
        assertThat(ResourceCheck.problems(plan, executors(limit, 2))).isEmpty();
    }

    @Test
    void tensorsWithoutStatisticsOrWithWholeTensorStatisticsOffAreCutByTheChunkSize() {
        String ta = "merge_method: task_arithmetic\nbase_model: " + f.base + "\nmodels:\n  - model: " + f.models.get(0)
                + "\n    parameters: {weight: 1}\n";
        String ties = ties("{weight: 1, density: 0.5}", "{weight: 1, density: 0.5}", "");
        for (MergePlan plan : List.of(planWith(ta, executors(1L << 30, 2), true),
                planWith(ties, executors(1L << 30, 2), false))) {
            for (TensorPlan t : plan.tensors()) {
                assertEquals((t.elements() + 99) / 100, chunksOf(plan, t), t.name());
            }
        }
    }

    @Test
    void wholeTensorsStayInsideTheContainersOffHeapRoomAsWellAsTheArrowLimit() {
        ResourceCheck.Settings roomy = new ResourceCheck.Settings(4L << 30, 2, false, -1, 1, 1L << 30, -1);
        ResourceCheck.Settings tight = new ResourceCheck.Settings(4L << 30, 2, false, -1, 1, 1L << 30, 64L << 20);
        int tightLargest = ResourceCheck.largestChunk(tight, 2, true, false);
        assertThat(ResourceCheck.largestChunk(roomy, 2, true, false)).isGreaterThan(tightLargest);
        assertThat(2 * dev.amalgam.kernels.CpuBackend.hostBytes(tightLargest, 2, true)).isLessThanOrEqualTo(64L << 20);
    }

    @Test
    void theLargestChunkIsTheLastCountWhoseBuffersFitEveryTask() {
        ResourceCheck.Settings s = executors(300L << 20, 3);
        int n = ResourceCheck.largestChunk(s, 3, true, false);
        assertThat(3 * dev.amalgam.kernels.CpuBackend.hostBytes(n, 3, true)).isLessThanOrEqualTo(300L << 20);
        assertThat(3 * dev.amalgam.kernels.CpuBackend.hostBytes(n + 1, 3, true)).isGreaterThan(300L << 20);
        assertEquals(0, ResourceCheck.largestChunk(new ResourceCheck.Settings(1L << 30, 1, true, -1, 1, 1L << 30), 3, true, false),
                "a GPU whose budget is unset: not known before the tasks run");
    }

    @Test
    void shardsAreFilledGreedilyInBaseOrder() {
        MergePlan plan = new Planner(new CheckpointReader(new Configuration())).plan("c.yml",
                MergeConfigParser.parse("c.yml", ties("{weight: 1}", "{weight: 1}", "")),
                new PlanOptions(100, 10_000)).plan();
        assertThat(plan.shards().length).isGreaterThan(1);
        assertEquals(String.format("model-00001-of-%05d.safetensors", plan.shards().length), plan.shards()[0].fileName());
        int previous = 0;
        for (TensorPlan t : plan.tensors()) {
            assertThat(t.shard()).isGreaterThanOrEqualTo(previous);
            previous = t.shard();
        }
    }

    private Planner.Planned planned(String yaml) {
        return new Planner(new CheckpointReader(new Configuration()))
                .plan("c.yml", MergeConfigParser.parse("c.yml", yaml), new PlanOptions(100, Long.MAX_VALUE));
    }

    private String method(String method, String base, int models, String modelParameters, String globals) {
        StringBuilder s = new StringBuilder("merge_method: " + method + "\n");
        if (base != null) {
            s.append("base_model: ").append(base).append('\n');
        }
        s.append("models:\n");
        for (int i = 0; i < models; i++) {
            s.append("  - model: ").append(f.models.get(i)).append('\n');
            if (!modelParameters.isEmpty()) {
                s.append("    parameters: ").append(modelParameters).append('\n');
            }
        }
        if (!globals.isEmpty()) {
            s.append("parameters: ").append(globals).append('\n');
        }
        return s.toString();
    }

    @Test
    void dtypeWithoutOutDtypeSetsTheOutputDtype() {
        MergePlan plan = plan(ties("{weight: 1}", "{weight: 1}", "") + "dtype: float16\n");
        assertThat(plan.tensors()).allMatch(t -> t.outDtype() == Dtype.F16);
        MergePlan both = plan(ties("{weight: 1}", "{weight: 1}", "") + "dtype: float16\nout_dtype: bfloat16\n");
        assertThat(both.tensors()).allMatch(t -> t.outDtype() == Dtype.BF16);
    }

    @Test
    void booleansTakeTheOtherToolsNumericForms() {
        MergeMethod ties = MergeMethods.byName("ties").orElseThrow();
        MergePlan on = plan(ties("{weight: 1}", "{weight: 1}", "{normalize: 0, rescale: 1.0, int8_mask: 1.0}"));
        assertThat(ties.flag(on.tensors()[0], "normalize")).isFalse();
        assertThat(ties.flag(on.tensors()[0], "rescale")).isTrue();
    }

    @Test
    void aNumberParameterRefusesABoolean() {
        assertThat(refused(ties("{weight: true}", "{weight: 1}", "")).getMessage())
                .contains("models[0].parameters.weight must be a number, got true");
    }

    @Test
    void passthroughTakesExactlyOneModel() {
        String yaml = "merge_method: passthrough\nmodels:\n  - model: " + f.models.get(0) + "\n  - model: "
                + f.models.get(1) + "\n";
        assertThat(refused(yaml).getMessage()).contains("merge_method passthrough takes exactly 1 model");
    }

    @Test
    void linearAcceptsWeightsSummingToZeroWithoutNormalizing() {
        String yaml = "merge_method: linear\nmodels:\n  - model: " + f.models.get(0) + "\n    parameters: {weight: 1}\n"
                + "  - model: " + f.models.get(1) + "\n    parameters: {weight: -1}\nparameters: {normalize: false}\n";
        assertThat(plan(yaml).tensors()).isNotEmpty();
    }

    @Test
    void everyTensorsProblemIsReportedAtOnce() {
        AmalgamException e = refused(ties("{weight: 1, density: 0.01}", "{weight: 1, density: 0.01}", ""));
        assertThat(e.getMessage()).contains("models[0]").contains("models[1]")
                .contains("'model.layers.0.input_layernorm.weight'").contains("'model.layers.1.input_layernorm.weight'")
                .contains("'model.norm.weight'");
    }

    @Test
    void valueAndMethodProblemsOfDifferentKeysAreReportedTogether() {
        AmalgamException e = refused(ties("{weight: 1, density: 1.5}", "{weight: 1, gamma: 2}", "{lambda: true}"));
        assertThat(e.problems()).anyMatch(p -> p.contains("gamma is not a parameter of ties"))
                .anyMatch(p -> p.contains("parameters.lambda must be a number"));
    }

    @Test
    void tensorIndicesAreTheirPositionsInThePlan() {
        MergePlan plan = new Planner(new CheckpointReader(new Configuration())).plan("c.yml",
                MergeConfigParser.parse("c.yml", ties("{weight: 1}", "{weight: 1}", "")),
                new PlanOptions(100, 10_000)).plan();
        for (int i = 0; i < plan.tensors().length; i++) {
            assertEquals(i, plan.tensors()[i].index());
        }
        TensorPlan first = plan.tensors()[0];
        TensorPlan misplaced = new TensorPlan(5, first.name(), first.shape(), first.elements(), first.cols(),
                first.outDtype(), first.base(), first.models(), first.parameters(), first.shard(), first.outOffset());
        assertThrows(IllegalStateException.class, () -> new MergePlan(plan.settings(), plan.modelCount(),
                new TensorPlan[]{misplaced}, plan.chunks(), plan.shards()));
    }

    @Test
    void globalParametersMayBeLayerGradients() {
        MergePlan plan = plan(method("slerp", f.base, 1, "", "{t: [0.2, 0.9]}"));
        MergeMethod slerp = MergeMethods.byName("slerp").orElseThrow();
        assertEquals(0.2, slerp.global(tensor(plan, "model.layers.0.mlp.up_proj.weight"), "t"), 1e-12);
        assertEquals(0.9, slerp.global(tensor(plan, "model.layers.1.mlp.up_proj.weight"), "t"), 1e-12);
        assertEquals(0.2, slerp.global(tensor(plan, "lm_head.weight"), "t"), 1e-12);
    }

    @Test
    void aGlobalParameterThatDoesNotVaryRefusesAGradient() {
        assertThat(refused(ties("{weight: 1}", "{weight: 1}", "{normalize: [1, 0]}")).getMessage())
                .contains("parameters.normalize must be a single value");
    }

    @Test
    void slerpTakesExactlyTheBaseAndOneModel() {
        assertThat(refused(method("slerp", f.base, 2, "", "{t: 0.5}")).getMessage())
                .contains("slerp takes exactly 2 models, one of them base_model, but the config gives 2 models besides "
                        + "the base");
        assertThat(refused(method("slerp", f.base, 1, "", "")).getMessage()).contains("has no 't'");
    }

    @Test
    void nuslerpRefusesItsBaseAmongItsTwoModels() {
        String yaml = "merge_method: nuslerp\nbase_model: " + f.models.get(0) + "\nmodels:\n  - model: "
                + f.models.get(0) + "\n    parameters: {weight: 1}\n  - model: " + f.models.get(1)
                + "\n    parameters: {weight: 1}\n";
        assertThat(refused(yaml).getMessage()).contains("is both base_model and one of the models")
                .contains("list it only once");
    }

    @Test
    void inputCountsAreCheckedPerMethod() {
        assertThat(refused(method("model_stock", f.base, 1, "", "")).getMessage())
                .contains("model_stock takes base_model plus 2 or more models");
        assertThat(refused(method("multislerp", null, 1, "{weight: 1}", "")).getMessage())
                .contains("multislerp takes 2 or more models");
        assertThat(refused(method("nearswap", null, 1, "", "{t: 0.1}")).getMessage())
                .contains("nearswap needs base_model");
        assertThat(refused(method("karcher", null, 1, "", "")).getMessage())
                .contains("karcher averages at least two inputs");
        assertThat(refused(method("arcee_fusion", f.base, 2, "", "")).getMessage())
                .contains("arcee_fusion takes base_model plus exactly 1 model");
        assertThat(refused(method("arcee_fusion", null, 1, "", "")).getMessage())
                .contains("arcee_fusion needs base_model");
        assertThat(refused(method("sce", null, 2, "", "")).getMessage())
                .contains("sce needs base_model");
    }

    @Test
    void parameterRangesNameTheKeyAndTheFix() {
        assertThat(refused(method("karcher", f.base, 2, "", "{max_iter: 0}")).getMessage())
                .contains("parameters.max_iter is 0, outside [1, inf); give a value in that range");
        assertThat(refused(method("karcher", f.base, 2, "", "{max_iter: 2.5}")).getMessage())
                .contains("max_iter must be a whole number");
        assertThat(refused(method("nearswap", f.base, 1, "", "{t: -1}")).getMessage())
                .contains("parameters.t is -1.0, outside [0, inf)");
        assertThat(refused(method("sce", f.base, 2, "", "{select_topk: 1.5}")).getMessage())
                .contains("parameters.select_topk is 1.5, outside [0, 1]");
    }

    @Test
    void nuslerpColumnVectorsMergeEachTensorAsOneChunk() {
        MergePlan plan = plan(method("nuslerp", null, 2, "{weight: 1}", "{nuslerp_flatten: false, nuslerp_row_wise: true}"));
        for (TensorPlan t : plan.tensors()) {
            assertThat(java.util.Arrays.stream(plan.chunks()).filter(c -> c.tensor() == t.index()).count())
                    .as(t.name()).isEqualTo(1);
        }
        assertThat(plan.chunks().length).isEqualTo(plan.tensors().length);
    }

    @Test
    void theFingerprintChangesWithTheAmalgamVersion() {
        Planner.Planned p = planned(ties("{weight: 1}", "{weight: 1}", ""));
        PlanOptions options = new PlanOptions(100, Long.MAX_VALUE);
        String a = MergeFingerprint.of(new Configuration(), "x", p.plan(), p, options, java.util.Set.of(), false, "1.0");
        String b = MergeFingerprint.of(new Configuration(), "x", p.plan(), p, options, java.util.Set.of(), false, "1.1");
        assertThat(a).isNotEqualTo(b);
        assertThat(dev.amalgam.AmalgamVersion.VERSION).isNotBlank().doesNotContain("${");
    }
}
