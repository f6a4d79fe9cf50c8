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

@Command(name = "demo", description = "Generates sample checkpoints, merges them with TIES on local Spark, prints the report.")
final class DemoCommand implements Callable<Integer> {
    @Option(names = "--work-dir", defaultValue = "amalgam-demo",
            description = "where the sample checkpoints, config and merge go (default: ${DEFAULT-VALUE}); replaced on each run")
    File workDir;

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
        String config = """
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
        File configFile = new File(workDir, "ties.yml");
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
}
