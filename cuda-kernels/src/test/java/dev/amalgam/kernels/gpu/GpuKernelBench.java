package dev.amalgam.kernels.gpu;

import org.apache.arrow.memory.ArrowBuf;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.LongConsumer;

/**
 * Throughput of each CUDA kernel on device-resident data, as GB/s of the bytes it must read and
 * write and as a fraction of the GPU's theoretical memory bandwidth; and of the host-to-device
 * copy from pinned memory. {@code scripts/bench-gpu} runs it; {@code --device emulated} runs the
 * same launches on the emulated device (a smoke test of this bench, not a measurement).
 *
 * <p>Usage: {@code GpuKernelBench [--device cuda|emulated] [--elements N] [--models M] [--repeat R]}
 */
public final class GpuKernelBench {
    private GpuKernelBench() {
    }

    public static void main(String[] args) {
        String which = "cuda";
        int n = 1 << 24;
        int m = 3;
        int repeat = 20;
        for (int i = 0; i < args.length; i += 2) {
            switch (args[i]) {
                case "--device" -> which = args[i + 1];
                case "--elements" -> n = Integer.parseInt(args[i + 1]);
                case "--models" -> m = Integer.parseInt(args[i + 1]);
                case "--repeat" -> repeat = Integer.parseInt(args[i + 1]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        Device device;
        double peak;
        if (which.equals("emulated")) {
            device = new EmulatedDevice();
            peak = Double.NaN;
        } else {
            CudaDriver.Availability cuda = CudaDriver.probe();
            if (!cuda.usable()) {
                System.err.println("bench-gpu: no usable GPU: " + cuda.reason());
                System.exit(3);
            }
            CudaDevice gpu = CudaDevice.open(0);
            device = gpu;
            peak = gpu.peakBandwidth();
        }
        System.out.printf(Locale.ROOT, "%s; %d elements, %d models, %d launches each; peak %.0f GB/s%n",
                device.description(), n, m, repeat, peak / 1e9);
        run(device, n, m, repeat, peak);
    }

    private static void run(Device device, int n, int m, int repeat, double peak) {
        device.bindToThread();
        List<Long> buffers = new ArrayList<>();
        try (BufferAllocator allocator = new RootAllocator(); Device.Stream stream = device.newStream()) {
            long floats = (long) n * 4;
            long raw = alloc(device, buffers, (long) n * 2);
            long base = alloc(device, buffers, floats);
            long[] models = new long[m];
            for (int i = 0; i < m; i++) {
                models[i] = alloc(device, buffers, floats);
            }
            long spare = alloc(device, buffers, floats);
            long out = alloc(device, buffers, floats);
            long tiles = alloc(device, buffers, (long) (n / Kernel.RANK_TILE + 1) * 8);
            long counters = alloc(device, buffers, (long) Kernel.LANES * 8);
            long histogram = alloc(device, buffers, 65536L * 8);
            long params = alloc(device, buffers, (long) m * 16);
            try (ArrowBuf host = device.allocateHost(allocator, floats); ArrowBuf p = device.allocateHost(allocator, m * 16L)) {
                for (long j = 0; j < floats; j += 4) {
                    host.setFloat(j, (float) Math.sin(j) * 0.01f);
                }
                for (int i = 0; i < m; i++) {
                    p.setLong(i * 8L, models[i]);
                    p.setFloat(m * 8L + i * 4L, 0.5f);
                    p.setFloat(m * 12L + i * 4L, 1.0f);
                }
                device.upload(params, p, m * 16L, stream);
                for (long b : models) {
                    device.upload(b, host, floats, stream);
                }
                device.upload(base, host, floats, stream);
                device.zero(tiles, (long) (n / Kernel.RANK_TILE + 1) * 8, stream);
                stream.synchronize();
                int threshold = Float.floatToRawIntBits(0.005f);
                report("copy host->device (pinned)", floats, repeat, peak, stream,
                        r -> device.upload(spare, host, floats, stream));
                report("decode bf16", n * 6L, repeat, peak, stream, r -> device.launch(Kernel.DECODE, n, stream,
                        new KernelArgs().pointer(raw).i32(2).pointer(spare).i32(n)));
                report("delta", n * 12L, repeat, peak, stream, r -> device.launch(Kernel.DELTA, n, stream,
                        new KernelArgs().pointer(models[0]).pointer(base).pointer(spare).i32(n)));
                report("histogram high", n * 4L, repeat, peak, stream, r -> device.launch(Kernel.HISTOGRAM_HIGH, n, stream,
                        new KernelArgs().pointer(models[0]).i32(n).pointer(histogram)));
                report("keep top-k", n * 8L, repeat, peak, stream, r -> device.launch(Kernel.KEEP_TOP_K, n, stream,
                        new KernelArgs().pointer(models[0]).pointer(spare).i32(n).u32(threshold).i64(n / 2)
                                .pointer(tiles).pointer(counters)));
                report("keep random", n * 8L, repeat, peak, stream, r -> device.launch(Kernel.KEEP_RANDOM, n, stream,
                        new KernelArgs().pointer(models[0]).pointer(spare).i32(n).u64(7).i64(0).u64(1 << 23)
                                .pointer(counters)));
                report("merge ties (" + m + " models)", (long) n * 4 * (m + 2), repeat, peak, stream,
                        r -> device.launch(Kernel.MERGE_TASK_VECTOR, n, stream, new KernelArgs().pointer(base)
                                .pointer(params).pointer(params + m * 8L).pointer(params + m * 12L).i32(m).i32(n)
                                .i32(1).i32(1).f32(1.0f).f32(1.0f).pointer(out).pointer(counters)));
                report("encode bf16", n * 6L, repeat, peak, stream, r -> device.launch(Kernel.ENCODE, n, stream,
                        new KernelArgs().pointer(out).i32(2).pointer(raw).i32(n)));
            }
        } finally {
            for (long b : buffers) {
                device.free(b);
            }
        }
    }

    private static long alloc(Device device, List<Long> buffers, long bytes) {
        long b = device.allocate(bytes);
        buffers.add(b);
        return b;
    }

    private static void report(String what, long bytesPerLaunch, int repeat, double peak, Device.Stream stream,
                               LongConsumer launch) {
        launch.accept(-1);
        stream.synchronize();
        long start = System.nanoTime();
        for (int r = 0; r < repeat; r++) {
            launch.accept(r);
        }
        stream.synchronize();
        double seconds = (System.nanoTime() - start) / 1e9;
        double rate = bytesPerLaunch * (double) repeat / seconds;
        System.out.printf(Locale.ROOT, "%-28s %9.3f ms  %8.1f GB/s  %s%n", what, seconds * 1000 / repeat, rate / 1e9,
                Double.isNaN(peak) ? "" : String.format(Locale.ROOT, "%5.1f%% of peak", 100 * rate / peak));
    }
}
