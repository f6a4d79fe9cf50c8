package dev.amalgam.plan;

import dev.amalgam.kernels.CpuBackend;
import dev.amalgam.kernels.gpu.DeviceChunkKernels;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Checks, from the plan alone and before any task runs, that the memory settings leave room for
 * the work: every task holds a working set sized by the plan's largest chunk, the tasks of an
 * executor share its Arrow limit (and of a GPU, its GPU budget), and the driver holds the plan.
 * A setting that cannot work is a config error naming the setting and the smallest value that
 * does, instead of a task failure after Spark has started work.
 */
public final class ResourceCheck {
    /** Heap a driver needs beyond the plan: Spark's own structures, the config, the reports. */
    static final long DRIVER_BASELINE = 192L << 20;
    /** Plan and per-chunk reports are held about this many times over (broadcast copies, results). */
    static final int DRIVER_COPIES = 4;

    private ResourceCheck() {
    }

    /**
     * The settings the plan is checked against.
     *
     * @param executorLimit     the executor's Arrow limit in bytes
     * @param tasksPerExecutor  tasks an executor runs at once
     * @param gpuHost           whether a task may run on a GPU (its page-locked buffers are larger)
     * @param gpuLimit          the GPU budget of one GPU in bytes; -1 when not set (then 80% of the device)
     * @param tasksPerGpu       tasks that share one GPU
     * @param driverHeap        the driver's maximum heap in bytes
     * @param offHeapRoom       memory an executor's container grants outside its heap for chunk buffers
     *                          (the memory overhead less what the JVM itself takes); -1 when nothing
     *                          but the machine bounds it (local mode)
     */
    public record Settings(long executorLimit, int tasksPerExecutor, boolean gpuHost, long gpuLimit, int tasksPerGpu,
                           long driverHeap, long offHeapRoom) {

        public Settings(long executorLimit, int tasksPerExecutor, boolean gpuHost, long gpuLimit, int tasksPerGpu,
                        long driverHeap) {
            this(executorLimit, tasksPerExecutor, gpuHost, gpuLimit, tasksPerGpu, driverHeap, -1);
        }
    }

    /** The largest chunk of the plan, in elements. */
    public static int maxChunk(MergePlan plan) {
        int max = 0;
        for (ChunkPlan c : plan.chunks()) {
            max = Math.max(max, c.count());
        }
        return max;
    }

    /** Arrow bytes one task holds for the plan's largest chunk. */
    public static long taskHostBytes(MergePlan plan, boolean gpuHost) {
        // A companion input (a Fisher diagonal) takes a buffer like a model.
        return hostBytes(maxChunk(plan), plan.modelCount() + plan.companionSlots(), plan.settings().hasBase(), gpuHost,
                plan.quantizedOutput());
    }

    /** Arrow bytes one task holds for chunks of {@code count} elements, on the backend it may run. */
    private static long hostBytes(int count, int models, boolean hasBase, boolean gpuHost, boolean fp8Output) {
        long cpu = CpuBackend.hostBytes(count, models, hasBase);
        long host = gpuHost ? Math.max(cpu, DeviceChunkKernels.hostBytes(count, models, hasBase)) : cpu;
        return host + fp8Bytes(count, fp8Output);
    }

    /**
     * FP8 output's buffers beside the chunk's: a byte a value and the block scales, at most four
     * bytes a value (blocks of one element).
     */
    private static long fp8Bytes(int count, boolean fp8Output) {
        return fp8Output ? 5L * count : 0;
    }

    /**
     * The most elements a chunk may have for the tasks of an executor to hold their working sets
     * at once under {@code s}: the largest a tensor that needs statistics may be to be merged in
     * one chunk, with its statistics computed in the task that merges it (one read, not two).
     * 0 where it cannot be known before the tasks run (a GPU whose budget is unset).
     */
    public static int largestChunk(Settings s, int models, boolean hasBase, boolean fp8Output) {
        if (s.gpuHost() && s.gpuLimit() < 0) {
            return 0;
        }
        int low = 0;
        int high = PlanOptions.MAX_CHUNK_ELEMENTS;
        while (low < high) {
            int mid = (int) (((long) low + high + 1) / 2);
            if (fits(s, mid, models, hasBase, fp8Output)) {
                low = mid;
            } else {
                high = mid - 1;
            }
        }
        return low;
    }

