package dev.amalgam.job;

import dev.amalgam.executor.ExecutorKernels;
import dev.amalgam.executor.ExecutorMemory;
import dev.amalgam.kernels.gpu.CudaDriver;
import dev.amalgam.plan.ResourceCheck;
import org.apache.spark.SparkConf;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Reads, from the Spark configuration, the settings {@link ResourceCheck} checks a plan against. */
public final class ResourceSettings {
    private static final Pattern LOCAL = Pattern.compile("local(?:-cluster)?(?:\\[(\\*|\\d+)(?:,\\s*\\d+)?])?");

    private ResourceSettings() {
    }

    /** What the JVM itself takes of an executor's overhead (thread stacks, code cache, Netty, metaspace). */
    static final long JVM_NATIVE = 384L << 20;

    /**
     * An executor's memory overhead (Spark's default: 10% of spark.executor.memory, at least
     * 384 MiB) less what its JVM takes natively: the room whole-tensor chunks may fill.
     */
    static long offHeapRoom(SparkConf conf) {
        long heap = conf.getSizeAsBytes("spark.executor.memory", "1g");
        long overhead = conf.contains("spark.executor.memoryOverhead")
                ? conf.getSizeAsMb("spark.executor.memoryOverhead", "384") << 20
                : Math.max(384L << 20, (long) (heap * conf.getDouble("spark.executor.memoryOverheadFactor", 0.10)));
        return Math.max(0, overhead - JVM_NATIVE);
    }

    public static ResourceCheck.Settings of(SparkConf conf) {
        String master = conf.get("spark.master", "local[*]");
        boolean local = master.startsWith("local") && !master.startsWith("local-cluster");
        int taskCpus = Math.max(1, conf.getInt("spark.task.cpus", 1));
        int tasks;
        if (local) {
            Matcher m = LOCAL.matcher(master);
            String n = m.matches() ? m.group(1) : null;
            tasks = n == null ? 1 : n.equals("*") ? Runtime.getRuntime().availableProcessors() : Integer.parseInt(n);
        } else {
            // Unset in standalone mode means every core of a worker; the plan cannot know those, so
            // one task is assumed and the executor's own check stays the last word.
            tasks = Math.max(1, conf.getInt("spark.executor.cores", 1) / taskCpus);
        }
        long limit = conf.getSizeAsBytes(ExecutorMemory.LIMIT_KEY, String.valueOf(ExecutorMemory.DEFAULT_LIMIT));
        String mode = conf.get(ExecutorKernels.MODE_KEY, "auto").trim().toLowerCase(java.util.Locale.ROOT);
        boolean gpuHost = mode.equals("on") || (mode.equals("auto") && local && CudaDriver.probe().usable());
        long gpuLimit = conf.contains(ExecutorKernels.GPU_MEMORY_KEY)
                ? conf.getSizeAsBytes(ExecutorKernels.GPU_MEMORY_KEY) : -1;
        double amount = conf.getDouble("spark.task.resource.gpu.amount", 0);
        int tasksPerGpu = local ? tasks : amount > 0 ? Math.max(1, (int) Math.floor(1.0 / amount)) : 1;
        return new ResourceCheck.Settings(limit, tasks, gpuHost && !mode.equals("off"), gpuLimit, tasksPerGpu,
                Runtime.getRuntime().maxMemory(), local ? -1 : offHeapRoom(conf));
    }
}
