package dev.amalgam.job;

import dev.amalgam.AmalgamException;
import dev.amalgam.kernels.gpu.CudaDriver;
import dev.amalgam.executor.ExecutorKernels;
import dev.amalgam.executor.ExecutorMemory;
import dev.amalgam.sample.GeneratedFileSystem;
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
        return conf(master, memoryLimit, null, null);
    }

    /**
     * @param gpu            auto, on or off ({@value ExecutorKernels#MODE_KEY}); null keeps the
     *                       configuration's, else auto
     * @param gpuMemoryLimit the GPU budget of an executor's tasks, e.g. "20g"; null keeps the
     *                       configuration's, else 80% of the device
     */
    public static SparkConf conf(String master, String memoryLimit, String gpu, String gpuMemoryLimit) {
        SparkConf conf = new SparkConf().setAppName("amalgam-merge");
        if (master != null) {
            conf.setMaster(master);
        } else if (!conf.contains("spark.master")) {
            conf.setMaster("local[*]");
        }
        SparkAuthentication.apply(conf, System.getenv());
        conf.set("spark.serializer", "org.apache.spark.serializer.KryoSerializer");
        conf.set("spark.kryo.registrator", AmalgamKryoRegistrator.class.getName());
        conf.set("spark.kryo.registrationRequired", "true");
        conf.setIfMissing("spark.ui.enabled", "false");
        // Generated checkpoints of real layouts (bench --layout), whatever the class path's service files say.
        conf.setIfMissing("spark.hadoop.fs." + GeneratedFileSystem.SCHEME + ".impl", GeneratedFileSystem.class.getName());
        conf.setIfMissing("spark.ui.showConsoleProgress", "false");
        if (memoryLimit != null) {
            conf.set(ExecutorMemory.LIMIT_KEY, memoryLimit);
        } else {
            conf.setIfMissing(ExecutorMemory.LIMIT_KEY, "4g");
        }
        if (gpu != null) {
            conf.set(ExecutorKernels.MODE_KEY, gpu);
        }
        if (gpuMemoryLimit != null) {
            conf.set(ExecutorKernels.GPU_MEMORY_KEY, gpuMemoryLimit);
        }
        checkGpu(conf);
        return conf;
    }

    /**
     * Rejects a bad --gpu value, and {@code --gpu on} in local mode on a machine without a usable
     * GPU, before anything starts: there the driver is the executor, so it knows the answer.
     */
    static void checkGpu(SparkConf conf) {
        ExecutorKernels.Mode mode;
        try {
            mode = ExecutorKernels.Mode.parse(conf.get(ExecutorKernels.MODE_KEY, "auto"));
        } catch (IllegalArgumentException e) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, e.getMessage());
        }
        if (mode == ExecutorKernels.Mode.ON && conf.get("spark.master", "").startsWith("local")) {
            CudaDriver.Availability cuda = CudaDriver.probe();
            if (!cuda.usable()) {
                throw new AmalgamException(AmalgamException.Kind.EXECUTION, "--gpu on, but this machine has no usable"
                        + " GPU: " + cuda.reason() + "; use --gpu auto to fall back to the CPU, or --gpu off");
            }
        }
    }
}
