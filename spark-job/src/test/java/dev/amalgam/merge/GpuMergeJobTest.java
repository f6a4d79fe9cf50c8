package dev.amalgam.merge;

import dev.amalgam.cli.ExampleConfigs;
import dev.amalgam.method.LinearMethod;
import dev.amalgam.method.MergeMethod;
import dev.amalgam.method.MergeMethods;
import dev.amalgam.method.TaskVectorMethod;
import dev.amalgam.executor.ExecutorKernels;

import dev.amalgam.job.MergeJob;
import dev.amalgam.job.MergeRequest;
import dev.amalgam.kernels.CpuBackend;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.KernelBackend;
import dev.amalgam.kernels.Primitive;
import dev.amalgam.kernels.gpu.CudaDevice;
import dev.amalgam.kernels.gpu.CudaDriver;
import dev.amalgam.kernels.gpu.Device;
import dev.amalgam.kernels.gpu.EmulatedDevice;
import dev.amalgam.kernels.gpu.GpuBackend;
import dev.amalgam.kernels.gpu.GpuMemoryBudget;
import dev.amalgam.testing.MergeFixture;
import dev.amalgam.testing.TestSpark;
import org.apache.arrow.memory.BufferAllocator;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * A whole merge job on the GPU backend writes the bytes the CPU backend writes, for every method
 * and stored dtype, with chunks that cross tensors and several chunks per task in flight. Runs on
 * the emulated device (the CUDA sources on the CPU) everywhere, and on a real GPU where there is
 * one; {@link MethodReferenceTest} ties the CPU bytes to the whole-tensor reference.
 */
class GpuMergeJobTest {
    @TempDir
    static Path temp;
    private static Map<Dtype, MergeFixture> fixtures;

    @BeforeAll
    static void generate() {
        fixtures = MergeFixture.perDtype(temp, 3, 6_000);
    }

    static Stream<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>();
        for (String method : MergeMethods.names()) {
            for (Dtype dtype : Dtype.floats()) {
                cases.add(Arguments.of(method, dtype));
            }
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0} on {1}, emulated device")
    @MethodSource("cases")
    void emulatedGpuWritesTheCpuBytes(String method, Dtype dtype) throws Exception {
        EmulatedDevice device = new EmulatedDevice();
        compare(method, dtype, device, "emulated");
        // A method whose plan needs a primitive the device kernels lack runs its tasks on the CPU.
        assertEquals(!CPU_ONLY.contains(method), device.launches() > 0, method);
    }

    /**
     * Methods whose primitives have no CUDA kernel yet (their tasks run on the CPU on a GPU
     * executor; the comparison above still checks they write the CPU's bytes). None today; the
     * fallback itself is tested with a backend declaring fewer primitives (slerp, below).
     */
    private static final java.util.Set<String> CPU_ONLY = java.util.Set.of();

    @ParameterizedTest(name = "LiNeS with a computed alpha on {0}, emulated device")
    @org.junit.jupiter.params.provider.EnumSource(value = Dtype.class, names = {"BF16", "F16", "F32"})
    void linesWithAComputedAlphaOnTheEmulatedGpuWritesTheCpuBytes(Dtype dtype) throws Exception {
        MergeFixture f = fixtures.get(dtype);
        // The computed alpha sums the method's own output (OUTPUT_SUM) over the whole model.
        String config = f.config("ties-lines.yml", "merge_method: ties\nbase_model: " + f.base + "\nmodels:\n"
                + "  - model: " + f.models.get(0) + "\n    parameters: {weight: 1.0, density: 0.6}\n"
                + "  - model: " + f.models.get(1) + "\n    parameters: {weight: 0.8, density: 0.4}\n"
                + "parameters: {lines: {beta: 0.5}}\n");
        mergesAlikeOnTheEmulatedDevice("ties-lines", config, dtype);
    }

