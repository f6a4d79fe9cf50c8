package dev.amalgam.job;

import dev.amalgam.plan.ResourceCheck;
import org.apache.spark.SparkConf;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The settings a plan is checked against come from the Spark configuration as a cluster manager reads it. */
class ResourceSettingsTest {

    @Test
    void localModeRunsATaskPerCoreAndOnlyTheMachineBoundsOffHeapMemory() {
        ResourceCheck.Settings s = ResourceSettings.of(new SparkConf(false).set("spark.master", "local[3]")
                .set("spark.amalgam.executor.memoryLimit", "2g").set("spark.amalgam.gpu", "off"));
        assertEquals(3, s.tasksPerExecutor());
        assertEquals(2L << 30, s.executorLimit());
        assertEquals(-1, s.offHeapRoom());
    }

    @Test
    void onAClusterWholeTensorsMustAlsoFitTheContainersOverheadLessTheJvmsOwn() {
        SparkConf conf = new SparkConf(false).set("spark.master", "yarn").set("spark.executor.cores", "4")
                .set("spark.executor.memory", "8g").set("spark.amalgam.gpu", "off");
        ResourceCheck.Settings defaults = ResourceSettings.of(conf);
        assertEquals(4, defaults.tasksPerExecutor());
        // Spark's default overhead: 10% of the heap, at least 384 MiB.
        assertEquals((long) (0.1 * (8L << 30)) - ResourceSettings.JVM_NATIVE, defaults.offHeapRoom());
        assertEquals((6L << 30) - ResourceSettings.JVM_NATIVE,
                ResourceSettings.of(conf.clone().set("spark.executor.memoryOverhead", "6g")).offHeapRoom());
        assertEquals(0, ResourceSettings.of(new SparkConf(false).set("spark.master", "spark://m:7077")
                .set("spark.amalgam.gpu", "off")).offHeapRoom(), "1g heap: 384 MiB overhead, all of it the JVM's");
    }
}
