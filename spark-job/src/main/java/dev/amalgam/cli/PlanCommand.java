package dev.amalgam.cli;

import dev.amalgam.job.MergeJob;
import dev.amalgam.job.ResourceSettings;
import dev.amalgam.stats.StatisticsStage;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.SparkConf;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;
import scala.Tuple2;

import java.util.concurrent.Callable;

@Command(name = "plan", description = "Validates a merge config as merge does and prints what the merge will do: "
        + "tensors, chunks, statistics passes, bytes read and written, memory per task, the output layout and an "
        + "estimated time. Reads headers only; starts no Spark application.")
final class PlanCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "CONFIG", description = "merge config (YAML, any Hadoop path)")
    String config;

    @Mixin
    SparkOptions spark;

    @Mixin
    MergeOptions options;

    @Override
    public Integer call() {
        SparkConf conf = spark.conf();
        MergeJob.Inspection inspection = MergeJob.inspect(hadoop(conf), conf, options.request(config, null, false));
        System.out.print(PlanDescription.of(inspection, ResourceSettings.of(conf), conf.get("spark.master"),
                conf.getBoolean(StatisticsStage.ONE_PASS_KEY, true), BenchFigures.of(inspection.planned().method().name())));
        return 0;
    }

    /** The Hadoop configuration a Spark application would get: the spark.hadoop.* settings. */
    private static Configuration hadoop(SparkConf conf) {
        Configuration hadoop = new Configuration();
        for (Tuple2<String, String> e : conf.getAll()) {
            if (e._1().startsWith("spark.hadoop.")) {
                hadoop.set(e._1().substring("spark.hadoop.".length()), e._2());
            }
        }
        return hadoop;
    }
}
