package dev.amalgam.executor;

import org.apache.hadoop.conf.Configuration;
import org.apache.spark.SparkEnv;
import org.apache.spark.deploy.SparkHadoopUtil;

/** The Hadoop configuration an executor reads and writes with, including spark.hadoop.* settings. */
public final class ExecutorHadoop {
    private ExecutorHadoop() {
    }

    public static Configuration configuration() {
        SparkEnv env = SparkEnv.get();
        return env == null ? new Configuration() : SparkHadoopUtil.get().newConfiguration(env.conf());
    }
}
