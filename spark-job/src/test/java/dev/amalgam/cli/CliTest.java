package dev.amalgam.cli;

import dev.amalgam.kernels.Dtype;
import dev.amalgam.testing.CliProcess;
import dev.amalgam.testing.MergeFixture;
import dev.amalgam.testing.Tensors;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The CLI end to end in its own JVM on local Spark: merge, inspect, demo, and meaningful exit codes. */
class CliTest {
    @TempDir
    static Path temp;
    static MergeFixture f;
    static String config;

    @BeforeAll
    static void generate() {
        f = MergeFixture.create(temp.resolve("models"), Dtype.BF16, 2, 4_000);
        config = f.config("ties.yml", "merge_method: ties\nbase_model: " + f.base + "\nmodels:\n"
                + "  - model: " + f.models.get(0) + "\n    parameters: {weight: 1.0, density: [1, 0.5]}\n"
                + "  - model: " + f.models.get(1) + "\n    parameters:\n      weight: [{filter: mlp, value: 0.5}, {value: 0.3}]\n"
                + "      density: 0.5\nparameters: {normalize: true, lambda: 1.0}\ndtype: float32\nout_dtype: bfloat16\n");
    }

    @Test
    void mergeWritesALoadableCheckpointAndInspectListsIt() throws Exception {
        String out = temp.resolve("merged").toString();
        CliProcess.Run merge = CliProcess.run(temp, "merge", config, out, "--chunk-elements", "100",
                "--out-shard-size", "5K", "--no-progress");
        assertEquals(0, merge.exitCode(), merge.stderr());
        assertThat(merge.stdout()).contains("merged ties").contains("amalgam-report.json");
        for (String file : new String[]{"model.safetensors.index.json", "config.json", "tokenizer_config.json",
                "amalgam-config.yml", "amalgam-report.json", "README.md"}) {
            assertTrue(Files.exists(Path.of(out, file)), file);
        }
        assertThat(Files.readString(Path.of(out, "config.json"))).contains("\"torch_dtype\" : \"bfloat16\"");
        assertThat(Tensors.open(out).tensors()).hasSize(Tensors.open(f.base).tensors().size());

        CliProcess.Run inspect = CliProcess.run(temp, "inspect", out);
        assertEquals(0, inspect.exitCode(), inspect.stderr());
        assertThat(inspect.stdout()).contains("model.layers.1.mlp.down_proj.weight").contains("BF16").contains("[16, 24]")
                .contains("model-00001-of-");
    }

    @Test
    void demoMergesGeneratedCheckpointsAndPrintsTheReport() throws Exception {
        CliProcess.Run demo = CliProcess.run(temp, "demo", "--work-dir", temp.resolve("demo").toString());
        assertEquals(0, demo.exitCode(), demo.stderr());
        assertThat(demo.stdout()).contains("merged ties").contains("mean kept density");
        assertTrue(Files.exists(temp.resolve("demo/merged/amalgam-report.json")));
    }

    @Test
    void moeAssemblesAMixtureOfExpertsAndRefusesAMergeConfig() throws Exception {
        String moe = f.config("moe.yml", "base_model: " + f.base + "\ngate_mode: cheap_embed\nexperts:\n"
                + "  - source_model: " + f.models.get(0) + "\n    positive_prompts: [\"solve the equation\"]\n"
                + "  - source_model: " + f.models.get(1) + "\n    positive_prompts: [\"write python code\"]\n");
        String out = temp.resolve("moe-out").toString();
        CliProcess.Run run = CliProcess.run(temp, "moe", moe, out, "--no-progress");
        assertEquals(0, run.exitCode(), run.stderr());
        assertThat(run.stdout()).contains("assembled a mixtral MoE of 2 experts");
        assertThat(Files.readString(Path.of(out, "config.json"))).contains("MixtralForCausalLM");
        assertThat(Files.readString(Path.of(out, "amalgam-report.json"))).contains("\"gate_mode\" : \"cheap_embed\"");

        CliProcess.Run wrong = CliProcess.run(temp, "moe", config, temp.resolve("moe-wrong").toString());
        assertEquals(2, wrong.exitCode(), wrong.stderr());
        assertThat(wrong.stderr()).contains("is a merge config").contains("amalgam merge").doesNotContain("\tat ");
        assertFalse(Files.exists(temp.resolve("moe-wrong")));
    }

    @Test
    void aBadInputExitsThreeNamingTheFile() throws Exception {
        Path copy = temp.resolve("broken");
        MergeFixture broken = MergeFixture.create(copy, Dtype.BF16, 1, Long.MAX_VALUE);
        Path shard = Path.of(broken.models.get(0), "model.safetensors");
        try (RandomAccessFile raf = new RandomAccessFile(shard.toFile(), "rw")) {
            raf.setLength(raf.length() - 10);
        }
        String cfg = broken.config("t.yml", "merge_method: task_arithmetic\nbase_model: " + broken.base
                + "\nmodels:\n  - model: " + broken.models.get(0) + "\n    parameters: {weight: 1.0}\n");
        CliProcess.Run run = CliProcess.run(temp, "merge", cfg, copy.resolve("out").toString());
        assertEquals(3, run.exitCode(), run.stderr());
        assertThat(run.stderr()).contains("amalgam: error: " + shard).contains("truncated");
        assertFalse(Files.exists(copy.resolve("out")));
    }