    private static boolean fits(Settings s, int count, int models, boolean hasBase, boolean fp8Output) {
        long host = hostBytes(count, models, hasBase, s.gpuHost(), fp8Output);
        if (s.gpuHost() && DeviceChunkKernels.deviceBytes(count, models, hasBase) * s.tasksPerGpu() > s.gpuLimit()) {
            return false;
        }
        // Small chunks never come near the limit; whole tensors can, so they also stay inside what a
        // cluster manager grants beyond the heap (a YARN container is killed past it).
        long room = s.offHeapRoom() < 0 ? s.executorLimit() : Math.min(s.executorLimit(), s.offHeapRoom());
        return host * s.tasksPerExecutor() <= room;
    }

    /** GPU bytes one task holds for the plan's largest chunk. */
    public static long taskDeviceBytes(MergePlan plan) {
        return DeviceChunkKernels.deviceBytes(maxChunk(plan), plan.modelCount(), plan.settings().hasBase(),
                plan.companionSlots());
    }

    /** A generous estimate of the driver heap the plan, its broadcasts and the chunk reports take. */
    public static long driverBytes(MergePlan plan) {
        long tensors = 0;
        for (TensorPlan t : plan.tensors()) {
            tensors += 512 + 2L * t.name().length() + 96L * (t.models().length + 1) + 8L * t.shape().length;
        }
        long chunks = 160L * plan.chunks().length;
        long shards = 128L * plan.shards().length;
        return DRIVER_BASELINE + DRIVER_COPIES * (tensors + chunks + shards);
    }

    /** What does not fit, each naming the setting and the smallest value that works; empty when all fit. */
    public static List<String> problems(MergePlan plan, Settings s) {
        List<String> problems = new ArrayList<>();
        int max = maxChunk(plan);
        String working = "chunks of " + max + " elements and " + plan.modelCount() + " model"
                + (plan.modelCount() == 1 ? "" : "s") + (plan.settings().hasBase() ? " plus the base" : "");
        long perTask = taskHostBytes(plan, s.gpuHost());
        long needed = perTask * s.tasksPerExecutor();
        if (needed > s.executorLimit()) {
            problems.add("--executor-memory-limit (spark.amalgam.executor.memoryLimit) is " + size(s.executorLimit())
                    + ", but each task holds " + size(perTask) + " of chunk buffers for " + working + ", and "
                    + s.tasksPerExecutor() + " task" + (s.tasksPerExecutor() == 1 ? " runs" : "s run")
                    + " at once in an executor: set it to at least " + setting(needed)
                    + ", or lower --chunk-elements (a method that merges whole tensors, such as nuslerp with "
                    + "nuslerp_row_wise, needs the limit to hold the largest tensor)");
        }
        if (s.gpuLimit() >= 0) {
            long perGpuTask = taskDeviceBytes(plan);
            long gpuNeeded = perGpuTask * s.tasksPerGpu();
            if (gpuNeeded > s.gpuLimit()) {
                problems.add("--gpu-memory-limit (spark.amalgam.gpu.memoryLimit) is " + size(s.gpuLimit())
                        + ", but each task holds " + size(perGpuTask) + " of GPU buffers for " + working + ", and "
                        + s.tasksPerGpu() + " task" + (s.tasksPerGpu() == 1 ? "" : "s") + " share a GPU: set it to at "
                        + "least " + setting(gpuNeeded) + ", or lower --chunk-elements");
            }
        }
        long driver = driverBytes(plan);
        if (driver > s.driverHeap()) {
            problems.add("the driver's heap (spark.driver.memory; -Xmx in JAVA_OPTS for scripts/amalgam) is "
                    + size(s.driverHeap()) + ", but the plan of " + plan.tensors().length + " tensors in "
                    + plan.chunks().length + " chunks needs about " + size(driver) + ": set it to at least "
                    + setting(driver) + ", or raise --chunk-elements for fewer chunks");
        }
        return problems;
    }

    /** A value for the setting: whole MiB, rounded up. */
    static String setting(long bytes) {
        long mib = (bytes + (1L << 20) - 1) >> 20;
        return mib % 1024 == 0 ? (mib / 1024) + "g" : mib + "m";
    }

    static String size(long bytes) {
        return String.format(Locale.ROOT, "%.1f MiB", bytes / 1048576.0);
    }
}
