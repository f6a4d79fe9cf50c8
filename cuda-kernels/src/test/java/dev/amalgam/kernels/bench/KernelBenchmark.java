package dev.amalgam.kernels.bench;

import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.CounterRandom;
import dev.amalgam.kernels.Deltas;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.kernels.ElementCodec;
import dev.amalgam.kernels.KeepRule;
import dev.amalgam.kernels.KernelScratch;
import dev.amalgam.kernels.MagnitudeHistogram;
import dev.amalgam.kernels.TaskVectorKernel;
import org.apache.arrow.memory.ArrowBuf;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * Single-thread throughput of the hot loops on one 1M-element chunk with three models. Each
 * operation processes {@link #N} elements; divide to get elements per second.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "--add-opens=java.base/java.nio=ALL-UNNAMED",
        "-Darrow.enable_unsafe_memory_access=true"})
public class KernelBenchmark {
    static final int N = 1 << 20;
    static final int MODELS = 3;

    BufferAllocator allocator;
    ArrowBuf bf16;
    ArrowBuf base;
    ArrowBuf[] pristine = new ArrowBuf[MODELS];
    ArrowBuf[] models = new ArrowBuf[MODELS];
    ArrowBuf out;
    long[] histogram = new long[MagnitudeHistogram.BINS];
    ArrowBuf delta;
    int medianBucket;
    int[] bandSlots = new int[MagnitudeHistogram.HIGH_BUCKETS];
    int[] band = new int[7 << 16];
    KernelScratch scratch = new KernelScratch();

    @Setup(Level.Trial)
    public void setUp() {
        allocator = new RootAllocator();
        SplittableRandom random = new SplittableRandom(1);
        bf16 = allocator.buffer(N * 2L);
        base = allocator.buffer(N * 4L);
        out = allocator.buffer(N * 4L);
        for (int j = 0; j < N; j++) {
            float b = (float) random.nextGaussian() * 0.02f;
            base.setFloat(j * 4L, b);
            bf16.setShort(j * 2L, ElementCodec.floatToBfloat16(b));
        }
        for (int i = 0; i < MODELS; i++) {
            pristine[i] = allocator.buffer(N * 4L);
            models[i] = allocator.buffer(N * 4L);
            for (int j = 0; j < N; j++) {
                pristine[i].setFloat(j * 4L, base.getFloat(j * 4L) + (float) random.nextGaussian() * 0.002f);
            }
        }
        delta = allocator.buffer(N * 4L);
        Deltas.compute(pristine[0], base, delta, N);
        long[] high = new long[MagnitudeHistogram.BINS];
        MagnitudeHistogram.addHigh(delta, N, high);
        medianBucket = MagnitudeHistogram.select(high, N / 2).bucket();
        java.util.Arrays.fill(bandSlots, -1);
        for (int b = -3; b <= 3; b++) {
            bandSlots[medianBucket + b] = b + 3;
        }
    }

    @Setup(Level.Invocation)
    public void refresh() {
        // The merge overwrites its model buffers with weighted deltas.
        for (int i = 0; i < MODELS; i++) {
            models[i].setBytes(0, pristine[i], 0, N * 4L);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        bf16.close();
        base.close();
        out.close();
        delta.close();
        for (int i = 0; i < MODELS; i++) {
            pristine[i].close();
            models[i].close();
        }
        allocator.close();
    }

    @Benchmark
    public void decodeBf16() {
        ElementCodec.decode(bf16, Dtype.BF16, out, N);
    }

    /** What the non-finite policy adds to each chunk read and written (compare with decodeBf16). */
    @Benchmark
    public long nonFiniteCountBf16() {
        return dev.amalgam.kernels.NonFinite.count(bf16, Dtype.BF16, N);
    }

    @Benchmark
    public long nonFiniteCountF32() {
        return dev.amalgam.kernels.NonFinite.count(base, Dtype.F32, N);
    }

    @Benchmark
    public void encodeBf16() {
        ElementCodec.encode(base, Dtype.BF16, bf16, N);
    }

    @Benchmark
    public long[] magnitudeHistogram() {
        MagnitudeHistogram.addHigh(pristine[0], N, histogram);
        return histogram;
    }

    /** The second radix round: the low 16 bits of the entries in the high bucket of the median delta. */
    @Benchmark
    public long[] magnitudeLow() {
        MagnitudeHistogram.addLow(delta, N, medianBucket, histogram);
        return histogram;
    }

    /** The one-pass statistics' band: the median delta's high bucket and its three neighbours on each side. */
    @Benchmark
    public int[] magnitudeBand() {
        MagnitudeHistogram.addBand(delta, N, bandSlots, band);
        return band;
    }

    @Benchmark
    public ChunkMetrics tiesMerge() {
        TaskVectorKernel.ModelTerm[] terms = new TaskVectorKernel.ModelTerm[MODELS];
        for (int i = 0; i < MODELS; i++) {
            terms[i] = new TaskVectorKernel.ModelTerm(0.5f, new KeepRule.TopK(Float.floatToRawIntBits(0.0015f), 0, 0), 1.0f);
        }
        ChunkMetrics metrics = new ChunkMetrics(MODELS);
        TaskVectorKernel.merge(base, models, N, 0, terms, TaskVectorKernel.Consensus.SUM, true, 1.0f, out, metrics, scratch);
        return metrics;
    }

    @Benchmark
    public ChunkMetrics dareLinearMerge() {
        TaskVectorKernel.ModelTerm[] terms = new TaskVectorKernel.ModelTerm[MODELS];
        for (int i = 0; i < MODELS; i++) {
            terms[i] = new TaskVectorKernel.ModelTerm(0.5f, new KeepRule.Random(0.5f, CounterRandom.streamKey(0, "w", i)), 2.0f);
        }
        ChunkMetrics metrics = new ChunkMetrics(MODELS);
        TaskVectorKernel.merge(base, models, N, 0, terms, TaskVectorKernel.Consensus.NONE, false, 1.0f, out, metrics, scratch);
        return metrics;
    }
}