    @ParameterizedTest(name = "Fisher, OTA and FFG from companion checkpoints on {0}, emulated device")
    @org.junit.jupiter.params.provider.EnumSource(value = Dtype.class, names = {"BF16", "F16", "F32"})
    void companionMethodsOnTheEmulatedGpuWriteTheCpuBytes(Dtype dtype) throws Exception {
        MergeFixture f = fixtures.get(dtype);
        StringBuilder fisher = new StringBuilder("merge_method: fisher\nmodels:\n");
        StringBuilder ota = new StringBuilder("merge_method: ota\nmodels:\n");
        for (int i = 0; i < 3; i++) {
            String model = f.models.get(i);
            fisher.append("  - model: ").append(model).append("\n    fisher: ")
                    .append(ExampleConfigs.companion(model, "fisher")).append("\n    parameters: {weight: ")
                    .append(1.0 + i).append("}\n");
            ota.append("  - model: ").append(model).append("\n    second_moment: ")
                    .append(ExampleConfigs.companion(model, "second_moment")).append("\n");
        }
        fisher.append("parameters: {fisher_floor: 0.001, favor_target_model: false}\n");
        mergesAlikeOnTheEmulatedDevice("fisher-companions", f.config("fisher-companions.yml", fisher.toString()), dtype);
        mergesAlikeOnTheEmulatedDevice("ota-companions", f.config("ota-companions.yml", ota.toString()), dtype);
        String ffg = "merge_method: ffg\nbase_model: " + f.base + "\nmodels:\n  - model: " + f.models.get(2)
                + "\n    second_moment: " + ExampleConfigs.companion(f.models.get(2), "second_moment")
                + "\nparameters: {density: 0.35}\n";
        mergesAlikeOnTheEmulatedDevice("ffg-companions", f.config("ffg-companions.yml", ffg), dtype);
    }

    @ParameterizedTest(name = "paper TIES on {0}, emulated device")
    @org.junit.jupiter.params.provider.EnumSource(value = Dtype.class, names = {"BF16", "F16", "F32"})
    void paperTiesOnTheEmulatedGpuWritesTheCpuBytes(Dtype dtype) throws Exception {
        MergeFixture f = fixtures.get(dtype);
        // Whole-model thresholds and the whole model's sign count run on the device too.
        String config = f.config("ties-model.yml", "merge_method: ties\nbase_model: " + f.base + "\nmodels:\n"
                + "  - model: " + f.models.get(0) + "\n    parameters: {weight: 1.0, density: 0.6}\n"
                + "  - model: " + f.models.get(1) + "\n    parameters: {weight: 1.0, density: 0.4}\n"
                + "parameters: {trim_scope: model, lambda: 0.9}\n");
        mergesAlikeOnTheEmulatedDevice("ties-model", config, dtype);
    }

    @ParameterizedTest(name = "varm by layer (signed) and by element (softmax) on {0}, emulated device")
    @org.junit.jupiter.params.provider.EnumSource(value = Dtype.class, names = {"BF16", "F16", "F32"})
    void varmOnTheEmulatedGpuWritesTheCpuBytes(Dtype dtype) throws Exception {
        MergeFixture f = fixtures.get(dtype);
        String config = f.config("varm-signed.yml", "merge_method: varm\nbase_model: " + f.base + "\nmodels:\n"
                + "  - model: " + f.models.get(0) + "\n  - model: " + f.models.get(1) + "\n  - model: " + f.models.get(2)
                + "\nparameters: {variation: signed, granularity: layer, weighting: softmax, temperature: 0.01}\n");
        mergesAlikeOnTheEmulatedDevice("varm-signed", config, dtype);
        String element = f.config("varm-element.yml", "merge_method: varm\nbase_model: " + f.base + "\nmodels:\n"
                + "  - model: " + f.models.get(0) + "\n  - model: " + f.models.get(1) + "\n  - model: " + f.models.get(2)
                + "\nparameters: {variation: abs, granularity: element, weighting: softmax, temperature: 0.01}\n");
        mergesAlikeOnTheEmulatedDevice("varm-element", element, dtype);
    }

    @ParameterizedTest(name = "LoRA inputs on {0}, emulated device")
    @org.junit.jupiter.params.provider.EnumSource(value = Dtype.class, names = {"BF16", "F16", "F32"})
    void loraInputsOnTheEmulatedGpuWriteTheCpuBytes(Dtype dtype) throws Exception {
        MergeFixture f = fixtures.get(dtype);
        String adapter = f.root + "/adapter";
        dev.amalgam.sample.SampleCheckpoints.writeAdapter(new org.apache.hadoop.conf.Configuration(), adapter,
                MergeFixture.SHAPE, dtype, 3, 6.0, false, List.of("q_proj", "up_proj", "down_proj"), 9);
        String config = f.config("lora-ties.yml", "merge_method: ties\nbase_model: " + f.base + "\nmodels:\n"
                + "  - model: " + f.base + "+" + adapter + "\n    parameters: {weight: 0.6, density: 0.5}\n"
                + "  - model: " + f.models.get(0) + "+" + adapter + "\n    parameters: {weight: 0.4, density: 0.7}\n");
        mergesAlikeOnTheEmulatedDevice("lora-ties", config, dtype);
    }

