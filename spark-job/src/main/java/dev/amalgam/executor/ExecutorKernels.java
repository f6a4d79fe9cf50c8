package dev.amalgam.executor;

import dev.amalgam.kernels.CpuBackend;
import dev.amalgam.kernels.KernelBackend;
import dev.amalgam.kernels.Primitive;
import dev.amalgam.kernels.gpu.CudaDevice;
import dev.amalgam.kernels.gpu.CudaDriver;
import dev.amalgam.kernels.gpu.GpuBackend;
import dev.amalgam.kernels.gpu.GpuMemoryBudget;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.resource.ResourceInformation;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/**
 * Which kernel backend this executor's tasks use ({@value #MODE_KEY}: auto, on, off), decided
 * once per executor JVM and device and logged in one line saying which and why. The GPU is the
 * one Spark scheduled for the task ({@code TaskContext.resources().get("gpu")}) when the cluster
 * schedules GPUs, else device 0.
 */
public final class ExecutorKernels {
    public static final String MODE_KEY = "spark.amalgam.gpu";
    public static final String GPU_MEMORY_KEY = "spark.amalgam.gpu.memoryLimit";
    /** Without a configured budget, Amalgam's tasks may take this fraction of the device's memory. */
    static final double DEFAULT_GPU_FRACTION = 0.8;

    private static final Logger LOG = LoggerFactory.getLogger(ExecutorKernels.class);
    private static final Map<String, KernelBackend> CHOSEN = new HashMap<>();
    /** Set only by tests that run a whole local-mode job on a GPU backend over an emulated device. */
    private static volatile KernelBackend testOverride;

    private ExecutorKernels() {
    }

    /** The kernel selection a user asked for. */
    public enum Mode {
        AUTO, ON, OFF;

        public static Mode parse(String value) {
            try {
                return valueOf(value.trim().toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--gpu (" + MODE_KEY + ") is '" + value + "'; use auto, on or off");
            }
        }
    }

    /** Whether the CPU-fallback line was logged in this JVM (once per method's primitive gap). */
    private static final java.util.Set<String> FALLBACK_LOGGED = java.util.concurrent.ConcurrentHashMap.newKeySet();

    /**
     * The backend for the calling task, given the primitives its plan needs: the chosen backend
     * when it declares them all, else the CPU (the planner already said so on the driver; the
     * executor logs it once).
     */
    public static KernelBackend forTask(java.util.Set<Primitive> needed) {
        KernelBackend backend = forTask();
        if (backend.primitives().containsAll(needed)) {
            return backend;
        }
        java.util.Set<Primitive> missing = java.util.EnumSet.copyOf(needed);
        missing.removeAll(backend.primitives());
        if (FALLBACK_LOGGED.add(missing.toString())) {
            LOG.info("Amalgam kernels: cpu for this merge because {} has no {} kernel yet", backend.description(), missing);
        }
        return CpuBackend.INSTANCE;
    }

    /** The backend for the calling task. */
    public static KernelBackend forTask() {
        KernelBackend override = testOverride;
        if (override != null) {
            return override;
        }
        SparkEnv env = SparkEnv.get();
        SparkConf conf = env == null ? new SparkConf(false) : env.conf();
        TaskContext task = TaskContext.get();
        boolean scheduled = task != null && task.resourcesJMap().containsKey("gpu");
        return choose(Mode.parse(conf.get(MODE_KEY, "auto")), deviceOfTask(task), scheduled,
                conf.contains(GPU_MEMORY_KEY) ? conf.getSizeAsBytes(GPU_MEMORY_KEY) : -1);
    }

    /**
     * Makes every task of this JVM use {@code backend} until the returned handle is closed: for
     * tests in local mode only (the executors are this JVM).
     */
    public static AutoCloseable overrideForTests(KernelBackend backend) {
        testOverride = backend;
        return () -> testOverride = null;
    }

    /** The device ordinal Spark assigned to the task, or 0 where Spark does not schedule GPUs. */
    static int deviceOfTask(TaskContext task) {
        return task == null ? 0 : deviceOf(task.resourcesJMap().get("gpu"));
    }

    /** The CUDA ordinal of the first GPU address Spark assigned, or 0 when none was. */
    static int deviceOf(ResourceInformation gpu) {
        if (gpu == null || gpu.addresses().length == 0) {
            return 0;
        }
        String address = gpu.addresses()[0];
        try {
            return Integer.parseInt(address.trim());
        } catch (NumberFormatException e) {
            throw new IllegalStateException("Spark assigned GPU address '" + address + "', which is not a CUDA device"
                    + " ordinal; the discovery script (conf/gpu-discovery.sh) must list ordinals such as \"0\"");
        }
    }

    /**
     * Decides once per JVM, mode and device.
     *
     * @param scheduled      whether Spark assigned {@code device} to the task (else it is the default 0)
     * @param gpuMemoryLimit bytes, or -1 for {@value #DEFAULT_GPU_FRACTION} of the device's memory
     */
    public static synchronized KernelBackend choose(Mode mode, int device, boolean scheduled, long gpuMemoryLimit) {
        String key = mode + "/" + device;
        KernelBackend chosen = CHOSEN.get(key);
        if (chosen == null) {
            chosen = decide(mode, device, scheduled ? "GPU " + device + " assigned by Spark"
                    : "Spark schedules no GPUs here, so device " + device, gpuMemoryLimit);
            CHOSEN.put(key, chosen);
        }
        return chosen;
    }

    private static KernelBackend decide(Mode mode, int device, String source, long gpuMemoryLimit) {
        if (mode == Mode.OFF) {
            LOG.info("Amalgam kernels: {} because --gpu off", CpuBackend.INSTANCE.description());
            return CpuBackend.INSTANCE;
        }
        CudaDriver.Availability cuda = CudaDriver.probe();
        String reason = cuda.reason();
        if (cuda.usable()) {
            try {
                CudaDevice gpu = CudaDevice.open(device);
                long budget = gpuMemoryLimit > 0 ? gpuMemoryLimit : (long) (gpu.totalMemory() * DEFAULT_GPU_FRACTION);
                GpuBackend backend = new GpuBackend(gpu, new GpuMemoryBudget(budget, gpuMemoryLimit > 0
                        ? GPU_MEMORY_KEY : "default " + (int) (DEFAULT_GPU_FRACTION * 100) + "% of the GPU; set --gpu-memory-limit"));
                LOG.info("Amalgam kernels: {} because --gpu {} found a usable GPU ({}; budget {} MiB)",
                        gpu.description(), mode.name().toLowerCase(Locale.ROOT), source, budget >> 20);
                return backend;
            } catch (RuntimeException e) {
                reason = "GPU " + device + " could not be opened: " + e.getMessage();
            }
        }
        if (mode == Mode.ON) {
            throw new GpuUnavailableException("--gpu on, but this executor has no usable GPU (" + source + "): " + reason
                    + "; use --gpu auto to fall back to the CPU, or --gpu off");
        }
        LOG.info("Amalgam kernels: {} because --gpu auto found no usable GPU ({}): {}", CpuBackend.INSTANCE.description(),
                source, reason);
        return CpuBackend.INSTANCE;
    }

    /** {@code --gpu on} on an executor without a usable GPU. */
    public static final class GpuUnavailableException extends RuntimeException {
        public GpuUnavailableException(String message) {
            super(message);
        }
    }
}
