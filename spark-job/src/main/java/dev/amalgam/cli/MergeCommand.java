package dev.amalgam.cli;

import dev.amalgam.job.MergeJob;
import org.apache.spark.api.java.JavaSparkContext;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.concurrent.Callable;

@Command(name = "merge", description = "Merges the checkpoints a merge config names into DESTINATION. A run that "
        + "failed or was killed is resumed by running the same command again.")
class MergeCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "CONFIG", description = "merge config (YAML, any Hadoop path)")
    String config;

    @Parameters(index = "1", paramLabel = "DESTINATION", description = "output directory (any Hadoop path)")
    String destination;

    @Mixin
    SparkOptions spark;

    @Mixin
    MergeOptions options;

    @Option(names = "--overwrite", description = "replace a non-empty destination")
    boolean overwrite;

    @Override
    public Integer call() {
        try (JavaSparkContext sc = spark.start()) {
            MergeJob.Result result = new MergeJob(sc).run(options.request(config, destination, overwrite));
            System.out.println(ReportSummary.of(result));
        }
        return 0;
    }
}
