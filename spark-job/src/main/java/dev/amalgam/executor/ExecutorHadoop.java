package dev.amalgam.executor;

import org.apache.hadoop.conf.Configuration;
import org.apache.spark.SparkEnv;
import org.apache.spark.deploy.SparkHadoopUtil;

/**
 * The Hadoop configuration an executor reads and writes with, including spark.hadoop.* settings.
 * Built once per executor (per Spark application in a test JVM) and handed out as copies: a new
 * {@code Configuration} parses core-default.xml and the site files again, tens of milliseconds per
 * task, and often enough in a short merge that the JIT compiles the XML parser (about 0.7 s of CPU).
 */
public final class ExecutorHadoop {
    private record Built(SparkEnv env, Configuration configuration) {
    }

    private static volatile Built built;

    private ExecutorHadoop() {
    }

    public static Configuration configuration() {
        SparkEnv env = SparkEnv.get();
        if (env == null) {
            return new Configuration();
        }
        Built b = built;
        if (b == null || b.env() != env) {
            synchronized (ExecutorHadoop.class) {
                b = built;
                if (b == null || b.env() != env) {
                    Configuration c = SparkHadoopUtil.get().newConfiguration(env.conf());
                    c.size(); // parse the resources now, once, so copies carry them
                    b = new Built(env, c);
                    built = b;
                }
            }
        }
        // A copy, so a caller's settings stay its own; copying does not parse again.
        return new Configuration(b.configuration());
    }
}
