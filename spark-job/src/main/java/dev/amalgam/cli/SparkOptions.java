package dev.amalgam.cli;

import dev.amalgam.job.SparkSetup;
import org.apache.spark.api.java.JavaSparkContext;
import picocli.CommandLine.Option;

/** Options shared by the commands that start Spark. */
final class SparkOptions {
    @Option(names = "--master", description = "Spark master (default: what spark-submit set, else local[*])")
    String master;

    @Option(names = "--executor-memory-limit",
            description = "Hard limit of each executor's off-heap chunk memory (Arrow allocator), e.g. 2g "
                    + "(default: spark.amalgam.executor.memoryLimit, else 4g)")
    String memoryLimit;

    JavaSparkContext start() {
        return new JavaSparkContext(SparkSetup.conf(master, memoryLimit));
    }
}