    @ParameterizedTest(name = "MoE assembly on {0}, emulated device")
    @org.junit.jupiter.params.provider.EnumSource(value = Dtype.class, names = {"BF16", "F16", "F32"})
    void moeAssemblyOnTheEmulatedGpuWritesTheCpuBytes(Dtype dtype) throws Exception {
        MergeFixture f = fixtures.get(dtype);
        // Copies, residual-scaled down projections, generated routers and zero biases, fused parts.
        String config = f.config("moe.yml", "base_model: " + f.base + "\narchitecture: qwen2_moe\ngate_mode: random\n"
                + "dtype: bfloat16\nexpert_layout: fused\nexperts:\n  - source_model: " + f.models.get(0)
                + "\n    residual_scale: 0.7\n  - source_model: " + f.models.get(1) + "\nshared_experts:\n"
                + "  - source_model: " + f.models.get(2) + "\n    residual_scale: 1.5\n");
        mergesAlikeOnTheEmulatedDevice("moe", config, dtype);
    }

    @Test
    void remappedVocabulariesOnTheEmulatedGpuWriteTheCpuBytes() throws Exception {
        MergeFixture f = fixtures.get(Dtype.BF16);
        // One fine-tune with a vocabulary of its own order and extra tokens: its rows are remapped on read.
        java.util.List<String> tokens = new java.util.ArrayList<>(java.util.List.of("<s>", "</s>", "<unk>", "extra"));
        for (int i = 0; tokens.size() < 40; i++) {
            tokens.add("tok" + (36 - i));
        }
        String other = f.root.resolve("other-vocab").toString();
        dev.amalgam.sample.SampleCheckpoints.write(new org.apache.hadoop.conf.Configuration(), other,
                MergeFixture.SHAPE, Dtype.BF16, 0, 4, 6_000);
        dev.amalgam.sample.SampleCheckpoints.writeTokenizer(new org.apache.hadoop.conf.Configuration(), other + "/base",
                tokens);
        String config = f.config("union.yml", "merge_method: ties\nbase_model: " + f.base + "\ntokenizer:\n"
                + "  source: union\n  pad_to_multiple_of: 8\nmodels:\n  - model: " + f.models.get(0)
                + "\n    parameters: {weight: 0.6, density: 0.5}\n  - model: " + other + "/base"
                + "\n    parameters: {weight: 0.4, density: 0.7}\n");
        mergesAlikeOnTheEmulatedDevice("union", config, Dtype.BF16);
    }

    @Test
    void aMethodWhosePrimitivesTheBackendLacksRunsOnTheCpu() throws Exception {
        MergeFixture f = fixtures.get(Dtype.BF16);
        String config = f.config("slerp-on-gpu.yml", "merge_method: slerp\nbase_model: " + f.base + "\nmodels:\n  - model: "
                + f.models.get(0) + "\nparameters: {t: 0.3}\n");
        EmulatedDevice device = new EmulatedDevice();
        GpuBackend gpu = new GpuBackend(device, new GpuMemoryBudget(1L << 30, "test"));
        // The real device behind a backend that declares only the task-vector primitives.
        KernelBackend taskVectorOnly = new KernelBackend() {
            @Override
            public String description() {
                return gpu.description();
            }

            @Override
            public Set<Primitive> primitives() {
                return EnumSet.of(Primitive.CODEC, Primitive.DELTA_ORDER, Primitive.KEPT_ABS_SUM,
                        Primitive.TASK_VECTOR, Primitive.LINEAR);
            }

            @Override
            public ChunkKernels open(BufferAllocator host, String name, int maxCount, int models, boolean hasBase) {
                return gpu.open(host, name, maxCount, models, hasBase);
            }
        };
        MergeJob.Result result;
        try (AutoCloseable ignored = ExecutorKernels.overrideForTests(taskVectorOnly)) {
            result = new MergeJob(TestSpark.context()).run(MergeRequest.of(config, f.out("slerp-on-gpu"))
                    .withChunkElements(37).withWholeTensorStatistics(false).withPartitions(3));
        }
        assertEquals(0, device.launches(), "no CUDA kernel ran");
        List<String> backends = new ArrayList<>();
        result.report().path("kernels").fieldNames().forEachRemaining(backends::add);
        assertEquals(List.of("cpu"), backends);
    }

