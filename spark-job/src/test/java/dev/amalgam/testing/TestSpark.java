package dev.amalgam.testing;

import dev.amalgam.job.SparkSetup;
import org.apache.spark.api.java.JavaSparkContext;

/**
 * One local Spark context for the whole test JVM (starting one costs seconds). Two cores, like
 * the CI machine, and two attempts per task so retries happen; the same settings as production
 * (Kryo with registration required).
 */
public final class TestSpark {
    private static JavaSparkContext context;

    private TestSpark() {
    }

    public static synchronized JavaSparkContext context() {
        if (context == null) {
            context = new JavaSparkContext(SparkSetup.conf("local[2,2]", "1g")
                    .set("spark.hadoop.fs.faulty.impl", FaultyFileSystem.class.getName())
                    .set("spark.hadoop.fs.faulty.impl.disable.cache", "true"));
            Runtime.getRuntime().addShutdownHook(new Thread(context::stop));
        }
        return context;
    }
}
