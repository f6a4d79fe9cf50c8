package dev.amalgam.executor;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.CpuBackend;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.kernels.KeepRule;
import dev.amalgam.kernels.MagnitudeHistogram;
import dev.amalgam.kernels.Operand;
import dev.amalgam.kernels.TaskVectorKernel;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;

import java.util.SplittableRandom;

/**
 * Runs the CPU kernels' hot loops on a small synthetic chunk in a background thread while Spark
 * starts, so the JIT has compiled them (C2, with the Vector API's intrinsics) by the time the
 * first real chunk arrives: on a fresh JVM the first merge otherwise spends seconds in slow,
 * interpreted or C1 code. Spark's start-up is mostly single-threaded class loading, which leaves
 * a core for this. Nothing it computes is kept.
 */
public final class KernelWarmup {
    private static final int COUNT = 1 << 16;
    private static final int ROUNDS = 400;

    private KernelWarmup() {
    }

    /**
     * Inputs below this many bytes merge as fast without the warm-up: on two cores it costs a
     * 1.2 MB merge 0.7 s, breaks even near 400 MB and saves 1-2 s at 2 GB (docs/benchmarks.md).
     */
    public static final long WORTHWHILE_BYTES = 256L << 20;

    /**
     * Set to end the warm-up after its current round. A flag, not an interrupt: an interrupt that
     * lands while the warm-up initializes Arrow's or the logger's classes fails their static
     * initialization, and with it every later use of those classes in the JVM.
     */
    private static volatile boolean stopRequested;

    /** Starts the warm-up in a daemon thread; returns at once. */
    public static Thread start() {
        Thread t = new Thread(KernelWarmup::run, "amalgam-kernel-warmup");
        t.setDaemon(true);
        t.setPriority(Thread.MIN_PRIORITY);
        stopRequested = false;
        t.start();
        return t;
    }

    /**
     * Ends a running warm-up after its current round when the merge that follows reads fewer than
     * {@link #WORTHWHILE_BYTES}: its chunks compile the loops soon enough themselves, and the
     * warm-up would only take a core from them.
     */
    public static void stopUnlessWorthwhile(long inputBytes) {
        if (inputBytes < WORTHWHILE_BYTES) {
            stopRequested = true;
        }
    }

    static void run() {
        long started = System.nanoTime();
        try {
            int rounds = exercise(ROUNDS, () -> stopRequested);
            org.slf4j.LoggerFactory.getLogger(KernelWarmup.class).info("kernel warm-up: {} of {} rounds in {} ms",
                    rounds, ROUNDS, (System.nanoTime() - started) / 1_000_000);
        } catch (RuntimeException | Error e) {
            // A warm-up that cannot run changes nothing but speed.
        }
    }

    /**
     * The loops, up to {@code rounds} times over (fewer once {@code stop} says so); closing its allocator
     * fails on any leaked buffer. Returns the rounds run.
     */
    static int exercise(int rounds, java.util.function.BooleanSupplier stop) {
        try (BufferAllocator allocator = new RootAllocator(64L << 20);
             ChunkKernels k = CpuBackend.INSTANCE.open(allocator, "warmup", COUNT, 2, true)) {
            SplittableRandom random = new SplittableRandom(7);
            byte[][] stored = new byte[3][COUNT * 2];
            for (byte[] s : stored) {
                for (int i = 0; i < s.length; i += 2) {
                    s[i] = (byte) random.nextInt(256);
                    s[i + 1] = (byte) (0x3c + random.nextInt(2));
                }
            }
            long[] histogram = new long[MagnitudeHistogram.BINS];
            int round = 0;
            for (; round < rounds && !stop.getAsBoolean(); round++) {
                k.beginChunk();
                for (int slot = 0; slot < 3; slot++) {
                    k.input(slot).setBytes(0, stored[slot]);
                    k.decode(slot, Dtype.BF16, COUNT);
                }
                k.histogramHigh(new Operand.Delta(0), COUNT, histogram);
                k.histogramLow(new Operand.Delta(1), COUNT, 0x3c00, histogram);
                TaskVectorKernel.ModelTerm[] terms = {
                        new TaskVectorKernel.ModelTerm(0.5f, new KeepRule.TopK(0x3c000000, 1, 0), 1.0f),
                        new TaskVectorKernel.ModelTerm(0.5f, new KeepRule.All(), 1.0f)};
                k.mergeTaskVector(COUNT, 0, terms, round % 2 == 0 ? TaskVectorKernel.Consensus.SUM
                        : TaskVectorKernel.Consensus.NONE, true, 1.0f, new ChunkMetrics(2));
                k.encodeOut(Dtype.BF16, COUNT).await();
            }
            return round;
        }
    }
}
