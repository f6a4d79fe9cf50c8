package dev.amalgam.cli;

import dev.amalgam.AmalgamException;
import dev.amalgam.job.MergeJob;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaSparkContext;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.concurrent.Callable;

@Command(name = "moe", description = "Assembles a mixture-of-experts model from dense ones, as a mergekit-moe config "
        + "says (base_model, experts, gate_mode, architecture), into DESTINATION. A run that failed or was killed is "
        + "resumed by running the same command again.")
final class MoeCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "CONFIG", description = "mixture-of-experts config (YAML, any Hadoop path)")
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
        // Checked before Spark starts: a merge config given here by mistake is named as such.
        if (MergeJob.parseConfig(new Configuration(), config).moe() == null) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, config + ": is a merge config (it has "
                    + "merge_method), not a mixture-of-experts config; run it with 'amalgam merge', or give "
                    + "base_model and experts here");
        }
        try (JavaSparkContext sc = spark.start()) {
            MergeJob.Result result = new MergeJob(sc).run(options.request(config, destination, overwrite));
            System.out.println(ReportSummary.of(result));
        }
        return 0;
    }
}
