package dev.amalgam.cli;

import dev.amalgam.job.MergeJob;
import dev.amalgam.job.MergeRequest;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.sample.SampleCheckpoints;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaSparkContext;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "demo", description = "Generates sample checkpoints, merges them with TIES (or an example config) on "
        + "local Spark, prints the report.")
final class DemoCommand implements Callable<Integer> {
    @Option(names = "--work-dir", defaultValue = "amalgam-demo",
            description = "where the sample checkpoints, config and merge go (default: ${DEFAULT-VALUE}); replaced on each run")
    File workDir;

    @Option(names = "--example", paramLabel = "CONFIG",
            description = "merge with this config (one of conf/examples/) instead of the built-in TIES one: its model "
                    + "paths are replaced by the generated checkpoints (base, fine-tunes, Fisher and second-moment "
                    + "companions, a LoRA adapter)")
    File example;

    @Mixin
    SparkOptions spark;

    @Override
    public Integer call() throws Exception {
        Configuration hadoop = new Configuration();
        String root = workDir.getAbsolutePath();
        SampleCheckpoints.delete(hadoop, root);
        System.out.println("generating a base model and two fine-tunes (bfloat16, Llama-shaped) in " + root);
        List<String> models = SampleCheckpoints.write(hadoop, root, SampleCheckpoints.Shape.tiny(), Dtype.BF16, 2, 42,
                200_000);
        // Companions for the methods that read them (fisher, ota), beside each fine-tune.
        for (int i = 0; i < models.size(); i++) {
            for (String kind : dev.amalgam.config.ModelSpec.COMPANION_KINDS) {
                SampleCheckpoints.writeCompanion(hadoop, ExampleConfigs.companion(models.get(i), kind),
                        SampleCheckpoints.Shape.tiny(), Dtype.BF16, kind, i + 1, 42);
            }
        }
        String config = example != null ? exampleOnDemo(root, models) : """
                merge_method: ties
                base_model: %s
                models:
                  - model: %s
                    parameters: {weight: 1.0, density: [1, 0.7, 0.3]}
                  - model: %s
                    parameters:
                      weight: [{filter: mlp, value: 0.5}, {value: 0.8}]
                      density: 0.5
                parameters: {normalize: true, lambda: 1.0}
                dtype: float32
                out_dtype: bfloat16
                """.formatted(root + "/base", models.get(0), models.get(1));
        File configFile = new File(workDir, example != null ? example.getName() : "ties.yml");
        Files.writeString(configFile.toPath(), config, StandardCharsets.UTF_8);
        System.out.println("merge config " + configFile + ":\n" + config);
        MergeRequest request = MergeRequest.of(configFile.getAbsolutePath(), root + "/merged")
                .withChunkElements(4096).withShardBytes(300_000).withProgress(true);
        try (JavaSparkContext sc = spark.start()) {
            MergeJob.Result result = new MergeJob(sc).run(request);
            System.out.println(ReportSummary.of(result));
        }
        System.out.println("inspect it with: scripts/amalgam inspect " + root + "/merged");
        return 0;
    }

    /** The example config with its paths on the demo's checkpoints (an adapter is generated when it reads one). */
    private String exampleOnDemo(String root, List<String> models) throws java.io.IOException {
        if (!example.isFile()) {
            throw new dev.amalgam.AmalgamException(dev.amalgam.AmalgamException.Kind.CONFIG, example
                    + " is not a file; give one of conf/examples/*.yml");
        }
        String yaml = Files.readString(example.toPath(), StandardCharsets.UTF_8);
        if (yaml.contains("+")) {
            SampleCheckpoints.writeAdapter(new Configuration(), root + "/adapter", SampleCheckpoints.Shape.tiny(),
                    Dtype.BF16, 4, 8.0, false, List.of("q_proj", "v_proj"), 2);
        }
        return ExampleConfigs.onCheckpoints(yaml, root + "/base", models, root + "/adapter");
    }
}
