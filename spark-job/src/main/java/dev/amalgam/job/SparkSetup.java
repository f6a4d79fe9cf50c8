package dev.amalgam.job;

import dev.amalgam.merge.ExecutorMemory;
import org.apache.spark.SparkConf;

/** The Spark settings every Amalgam job needs, whatever the master. */
public final class SparkSetup {
    private SparkSetup() {
    }

    /**
     * @param master      null keeps what spark-submit set (or local[*] when nothing did)
     * @param memoryLimit the executor Arrow allocator limit, e.g. "4g"; null keeps what the Spark
     *                    configuration says, else 4g
     */
    public static SparkConf conf(String master, String memoryLimit) {
        SparkConf conf = new SparkConf().setAppName("amalgam-merge");
        if (master != null) {
            conf.setMaster(master);
        } else if (!conf.contains("spark.master")) {
            conf.setMaster("local[*]");
        }
        conf.set("spark.serializer", "org.apache.spark.serializer.KryoSerializer");
        conf.set("spark.kryo.registrator", AmalgamKryoRegistrator.class.getName());
        conf.set("spark.kryo.registrationRequired", "true");
        conf.setIfMissing("spark.ui.enabled", "false");
        conf.setIfMissing("spark.ui.showConsoleProgress", "false");
        if (memoryLimit != null) {
            conf.set(ExecutorMemory.LIMIT_KEY, memoryLimit);
        } else {
            conf.setIfMissing(ExecutorMemory.LIMIT_KEY, "4g");
        }
        return conf;
    }
}
