package dev.amalgam.cli;

import dev.amalgam.job.MergeJob;
import dev.amalgam.job.MergeRequest;
import dev.amalgam.plan.PlanOptions;
import org.apache.spark.api.java.JavaSparkContext;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.concurrent.Callable;

@Command(name = "merge", description = "Merges the checkpoints a merge config names into DESTINATION.")
final class MergeCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "CONFIG", description = "merge config (YAML)")
    String config;

    @Parameters(index = "1", paramLabel = "DESTINATION", description = "output directory (any Hadoop path)")
    String destination;

    @Mixin
    SparkOptions spark;

    @Option(names = "--chunk-elements", defaultValue = "" + PlanOptions.DEFAULT_CHUNK_ELEMENTS,
            description = "elements per chunk, the unit of distributed work (default: ${DEFAULT-VALUE})")
    int chunkElements;

    @Option(names = "--partitions", defaultValue = "0",
            description = "Spark partitions for the chunk stages (default 0: about 8 chunks per task, at least 4 tasks per core)")
    int partitions;

    @Option(names = "--out-shard-size", defaultValue = "5G", converter = Sizes.class,
            description = "largest output shard, e.g. 500M, 2G (default: ${DEFAULT-VALUE})")
    long shardSize;

    @Option(names = "--random-seed", description = "seed of the random masks (overrides the config's random_seed)")
    Long seed;

    @Option(names = "--write-mode", defaultValue = "auto",
            description = "auto, positioned or parts (default: ${DEFAULT-VALUE}: positioned on local paths, parts elsewhere)")
    String writeMode;

    @Option(names = "--overwrite", description = "replace a non-empty destination")
    boolean overwrite;

    @Option(names = "--no-progress", negatable = false, description = "no progress line on stderr")
    boolean noProgress;

    @Override
    public Integer call() {
        MergeRequest request = new MergeRequest(config, destination, new PlanOptions(chunkElements, shardSize), partitions,
                WriteModes.parse(writeMode), overwrite, seed, !noProgress);
        try (JavaSparkContext sc = spark.start()) {
            MergeJob.Result result = new MergeJob(sc).run(request);
            System.out.println(ReportSummary.of(result));
        }
        return 0;
    }
}
