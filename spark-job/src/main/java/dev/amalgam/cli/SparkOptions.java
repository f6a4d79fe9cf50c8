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

    @Option(names = "--gpu", paramLabel = "auto|on|off",
            description = "where executors run the kernels: auto (a usable GPU, else the CPU; each executor logs which"
                    + " and why), on (fail without a usable GPU), off (CPU) (default: spark.amalgam.gpu, else auto)")
    String gpu;

    @Option(names = "--gpu-memory-limit",
            description = "GPU memory the tasks of one executor may hold on its GPU, e.g. 20g "
                    + "(default: spark.amalgam.gpu.memoryLimit, else 80%% of the GPU)")
    String gpuMemoryLimit;

    /** The Spark configuration a run with these options gets, without starting Spark. */
    org.apache.spark.SparkConf conf() {
        return SparkSetup.conf(master, memoryLimit, gpu, gpuMemoryLimit);
    }

    JavaSparkContext start() {
        org.apache.spark.SparkConf conf = conf();
        if (conf.get("spark.master", "").startsWith("local") && Boolean.parseBoolean(
                System.getProperty("amalgam.warmup", "true"))) {
            // In local mode this JVM runs the tasks: compile their loops while Spark starts.
            dev.amalgam.executor.KernelWarmup.start();
        }
        return new JavaSparkContext(conf);
    }
}