    @ParameterizedTest(name = "nuslerp per column on {0}, emulated device")
    @org.junit.jupiter.params.provider.EnumSource(value = Dtype.class, names = {"F32", "F16", "BF16"})
    void nuslerpPerColumnOnTheEmulatedGpuWritesTheCpuBytes(Dtype dtype) throws Exception {
        MergeFixture f = fixtures.get(dtype);
        String config = f.config("nuslerp-columns.yml", "merge_method: nuslerp\nbase_model: " + f.base + "\nmodels:\n"
                + "  - model: " + f.models.get(0) + "\n    parameters: {weight: 0.4}\n"
                + "  - model: " + f.models.get(1) + "\n    parameters: {weight: 0.7}\n"
                + "parameters: {nuslerp_flatten: false, nuslerp_row_wise: true}\n");
        mergesAlikeOnTheEmulatedDevice("nuslerp-columns", config, dtype);
    }

    @ParameterizedTest(name = "{0} on {1}, CUDA")
    @MethodSource("cases")
    void realGpuWritesTheCpuBytes(String method, Dtype dtype) throws Exception {
        CudaDriver.Availability cuda = CudaDriver.probe();
        assumeTrue(cuda.usable(), () -> "no GPU test: " + cuda.reason());
        compare(method, dtype, CudaDevice.open(0), "cuda");
    }

    /** The merge writes the CPU's bytes on the emulated device, which ran kernels for it. */
    private void mergesAlikeOnTheEmulatedDevice(String name, String config, Dtype dtype) throws Exception {
        EmulatedDevice device = new EmulatedDevice();
        compare(name, config, dtype, device, "emulated");
        assertTrue(device.launches() > 0);
    }

    private void compare(String method, Dtype dtype, Device device, String label) throws Exception {
        MergeFixture f = fixtures.get(dtype);
        compare(method, f.config(method + ".yml", config(method, f)), dtype, device, label);
    }

    private void compare(String method, String config, Dtype dtype, Device device, String label) throws Exception {
        MergeFixture f = fixtures.get(dtype);
        String cpuOut = f.out(method + "-cpu-" + label);
        String gpuOut = f.out(method + "-gpu-" + label);
        run(CpuBackend.INSTANCE, config, cpuOut);
        GpuBackend gpu = new GpuBackend(device, new GpuMemoryBudget(1L << 30, "test"));
        run(gpu, config, gpuOut);
        assertEquals(0, device.allocatedBytes(), "device memory leaked");
        assertEquals(0, gpu.budget().reserved(), "budget not released");
        List<Path> shards;
        try (Stream<Path> files = Files.list(Path.of(cpuOut))) {
            shards = files.filter(p -> p.toString().endsWith(".safetensors")).sorted().toList();
        }
        assertTrue(!shards.isEmpty());
        for (Path shard : shards) {
            assertArrayEquals(Files.readAllBytes(shard), Files.readAllBytes(Path.of(gpuOut).resolve(shard.getFileName())),
                    method + " on " + dtype + ": " + shard.getFileName() + " differs between CPU and GPU");
        }
    }

    private static void run(KernelBackend backend, String config, String out) throws Exception {
        try (AutoCloseable ignored = ExecutorKernels.overrideForTests(backend)) {
            new MergeJob(TestSpark.context()).run(MergeRequest.of(config, out).withChunkElements(37).withWholeTensorStatistics(false).withPartitions(3));
        }
    }

    private static String config(String method, MergeFixture f) throws IOException {
        MergeMethod declared = MergeMethods.byName(method).orElseThrow();
        if (!(declared instanceof TaskVectorMethod) && !(declared instanceof LinearMethod)) {
            return ExampleConfigs.of(declared, f.base, f.models);
        }
        StringBuilder s = new StringBuilder("merge_method: " + method + "\n");
        if (!method.equals("linear")) {
            s.append("base_model: ").append(f.base).append('\n');
        }
        s.append("models:\n");
        float[] weights = {1.0f, -0.6f, 0.35f};
        float[] densities = {0.5f, 0.3f, 0.9f};
        for (int i = 0; i < 3; i++) {
            s.append("  - model: ").append(f.models.get(i)).append("\n    parameters: {weight: ").append(weights[i]);
            if (!method.equals("linear") && !method.equals("task_arithmetic")) {
                s.append(", density: ").append(densities[i]);
            }
            if (method.startsWith("della")) {
                s.append(", epsilon: 0.05");
            }
            s.append("}\n");
        }
        s.append(method.equals("linear") ? "parameters: {normalize: true}\n" : "parameters: {random_seed: 5, lambda: 0.9}\n");
        return s.toString();
    }
}