    @Test
    void aBadConfigExitsTwoAndATakenDestinationFour() throws Exception {
        String bad = f.config("bad.yml", "merge_method: ties\nbase_model: " + f.base + "\nmodels:\n"
                + "  - model: " + f.models.get(0) + "\n    parameters: {weight: 1.0, densty: 0.5}\n");
        CliProcess.Run run = CliProcess.run(temp, "merge", bad, temp.resolve("never").toString());
        assertEquals(2, run.exitCode(), run.stderr());
        assertThat(run.stderr()).contains("models[0].parameters.densty is not a parameter of ties");

        Path taken = Files.createDirectories(temp.resolve("taken"));
        Files.writeString(taken.resolve("x"), "x");
        CliProcess.Run refused = CliProcess.run(temp, "merge", config, taken.toString());
        assertEquals(4, refused.exitCode(), refused.stderr());
        assertThat(refused.stderr()).contains("exists and is not empty");
    }

    @Test
    void memoryIsBoundedByTheChunkNotByTensorOrModelSize() throws Exception {
        // Tensors of a million elements: three decoded inputs alone need 12 MB, the limit is 4 MB.
        Path root = temp.resolve("large");
        String cfg = millionElementTies(root);
        CliProcess.Run bounded = CliProcess.run(temp, "merge", cfg, root.resolve("out").toString(),
                "--executor-memory-limit", "4m", "--chunk-elements", "65536", "--no-progress");
        assertEquals(0, bounded.exitCode(), bounded.stderr());
    }

    /** A TIES config over a base and two models whose tensors have a million elements each. */
    private static String millionElementTies(Path root) throws Exception {
        List<String> models = dev.amalgam.sample.SampleCheckpoints.write(new org.apache.hadoop.conf.Configuration(),
                root.toString(), new dev.amalgam.sample.SampleCheckpoints.Shape(1, 1024, 1024, 1024), Dtype.BF16, 2, 5,
                Long.MAX_VALUE);
        String cfg = root.resolve("ties.yml").toString();
        Files.writeString(Path.of(cfg), "merge_method: ties\nbase_model: " + root + "/base\nmodels:\n"
                + "  - model: " + models.get(0) + "\n    parameters: {weight: 1.0, density: 0.5}\n"
                + "  - model: " + models.get(1) + "\n    parameters: {weight: 1.0, density: 0.5}\n");
        return cfg;
    }

    @Test
    void aFailedMergePrintsEachCauseOnceAndLeavesStackTracesToTheLog() throws Exception {
        String cfg = temp.resolve("faulty.yml").toString();
        Files.writeString(Path.of(cfg), Files.readString(Path.of(config)).replace(temp + "/", "faulty://" + temp + "/"));
        CliProcess.Run failed = CliProcess.run(List.of("-Dspark.hadoop.fs.faulty.impl="
                        + dev.amalgam.testing.FaultyFileSystem.class.getName(), "-Dfaulty.readsBeforeFailure=0"),
                temp, "merge", cfg, temp.resolve("faulty-out").toString(), "--no-progress");
        assertEquals(5, failed.exitCode(), failed.stderr());
        assertThat(failed.stderr()).contains("task attempts failed").contains("details, stack traces included, in "
                + temp.resolve("amalgam.log")).doesNotContain("\tat ").doesNotContain("Exception in task");
        assertThat(Files.readString(temp.resolve("amalgam.log"))).contains("\tat ");
    }

    @Test
    void verboseAddsTheStackTracesAndSparksWarningsToTheTerminal() throws Exception {
        String cfg = temp.resolve("faulty-verbose.yml").toString();
        Files.writeString(Path.of(cfg), Files.readString(Path.of(config)).replace(temp + "/", "faulty://" + temp + "/"));
        CliProcess.Run failed = CliProcess.run(List.of("-Dspark.hadoop.fs.faulty.impl="
                        + dev.amalgam.testing.FaultyFileSystem.class.getName(), "-Dfaulty.readsBeforeFailure=0"),
                temp, "merge", cfg, temp.resolve("faulty-verbose-out").toString(), "--no-progress", "--verbose");
        assertEquals(5, failed.exitCode(), failed.stderr());
        assertThat(failed.stderr()).contains("task attempts failed").contains("\tat ").contains("WARN TaskSetManager");
    }

    @Test
    void anExecutorLimitThePlanCannotFitExitsTwoBeforeAnyWorkNamingTheSmallestValue() throws Exception {
        Path root = temp.resolve("limit");
        String cfg = millionElementTies(root);
        CliProcess.Run tooSmall = CliProcess.run(temp, "merge", cfg, root.resolve("out").toString(),
                "--executor-memory-limit", "4m", "--chunk-elements", "1048576", "--no-progress");
        assertEquals(2, tooSmall.exitCode(), tooSmall.stderr());
        // 2 tasks at once (local[2]) x 7 buffers of 4 MiB: 2 models, the base, their delta, raw, out, encoded.
        assertThat(tooSmall.stderr()).contains("--executor-memory-limit (spark.amalgam.executor.memoryLimit) is 4.0 MiB")
                .contains("each task holds 28.0 MiB").contains("set it to at least 56m").doesNotContain("\tat ");
        try (java.util.stream.Stream<Path> left = Files.list(root)) {
            assertThat(left.map(p -> p.getFileName().toString())).noneMatch(n -> n.startsWith("out") || n.startsWith(".amalgam"));
        }

        CliProcess.Run enough = CliProcess.run(temp, "merge", cfg, root.resolve("out").toString(),
                "--executor-memory-limit", "56m", "--chunk-elements", "1048576", "--no-progress");
        assertEquals(0, enough.exitCode(), enough.stderr());
    }
}
