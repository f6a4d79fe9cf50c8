package dev.amalgam.plan;

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

    private static TensorPlan tensor(MergePlan plan, String name) {
        return Arrays.stream(plan.tensors()).filter(t -> t.name().equals(name)).findFirst().orElseThrow();
    }

    @Test
    void gradientsResolvePerLayer() {
        MergePlan plan = plan(ties("{weight: 1.0, density: [1.0, 0.5]}", "{weight: 1.0}", ""));
        assertEquals(1.0f, tensor(plan, "model.layers.0.mlp.up_proj.weight").parameters()[0].density());
        assertEquals(0.5f, tensor(plan, "model.layers.1.mlp.up_proj.weight").parameters()[0].density());
        assertEquals(1.0f, tensor(plan, "model.embed_tokens.weight").parameters()[0].density());
    }

    @Test
    void filtersResolvePerTensorName() {
        MergePlan plan = plan(ties("{weight: [{filter: mlp, value: 0.5}, {value: 0.3}]}", "{weight: 1}", ""));
        assertEquals(0.5f, tensor(plan, "model.layers.0.mlp.down_proj.weight").parameters()[0].weight());
        assertEquals(0.3f, tensor(plan, "model.layers.0.self_attn.q_proj.weight").parameters()[0].weight());
    }

    @Test
    void aModelsOwnValueTakesPrecedenceOverTheGlobalOne() {
        MergePlan plan = plan(ties("{weight: 1, density: 0.2}", "{weight: 1}", "{density: 0.6}"));
        TensorPlan t = tensor(plan, "lm_head.weight");
        assertEquals(0.2f, t.parameters()[0].density());
        assertEquals(0.6f, t.parameters()[1].density());
    }

    @Test
    void aFilterListWithoutMatchFallsBackToTheGlobalValue() {
        MergePlan plan = plan(ties("{weight: 1, density: [{filter: mlp, value: 0.2}]}", "{weight: 1}", "{density: 0.7}"));
        assertEquals(0.2f, tensor(plan, "model.layers.0.mlp.up_proj.weight").parameters()[0].density());
        assertEquals(0.7f, tensor(plan, "lm_head.weight").parameters()[0].density());
    }

    @Test
    void globalSettingsTakeTheMethodsDefaults() {
        assertEquals(new MethodSettings("ties", true, false, 1.0f, 0), plan(ties("{weight: 1}", "{weight: 1}", "")).settings());
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
    void aMissingWeightNamesTheModelAndTensor() {
        AmalgamException e = refused(ties("{density: 0.5}", "{weight: 1}", ""));
        assertThat(e.getMessage()).contains("models[0] (" + f.models.get(0) + ") has no 'weight' for tensor");
    }

    @Test
    void densityOutsideTheUnitIntervalIsAnError() {
        assertThat(refused(ties("{weight: 1, density: 1.5}", "{weight: 1}", "")).getMessage())
                .contains("density 1.5 is outside (0, 1]");
        assertThat(refused(ties("{weight: 1, density: 0}", "{weight: 1}", "")).getMessage())
                .contains("density 0.0 is outside (0, 1]");
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
}
