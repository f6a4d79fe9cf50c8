package dev.amalgam.kernels.gpu;

import dev.amalgam.kernels.BlockScales;
import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.CounterRandom;
import dev.amalgam.kernels.CpuBackend;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.kernels.ExactDot;
import dev.amalgam.kernels.ExactSum;
import dev.amalgam.kernels.KeepRule;
import dev.amalgam.kernels.KernelBackend;
import dev.amalgam.kernels.MagnitudeHistogram;
import dev.amalgam.kernels.Operand;
import dev.amalgam.kernels.TaskVectorKernel;
import dev.amalgam.kernels.TaskVectorKernel.Consensus;
import dev.amalgam.kernels.TaskVectorKernel.ModelTerm;
import org.apache.arrow.memory.ArrowBuf;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Function;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CUDA kernels through the GPU backend's host code produce the same bits as the Java
 * kernels: every statistic, every sparsifier, both consensus rules, linear, every stored dtype,
 * on inputs full of equal magnitudes, exact zeros and sign conflicts, with chunk sizes that are
 * not multiples of the block size; and the composed primitives (exact dots, counts, row dots,
 * combinations with per-tensor and per-row coefficients, nearswap, RAM and RAM+). Run on the emulated device always
 * ({@link EmulatedKernelsDifferentialTest}) and on a real GPU where there is one
 * ({@link CudaKernelsDifferentialTest}).
 */
abstract class DeviceKernelsDifferentialTest {
    private static final int[] COUNTS = {1, 255, 257, 1000, 4099};

    private BufferAllocator allocator;
    private Device device;
    private KernelBackend gpu;

    /** The device under test; called before each test. */
    abstract Device device();

    /** How many kernels the device has launched so far, or -1 where it cannot tell. */
    private static long launches(Device device) {
        return device instanceof EmulatedDevice emulated ? emulated.launches() : -1;
    }

    @BeforeEach
    void open() {
        allocator = new RootAllocator();
        device = null;
        device = device();
        gpu = new GpuBackend(device, new GpuMemoryBudget(1L << 30, "test budget"));
    }

    @AfterEach
    void noLeaks() {
        if (device != null) {
            assertEquals(0, device.allocatedBytes(), "device memory leaked");
        }
        allocator.close();
    }

    /** A chunk's stored inputs: models 0..m-1, then the base. */
    private record Chunk(Dtype dtype, int count, long start, byte[][] stored) {
        int models() {
            return stored.length - 1;
        }
    }

    static Stream<Arguments> dtypesAndCounts() {
        List<Arguments> cases = new ArrayList<>();
        for (Dtype dtype : Dtype.floats()) {
            for (int count : COUNTS) {
                cases.add(Arguments.of(dtype, count));
            }
        }
        return cases.stream();
    }

    /**
     * Base values and deltas from small grids, so that many |delta| are equal, many are exactly
     * zero, and models often disagree in sign.
     */
    private static Chunk chunk(Dtype dtype, int count, int models, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        float[] steps = {-2f, -1f, -0.5f, -0.25f, 0f, 0f, 0.25f, 0.5f, 1f, 2f};
        byte[][] stored = new byte[models + 1][];
        float[] base = new float[count];
        for (int j = 0; j < count; j++) {
            base[j] = (random.nextInt(17) - 8) * 0.125f;
        }
        stored[models] = encode(dtype, base);
        for (int i = 0; i < models; i++) {
            float[] x = new float[count];
            for (int j = 0; j < count; j++) {
                float d = steps[random.nextInt(steps.length)] * (random.nextInt(8) == 0 ? 3.1f : 0.0625f);
                x[j] = random.nextInt(50) == 0 ? (float) random.nextGaussian() : base[j] + d;
            }
            stored[i] = encode(dtype, x);
        }
        return new Chunk(dtype, count, 35, stored);
    }

    private static byte[] encode(Dtype dtype, float[] values) {
        byte[] out = new byte[values.length * dtype.byteSize()];
        for (int j = 0; j < values.length; j++) {
            int bits = switch (dtype) {
                case F32 -> Float.floatToRawIntBits(values[j]);
                case BF16 -> dev.amalgam.kernels.ElementCodec.floatToBfloat16(values[j]);
                case F16 -> dev.amalgam.kernels.ElementCodec.floatToHalf(values[j]);
                default -> throw new IllegalArgumentException(dtype + " is not an output dtype");
            };
            for (int b = 0; b < dtype.byteSize(); b++) {
                out[j * dtype.byteSize() + b] = (byte) (bits >>> (8 * b));
            }
        }
        return out;
    }

    /** Opens a working set on {@code backend}, loads the chunk, runs {@code work}, closes. */
    private <T> T on(KernelBackend backend, Chunk c, Function<ChunkKernels, T> work) {
        try (ChunkKernels k = backend.open(allocator, "test", c.count(), c.models(), true)) {
            load(k, c);
            return work.apply(k);
        }
    }

    private static void load(ChunkKernels k, Chunk c) {
        k.beginChunk();
        for (int slot = 0; slot < c.stored().length; slot++) {
            ArrowBuf in = k.input(slot);
            in.setBytes(0, c.stored()[slot]);
            k.decode(slot, c.dtype(), c.count());
        }
    }

    private <T> void same(Chunk c, Function<ChunkKernels, T> work, java.util.function.BiConsumer<T, T> compare) {
        T cpu = on(CpuBackend.INSTANCE, c, work);
        long before = launches(device);
        T onDevice = on(gpu, c, work);
        assertTrue(launches(device) != before || before < 0, "the device path launched no kernel");
        compare.accept(cpu, onDevice);
    }

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void histogramsAndEqualCountsMatch(Dtype dtype, int count) {
        Chunk c = chunk(dtype, count, 2, 11);
        same(c, k -> {
            long[] high = new long[MagnitudeHistogram.BINS];
            k.histogramHigh(new Operand.Delta(1), c.count(), high);
            int bucket = MagnitudeHistogram.select(high, c.count() / 2).bucket();
            long[] low = new long[MagnitudeHistogram.BINS];
            k.histogramLow(new Operand.Delta(1), c.count(), bucket, low);
            int valueBits = (bucket << 16) | MagnitudeHistogram.select(low, 0).bucket();
            long[] out = Arrays.copyOf(high, high.length + low.length + 1);
            System.arraycopy(low, 0, out, high.length, low.length);
            out[out.length - 1] = k.countEqual(new Operand.Delta(1), c.count(), valueBits);
            return out;
        }, (a, b) -> assertArrayEquals(a, b));
    }

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void exactSumsBeforeAndAfterEveryRuleMatch(Dtype dtype, int count) {
        int cols = count % 5 == 0 ? 5 : 1;
        Chunk c = chunk(dtype, count, 2, 12);
        for (KeepRule rule : rules(c, cols)) {
            same(c, k -> {
                ExactSum all = new ExactSum();
                ExactSum kept = new ExactSum();
                k.magnitudeSums(0, c.count(), c.start(), rule, all, kept);
                return new int[]{Float.floatToRawIntBits(all.toFloat()), Float.floatToRawIntBits(kept.toFloat())};
            }, (a, b) -> assertArrayEquals(a, b, rule.toString()));
        }
    }

    /** Every sparsifier's rule, with equal-rank cut-offs that split runs of equal magnitudes. */
    private static List<KeepRule> rules(Chunk c, int cols) {
        int quarter = Float.floatToRawIntBits(0.0625f);
        int half = Float.floatToRawIntBits(0.125f);
        long key = CounterRandom.streamKey(7, "model.layers.0.mlp.weight", 0);
        List<KeepRule> rules = new ArrayList<>(List.of(
                new KeepRule.All(),
                new KeepRule.TopK(quarter, c.count() / 7, 3),
                new KeepRule.TopK(0, c.count() / 3, 0),
                new KeepRule.Band(true, quarter, 5, 2, true, half, c.count() / 9, 1),
                new KeepRule.Band(false, 0, 0, 0, true, half, 4, 0),
                new KeepRule.Band(true, 0, c.count() / 4, 0, false, 0, 0, 0),
                new KeepRule.Random(0.3f, key),
                new KeepRule.Random(0.9f, key)));
        rules.add(new KeepRule.DellaRows(0.35f, 0.3f, cols, key));
        return rules;
    }

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void taskVectorMergesMatchForEverySparsifierAndConsensus(Dtype dtype, int count) {
        int cols = count % 5 == 0 ? 5 : 1;
        for (int models : new int[]{2, 3}) {
            Chunk c = chunk(dtype, count, models, 13 + models);
            List<KeepRule> rules = rules(c, cols);
            for (Consensus consensus : Consensus.values()) {
                for (int r = 0; r < rules.size(); r++) {
                    ModelTerm[] terms = new ModelTerm[models];
                    for (int i = 0; i < models; i++) {
                        // Mixed rules across models, weights with a negative one, a rescale.
                        KeepRule rule = rules.get((r + i) % rules.size());
                        terms[i] = new ModelTerm(i == 1 ? -0.35f : 0.7f + i, rule, i == 0 ? 1.0f : 1.37f);
                    }
                    for (boolean normalize : new boolean[]{false, true}) {
                        float lambda = normalize ? 1.0f : 0.83f;
                        Dtype out = Dtype.floats()[(r + (normalize ? 1 : 0)) % 3];
                        String what = dtype + " -> " + out + ", " + models + " models, " + consensus + ", "
                                + Arrays.toString(terms) + ", normalize " + normalize;
                        same(c, k -> merged(k, c, out, m -> k.mergeTaskVector(c.count(), c.start(), terms, consensus,
                                normalize, lambda, m)), (a, b) -> assertMerged(a, b, what));
                    }
                }
            }
        }
    }

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void paperTiesSignCountsAndMergesMatch(Dtype dtype, int count) {
        int cols = count % 5 == 0 ? 5 : 1;
        for (int models : new int[]{2, 3}) {
            Chunk c = chunk(dtype, count, models, 29 + models);
            List<KeepRule> rules = rules(c, cols);
            for (int r = 0; r < rules.size(); r++) {
                ModelTerm[] terms = new ModelTerm[models];
                for (int i = 0; i < models; i++) {
                    // Weights of 1 make exact cancellations common, so the tie sign decides entries.
                    terms[i] = new ModelTerm(i == 2 ? 0.6f : 1.0f, rules.get((r + i) % rules.size()), 1.0f);
                }
                String what = dtype + ", " + models + " models, " + Arrays.toString(terms);
                same(c, k -> k.consensusSigns(terms, c.start(), c.count()),
                        (a, b) -> assertEquals(a, b, "sign count " + what));
                for (int tieSign : new int[]{-1, 0, 1}) {
                    Dtype out = Dtype.floats()[(r + tieSign + 1) % 3];
                    float lambda = tieSign == 0 ? 1.0f : 0.83f;
                    same(c, k -> merged(k, c, out, m -> k.mergeTiesModel(terms, tieSign, lambda, c.start(), c.count(), m)),
                            (a, b) -> assertMerged(a, b, "paper TIES " + what + ", tie sign " + tieSign + " -> " + out));
                }
            }
        }
    }

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void consensusMergesMatch(Dtype dtype, int count) {
        int cols = count % 5 == 0 ? 5 : 1;
        Chunk c = chunk(dtype, count, 3, 41);
        List<KeepRule> rules = rules(c, cols);
        float[] lambdas = {0.4f, 0.6f, 0.3f};
        for (int r = 0; r < rules.size(); r++) {
            ModelTerm[] terms = new ModelTerm[3];
            for (int i = 0; i < 3; i++) {
                // One model keeps everything, the others a rule each; weights of 1 make cancellations.
                terms[i] = new ModelTerm(i == 2 ? 0.7f : 1.0f, i == 0 ? new KeepRule.All()
                        : rules.get((r + i) % rules.size()), 1.0f);
            }
            for (boolean ties : new boolean[]{false, true}) {
                for (int k = 1; k <= 3; k++) {
                    int minTasks = k;
                    int tieSign = ties ? (r % 3) - 1 : 0;
                    Dtype out = Dtype.floats()[(r + k) % 3];
                    String what = dtype + ", " + Arrays.toString(terms) + ", ties " + ties + ", k " + k + " -> " + out;
                    same(c, kernels -> merged(kernels, c, out, m -> kernels.consensus(terms, ties, tieSign, lambdas,
                            minTasks, 0.9f, c.start(), c.count(), m)), (a, b) -> assertMerged(a, b, "consensus " + what));
                }
            }
        }
    }

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void varmElementMergesMatch(Dtype dtype, int count) {
        Chunk c = chunk(dtype, count, 3, 37);
        for (int variation = 0; variation < 3; variation++) {
            for (boolean softmax : new boolean[]{false, true}) {
                int v = variation;
                Dtype out = Dtype.floats()[(variation + (softmax ? 1 : 0)) % 3];
                float temperature = softmax ? 0.01f : 1.0f;
                same(c, k -> merged(k, c, out, m -> k.varmElement(v, softmax, temperature, c.count(), m)),
                        (a, b) -> assertMerged(a, b, "varm element " + dtype + ", variation " + v + ", softmax "
                                + softmax + " -> " + out));
            }
        }
    }

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void linearMergesMatch(Dtype dtype, int count) {
        Chunk c = chunk(dtype, count, 3, 17);
        for (boolean normalize : new boolean[]{false, true}) {
            for (Dtype out : Dtype.floats()) {
                float[] weights = {0.5f, -0.2f, 0.9f};
                same(c, k -> merged(k, c, out, m -> k.mergeLinear(c.count(), weights, normalize, m)),
                        (a, b) -> assertMerged(a, b, "linear " + dtype + " -> " + out + " normalize " + normalize));
            }
        }
    }

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void blockQuantizedInputsDecodeToTheSameFloats(Dtype ignored, int count) {
        SplittableRandom random = new SplittableRandom(count);
        byte[] fp8 = new byte[count];
        byte[] packed = new byte[(count + 1) / 2];
        for (int j = 0; j < count; j++) {
            int b = random.nextInt(256);
            // No NaN or infinity in either format (their payloads after arithmetic are not portable).
            fp8[j] = (byte) ((b & 0x7c) == 0x7c ? b & 0x83 : b);
        }
        for (int j = 0; j < packed.length; j++) {
            packed[j] = (byte) random.nextInt(256);
        }
        byte[] exponents = new byte[(count + 31) / 32];
        for (int j = 0; j < exponents.length; j++) {
            exponents[j] = (byte) (random.nextInt(20) + (j % 3 == 0 ? 0 : 117)); // subnormal 2^-127 too
        }
        // Small blocks over a stack of 10-row matrices, starting mid-row, so every index rule is exercised.
        int cols = 100;
        long start = 250;
        BlockScales.Fp8 grid = new BlockScales.Fp8(null, 0, 15, 3, 7, 10, cols, start);
        long first = grid.gridRow(start / cols);
        long last = grid.gridRow((start + Math.max(count, 1) - 1) / cols);
        float[] scales = new float[(int) (last - first + 1) * 15];
        for (int j = 0; j < scales.length; j++) {
            scales[j] = Math.scalb(1.0f + random.nextInt(16) / 16.0f, -random.nextInt(12));
        }
        for (Dtype format : new Dtype[]{Dtype.F8_E4M3, Dtype.F8_E5M2}) {
            BlockScales.Fp8 fp8Scales = new BlockScales.Fp8(scales, first, 15, 3, 7, 10, cols, start);
            java.util.function.Function<ChunkKernels, byte[]> work = k -> {
                k.beginChunk();
                k.input(0).setBytes(0, fp8);
                k.decodeScaled(0, format, count, fp8Scales);
                k.input(1).setBytes(0, packed);
                k.decodeScaled(1, Dtype.U8, count, new BlockScales.Mxfp4(exponents));
                ChunkMetrics metrics = new ChunkMetrics(2);
                byte[] both = new byte[count * 8];
                k.mergeLinear(count, new float[]{1.0f, 0.0f}, false, metrics);
                k.encodeOut(Dtype.F32, count).await().getBytes(0, both, 0, count * 4);
                k.mergeLinear(count, new float[]{0.0f, 1.0f}, false, metrics);
                k.encodeOut(Dtype.F32, count).await().getBytes(0, both, count * 4, count * 4);
                return both;
            };
            byte[] cpu;
            try (ChunkKernels k = CpuBackend.INSTANCE.open(allocator, "cpu", Math.max(count, 1), 2, false)) {
                cpu = work.apply(k);
            }
            if (count == 0) {
                continue;
            }
            byte[] onDevice;
            try (ChunkKernels k = gpu.open(allocator, "gpu", count, 2, false)) {
                onDevice = work.apply(k);
            }
            assertArrayEquals(cpu, onDevice, format + " and MXFP4 decode differently on the device");
        }
    }

    /**
     * The encoded bytes, kept counts, conflicts and element count of one merged chunk, and the
     * report's delta squares and pairwise dot products.
     */
    private record Merged(byte[] bytes, long[] kept, long conflicts, long elements, double[] squares, double[] dots) {
        Merged(byte[] bytes, ChunkMetrics m) {
            this(bytes, m.kept, m.signConflicts, m.elements, m.deltaSquares, m.deltaDots);
        }
    }

    private static Merged merged(ChunkKernels k, Chunk c, Dtype out, java.util.function.Consumer<ChunkMetrics> merge) {
        ChunkMetrics metrics = new ChunkMetrics(c.models());
        merge.accept(metrics);
        ArrowBuf encoded = k.encodeOut(out, c.count()).await();
        byte[] bytes = new byte[c.count() * out.byteSize()];
        encoded.getBytes(0, bytes);
        return new Merged(bytes, metrics);
    }

    private static void assertMerged(Merged cpu, Merged gpu, String what) {
        assertArrayEquals(cpu.bytes(), gpu.bytes(), what);
        assertArrayEquals(cpu.kept(), gpu.kept(), "kept counts, " + what);
        assertEquals(cpu.conflicts(), gpu.conflicts(), "sign conflicts, " + what);
        assertEquals(cpu.elements(), gpu.elements(), "elements, " + what);
        // Report figures are summed in another order on the device: equal to float rounding.
        int m = cpu.squares().length;
        for (int i = 0; i < m; i++) {
            assertEquals(cpu.squares()[i], gpu.squares()[i], 1e-5 * cpu.squares()[i] + 1e-30, "squares, " + what);
            for (int j = i + 1; j < m; j++) {
                int p = ChunkMetrics.pair(i, j, m);
                double scale = Math.sqrt(cpu.squares()[i] * cpu.squares()[j]);
                assertEquals(cpu.dots()[p], gpu.dots()[p], 1e-5 * scale + 1e-30, "dot " + i + "." + j + ", " + what);
            }
        }
    }

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void twoChunksInFlightGiveTheBytesOfOneAtATime(Dtype dtype, int count) {
        Chunk first = chunk(dtype, count, 2, 21);
        Chunk second = chunk(dtype, count, 2, 22);
        ModelTerm[] terms = {new ModelTerm(1.0f, new KeepRule.TopK(Float.floatToRawIntBits(0.0625f), count / 5, 0), 1.0f),
                new ModelTerm(0.5f, new KeepRule.Random(0.5f, 99), 2.0f)};
        Function<ChunkKernels, Merged> one = k -> merged(k, first, Dtype.BF16,
                m -> k.mergeTaskVector(count, 0, terms, Consensus.SUM, true, 1.0f, m));
        Merged cpuFirst = on(CpuBackend.INSTANCE, first, one);
        Merged cpuSecond = on(CpuBackend.INSTANCE, second, k -> merged(k, second, Dtype.BF16,
                m -> k.mergeTaskVector(count, 0, terms, Consensus.SUM, true, 1.0f, m)));
        try (ChunkKernels k = gpu.open(allocator, "pipelined", count, 2, true)) {
            assertEquals(2, k.inFlightLimit());
            ChunkMetrics m1 = new ChunkMetrics(2);
            load(k, first);
            k.mergeTaskVector(count, 0, terms, Consensus.SUM, true, 1.0f, m1);
            ChunkKernels.PendingChunk p1 = k.encodeOut(Dtype.BF16, count);
            ChunkMetrics m2 = new ChunkMetrics(2);
            load(k, second);
            k.mergeTaskVector(count, 0, terms, Consensus.SUM, true, 1.0f, m2);
            ChunkKernels.PendingChunk p2 = k.encodeOut(Dtype.BF16, count);
            byte[] b1 = new byte[count * 2];
            p1.await().getBytes(0, b1);
            byte[] b2 = new byte[count * 2];
            p2.await().getBytes(0, b2);
            assertMerged(cpuFirst, new Merged(b1, m1), "first chunk");
            assertMerged(cpuSecond, new Merged(b2, m2), "second chunk");
        }
    }

    private static final Operand D0 = new Operand.Delta(0);
    private static final Operand D1 = new Operand.Delta(1);
    private static final Operand V0 = new Operand.Value(0);
    private static final Operand V1 = new Operand.Value(1);

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void exactDotsMatchForValuesDeltasAndSquares(Dtype dtype, int count) {
        Chunk c = chunk(dtype, count, 2, 31);
        Operand base = new Operand.Value(c.models());
        Operand[][] pairs = {{D0, D1}, {D0, D0}, {V0, V1}, {V1, V1}, {base, D1}, {V0, D0}};
        for (Operand[] pair : pairs) {
            same(c, k -> {
                ExactDot dot = new ExactDot();
                k.dot(pair[0], pair[1], c.count(), dot);
                return Float.floatToRawIntBits(dot.toFloat());
            }, (a, b) -> assertEquals(a, b, "dot " + Arrays.toString(pair)));
        }
    }

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void nonzeroCountsMatchIncludingSharedAndUniqueContributions(Dtype dtype, int count) {
        Chunk c = chunk(dtype, count, 3, 32);
        List<Operand> operands = new ArrayList<>(List.of(D0, D1, V0, new Operand.Value(c.models())));
        for (int model = 0; model < c.models(); model++) {
            for (float epsilon : new float[]{0f, 0.0625f, 0.2f}) {
                operands.add(new Operand.Contribution(model, epsilon, true));
                operands.add(new Operand.Contribution(model, epsilon, false));
            }
        }
        for (Operand a : operands) {
            same(c, k -> k.countNonzero(a, c.count()), (x, y) -> assertEquals(x, y, "nonzero " + a));
        }
    }

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void exactSignedSumsMatch(Dtype dtype, int count) {
        Chunk c = chunk(dtype, count, 2, 33);
        for (Operand a : List.of(D0, D1, V0, new Operand.Value(c.models()))) {
            same(c, k -> {
                ExactDot sum = new ExactDot();
                k.sum(a, c.count(), sum);
                return Float.floatToRawIntBits(sum.toFloat());
            }, (x, y) -> assertEquals(x, y, "signed sum " + a));
        }
    }

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void rowDotsMatchWholeRowsInIndexOrder(Dtype dtype, int count) {
        Chunk c = chunk(dtype, count, 2, 33);
        for (int cols : new int[]{1, count % 5 == 0 ? 5 : count, count}) {
            for (Operand[] pair : new Operand[][]{{D0, D1}, {V0, V0}, {V0, V1}}) {
                same(c, k -> {
                    float[] into = new float[c.count() / cols];
                    k.rowDots(pair[0], pair[1], c.count(), cols, into);
                    int[] bits = new int[into.length];
                    for (int r = 0; r < bits.length; r++) {
                        bits[r] = Float.floatToRawIntBits(into[r]);
                    }
                    return bits;
                }, (a, b) -> assertArrayEquals(a, b, "row dots " + Arrays.toString(pair) + " cols " + cols));
            }
        }
    }

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void combinationsMatchWithAndWithoutTheBase(Dtype dtype, int count) {
        Chunk c = chunk(dtype, count, 3, 34);
        Operand[] deltas = {D0, D1, new Operand.Delta(2)};
        Operand[] values = {V0, V1, new Operand.Value(2)};
        float[] coefficients = {0.61f, -0.37f, 1.3f};
        for (Dtype out : Dtype.floats()) {
            same(c, k -> merged(k, c, out, m -> k.combine(deltas, coefficients, true, c.count(), m)),
                    (a, b) -> assertMerged(a, b, "base + deltas -> " + out));
            same(c, k -> merged(k, c, out, m -> k.combine(values, coefficients, false, c.count(), m)),
                    (a, b) -> assertMerged(a, b, "values -> " + out));
        }
    }

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void perRowCombinationsMatch(Dtype dtype, int count) {
        int cols = count % 5 == 0 ? 5 : 1;
        int rows = count / cols;
        Chunk c = chunk(dtype, count, 2, 35);
        float[][] coefficients = new float[2][rows];
        SplittableRandom random = new SplittableRandom(36);
        for (int r = 0; r < rows; r++) {
            coefficients[0][r] = (float) random.nextDouble(-1, 1);
            coefficients[1][r] = (float) random.nextDouble(-1, 1);
        }
        for (boolean plusBase : new boolean[]{false, true}) {
            Operand[] terms = plusBase ? new Operand[]{D0, D1} : new Operand[]{V0, V1};
            same(c, k -> merged(k, c, Dtype.F32, m -> k.combineRows(terms, coefficients, cols, plusBase, c.count(), m)),
                    (a, b) -> assertMerged(a, b, "per-row, base " + plusBase));
        }
    }

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void loraAdaptersApplyAsOnTheCpuBeforeTheMerge(Dtype dtype, int count) {
        Chunk c = chunk(dtype, count, 2, 43);
        SplittableRandom random = new SplittableRandom(count + 7);
        int cols = 7;
        int rank = 3;
        long start = c.start();
        long firstRow = start / cols;
        long lastRow = (start + Math.max(count, 1) - 1) / cols;
        for (boolean transposed : new boolean[]{false, true}) {
            // Transposed: rows of W index A's columns and columns index B's rows (all of B is given).
            int aCols = transposed ? (int) lastRow + 1 : cols;
            int bRows = transposed ? cols : (int) (lastRow - firstRow + 1);
            float[] a = new float[rank * aCols];
            float[] b = new float[bRows * rank];
            for (int j = 0; j < a.length; j++) {
                a[j] = (float) random.nextGaussian();
            }
            for (int j = 0; j < b.length; j++) {
                b[j] = (float) random.nextGaussian() * 0.01f;
            }
            dev.amalgam.kernels.LowRankFactors f = new dev.amalgam.kernels.LowRankFactors(a, rank, aCols, b,
                    transposed ? 0 : firstRow, 0.37f, transposed, cols, dtype);
            same(c, k -> merged(k, c, Dtype.F32, m -> {
                k.addLowRank(0, f, c.count(), start);
                k.addLowRank(1, f, c.count(), start);
                k.mergeLinear(c.count(), new float[]{0.5f, 0.25f}, false, m);
            }), (x, y) -> assertMerged(x, y, "lora, transposed " + transposed));
        }
    }

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void passthroughCopiesTheVeryBitsOrScalesThem(Dtype dtype, int count) {
        Chunk c = chunk(dtype, count, 1, 41);
        byte[] x = c.stored()[0];
        int width = dtype.byteSize();
        // A negative zero and a NaN with a payload, which a sum starting from +0 would change.
        long[] special = switch (dtype) {
            case F32 -> new long[]{0x80000000L, 0x7fc01234L};
            case BF16 -> new long[]{0x8000L, 0x7fc1L};
            default -> new long[]{0x8000L, 0x7e01L};
        };
        for (int k = 0; k < special.length && k < count; k++) {
            for (int b = 0; b < width; b++) {
                x[k * width + b] = (byte) (special[k] >>> (8 * b));
            }
        }
        same(c, k -> merged(k, c, dtype, m -> k.scale(null, c.count(), m)), (a, b) -> {
            assertMerged(a, b, "passthrough");
            assertArrayEquals(x, a.bytes(), "passthrough without a scale writes the input's bytes");
        });
        for (Float factor : new Float[]{0.5f, -1.37f, 3.0f}) {
            same(c, k -> merged(k, c, Dtype.F32, m -> k.scale(factor, c.count(), m)),
                    (a, b) -> assertMerged(a, b, "passthrough scale " + factor));
        }
    }

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void nearswapMatches(Dtype dtype, int count) {
        Chunk c = chunk(dtype, count, 1, 37);
        for (float t : new float[]{0.0625f, 0.5f, 1e-3f}) {
            same(c, k -> merged(k, c, dtype, m -> k.nearswap(t, c.count(), m)),
                    (a, b) -> assertMerged(a, b, "nearswap t " + t));
        }
    }

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void ramAndRamPlusMatch(Dtype dtype, int count) {
        Chunk c = chunk(dtype, count, 3, 38);
        for (float epsilon : new float[]{0f, 0.0625f}) {
            for (float[] scales : new float[][]{null, {1.0f, 1.7f, 0.4f}}) {
                same(c, k -> merged(k, c, dtype, m -> k.ram(epsilon, scales, c.count(), m)),
                        (a, b) -> assertMerged(a, b, (scales == null ? "ram" : "ram+") + " epsilon " + epsilon));
            }
        }
    }

    private static final Operand VARIANCE = new Operand.Variance();

    /**
     * What an order statistic of {@code a} reads from a chunk: the high histogram, the low one
     * under the median's bucket, the count equal to the value found, and the non-zero count.
     */
    private static long[] orderFigures(ChunkKernels k, Operand a, int count) {
        long[] high = new long[MagnitudeHistogram.BINS];
        k.histogramHigh(a, count, high);
        int bucket = MagnitudeHistogram.select(high, count / 2).bucket();
        long[] low = new long[MagnitudeHistogram.BINS];
        k.histogramLow(a, count, bucket, low);
        int valueBits = (bucket << 16) | MagnitudeHistogram.select(low, 0).bucket();
        long[] out = Arrays.copyOf(high, high.length + low.length + 2);
        System.arraycopy(low, 0, out, high.length, low.length);
        out[out.length - 2] = k.countEqual(a, count, valueBits);
        out[out.length - 1] = k.countNonzero(a, count);
        return out;
    }

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void orderStatisticsOfDerivedOperandsMatch(Dtype dtype, int count) {
        Chunk c = chunk(dtype, count, 3, 41);
        int cols = count % 5 == 0 ? 5 : count;
        for (Operand a : new Operand[]{VARIANCE, new Operand.Importance(cols)}) {
            same(c, k -> orderFigures(k, a, c.count()), (x, y) -> assertArrayEquals(x, y, a.toString()));
        }
    }

    /** Top-k rules over the variance: part of a run of equal variances, none, all. */
    private static List<KeepRule> selections(Chunk c) {
        return List.of(new KeepRule.TopK(Float.floatToRawIntBits(0.0039f), c.count() / 7, 2),
                new KeepRule.TopK(0, c.count() / 3, 0),
                new KeepRule.TopK(Integer.MAX_VALUE, 0, 0),
                new KeepRule.All());
    }

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void selectedDeltasAndTheirSquaresMatch(Dtype dtype, int count) {
        Chunk c = chunk(dtype, count, 3, 42);
        for (KeepRule rule : selections(c)) {
            same(c, k -> {
                k.select(VARIANCE, rule, c.start(), c.count());
                int[] bits = new int[c.models() + 1];
                for (int i = 0; i < c.models(); i++) {
                    ExactDot dot = new ExactDot();
                    Operand selected = new Operand.Selected(i);
                    k.dot(selected, selected, c.count(), dot);
                    bits[i] = Float.floatToRawIntBits(dot.toFloat());
                }
                ExactDot mixed = new ExactDot();
                k.dot(D0, new Operand.Selected(1), c.count(), mixed);
                bits[c.models()] = Float.floatToRawIntBits(mixed.toFloat());
                return bits;
            }, (a, b) -> assertArrayEquals(a, b, "selected squares, " + rule));
        }
    }

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void sceMergesMatchWithAndWithoutASelection(Dtype dtype, int count) {
        Chunk c = chunk(dtype, count, 3, 43);
        float[] weights = {0.2f, 0.5f, 0.3f};
        same(c, k -> merged(k, c, dtype, m -> k.sce(weights, false, c.count(), m)),
                (a, b) -> assertMerged(a, b, "sce without selection"));
        for (KeepRule rule : selections(c)) {
            same(c, k -> merged(k, c, dtype, m -> {
                k.select(VARIANCE, rule, c.start(), c.count());
                k.sce(weights, true, c.count(), m);
            }), (a, b) -> assertMerged(a, b, "sce over " + rule));
        }
    }

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void fusionMatchesAtThresholdsInsideTheImportances(Dtype dtype, int count) {
        Chunk c = chunk(dtype, count, 1, 44);
        int cols = count % 5 == 0 ? 5 : count;
        // A threshold inside the importances: the lower bound of the bucket holding the median.
        float median = on(CpuBackend.INSTANCE, c, k -> {
            long[] high = new long[MagnitudeHistogram.BINS];
            k.histogramHigh(new Operand.Importance(cols), c.count(), high);
            return Float.intBitsToFloat(MagnitudeHistogram.select(high, c.count() / 2).bucket() << 16);
        });
        for (float threshold : new float[]{0f, median, Float.MAX_VALUE}) {
            same(c, k -> merged(k, c, dtype, m -> k.fuse(threshold, cols, c.count(), m)),
                    (a, b) -> assertMerged(a, b, "fuse at " + threshold));
        }
    }

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void columnDotsAndPerColumnCombinationsMatch(Dtype dtype, int count) {
        int columns = count % 5 == 0 ? 5 : count;
        Chunk c = chunk(dtype, count, 2, 45);
        for (Operand[] pair : new Operand[][]{{D0, D1}, {V0, V0}, {V0, V1}}) {
            same(c, k -> {
                float[] into = new float[columns];
                k.columnDots(pair[0], pair[1], c.count(), columns, into);
                int[] bits = new int[columns];
                for (int i = 0; i < columns; i++) {
                    bits[i] = Float.floatToRawIntBits(into[i]);
                }
                return bits;
            }, (a, b) -> assertArrayEquals(a, b, "column dots " + Arrays.toString(pair)));
        }
        float[][] coefficients = new float[2][columns];
        SplittableRandom random = new SplittableRandom(46);
        for (int i = 0; i < columns; i++) {
            coefficients[0][i] = (float) random.nextDouble(-1, 1);
            coefficients[1][i] = (float) random.nextDouble(-1, 1);
        }
        for (boolean plusBase : new boolean[]{false, true}) {
            Operand[] terms = plusBase ? new Operand[]{D0, D1} : new Operand[]{V0, V1};
            same(c, k -> merged(k, c, Dtype.F32, m -> k.combineColumns(terms, coefficients, columns, plusBase, c.count(),
                    m)), (a, b) -> assertMerged(a, b, "per-column, base " + plusBase));
        }
    }
    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void widenElementMergesMatch(Dtype dtype, int count) {
        Chunk c = chunk(dtype, count, 3, 47);
        // Thresholds inside the |delta| grid, so both the softmax and the calibrated score occur.
        for (float[] thresholds : new float[][]{{0.03f, 0.1f, 0.0f}, {1e9f, 1e9f, 1e9f}}) {
            for (float calibration : new float[]{1.0f, 0.35f}) {
                same(c, k -> merged(k, c, dtype, m -> k.widenElements(thresholds, calibration, c.count(), m)),
                        (a, b) -> assertMerged(a, b, "widen elements " + Arrays.toString(thresholds) + " calibration "
                                + calibration));
            }
        }
    }

    /** PCB clamp bounds inside the |delta| grid, one pair per model, and the balance's drop bounds. */
    private static final float[] PCB_LO = {0.015625f, 0.0f, 0.03125f};
    private static final float[] PCB_HI = {0.125f, 6.2f, 0.0625f};

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void pcbBalancesAndTheirOrderStatisticsMatch(Dtype dtype, int count) {
        Chunk c = chunk(dtype, count, 3, 48);
        for (int model = 0; model < 3; model++) {
            for (boolean positive : new boolean[]{true, false}) {
                Operand a = new Operand.Balance(model, PCB_LO[model], PCB_HI[model], positive);
                same(c, k -> orderFigures(k, a, c.count()), (x, y) -> assertArrayEquals(x, y, a.toString()));
            }
        }
    }

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void pcbMergesMatch(Dtype dtype, int count) {
        Chunk c = chunk(dtype, count, 3, 49);
        float[][] drops = {{-0.5f, 0.0f, 0.2f}, {1.0f, 1.0f, -3.0f}};
        float[][] tops = {{2.5f, 1.0f, 7.0f}, {1.0f, 2.0f, 0.5f}};
        for (int d = 0; d < drops.length; d++) {
            float[] low = drops[d];
            float[] high = tops[d];
            same(c, k -> merged(k, c, dtype, m -> k.pcb(PCB_LO, PCB_HI, low, high, 0.8f, c.count(), m)),
                    (a, b) -> assertMerged(a, b, "pcb low " + Arrays.toString(low) + " high " + Arrays.toString(high)));
        }
    }
    /**
     * A chunk with companion inputs: {@code stored} in slot order (models, the base or null, then
     * one companion per model), companions non-negative on a small grid with zeros and ties.
     */
    private record CompanionChunk(Dtype dtype, int count, int models, byte[][] stored) {
    }

    private static CompanionChunk companionChunk(Dtype dtype, int count, int models, boolean base, long seed) {
        Chunk c = chunk(dtype, count, models, seed);
        SplittableRandom random = new SplittableRandom(seed + 1);
        byte[][] stored = new byte[2 * models + 1][];
        for (int i = 0; i < models; i++) {
            stored[i] = c.stored()[i];
            float[] v = new float[count];
            for (int j = 0; j < count; j++) {
                v[j] = random.nextInt(6) == 0 ? 0.0f : (random.nextInt(9) + 1) * 0.03125f;
            }
            stored[models + 1 + i] = encode(dtype, v);
        }
        stored[models] = base ? c.stored()[models] : null;
        return new CompanionChunk(dtype, count, models, stored);
    }

    private <T> T onCompanions(KernelBackend backend, CompanionChunk c, Function<ChunkKernels, T> work) {
        boolean base = c.stored()[c.models()] != null;
        try (ChunkKernels k = backend.open(allocator, "test", c.count(), c.models(), base, c.models())) {
            k.beginChunk();
            for (int slot = 0; slot < c.stored().length; slot++) {
                if (c.stored()[slot] != null) {
                    k.input(slot).setBytes(0, c.stored()[slot]);
                    k.decode(slot, c.dtype(), c.count());
                }
            }
            return work.apply(k);
        }
    }

    private <T> void sameWithCompanions(CompanionChunk c, Function<ChunkKernels, T> work,
                                        java.util.function.BiConsumer<T, T> compare) {
        T cpu = onCompanions(CpuBackend.INSTANCE, c, work);
        long before = launches(device);
        T onDevice = onCompanions(gpu, c, work);
        assertTrue(launches(device) != before || before < 0, "the device path launched no kernel");
        compare.accept(cpu, onDevice);
    }

    private static Merged mergedWith(ChunkKernels k, CompanionChunk c, java.util.function.Consumer<ChunkMetrics> merge) {
        ChunkMetrics metrics = new ChunkMetrics(c.models());
        merge.accept(metrics);
        ArrowBuf encoded = k.encodeOut(c.dtype(), c.count()).await();
        byte[] bytes = new byte[c.count() * c.dtype().byteSize()];
        encoded.getBytes(0, bytes);
        return new Merged(bytes, metrics);
    }

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void fisherAndOtaMergesFromCompanionInputsMatch(Dtype dtype, int count) {
        CompanionChunk c = companionChunk(dtype, count, 3, false, 50);
        float[] coefficients = {0.7f, 1.9f, 0.05f};
        for (boolean favorTarget : new boolean[]{true, false}) {
            sameWithCompanions(c, k -> mergedWith(k, c, m -> k.fisher(coefficients, 0.03125f, favorTarget, c.count(), m)),
                    (a, b) -> assertMerged(a, b, "fisher, favor target " + favorTarget));
        }
        for (float epsilon : new float[]{1e-8f, 0.001f}) {
            sameWithCompanions(c, k -> mergedWith(k, c, m -> k.ota(epsilon, c.count(), m)),
                    (a, b) -> assertMerged(a, b, "ota, epsilon " + epsilon));
        }
    }

    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void graftsAndTheirSaliencesMatch(Dtype dtype, int count) {
        CompanionChunk c = companionChunk(dtype, count, 1, true, 51);
        Operand.Salience salience = new Operand.Salience(0, 2);
        long[] cpuHistogram = onCompanions(CpuBackend.INSTANCE, c, k -> {
            long[] high = new long[MagnitudeHistogram.BINS];
            k.histogramHigh(salience, c.count(), high);
            return high;
        });
        sameWithCompanions(c, k -> {
            long[] high = new long[MagnitudeHistogram.BINS];
            k.histogramHigh(salience, c.count(), high);
            long[] out = Arrays.copyOf(high, high.length + 2);
            out[high.length] = k.countEqual(salience, c.count(), 0);
            out[high.length + 1] = k.countNonzero(salience, c.count());
            return out;
        }, (x, y) -> assertArrayEquals(x, y, "salience order statistics"));
        // A threshold at the median bucket's lower edge with part of its equal entries kept, zero
        // scores with some of them kept (k past the non-zero scores), none and all.
        int median = MagnitudeHistogram.select(cpuHistogram, c.count() / 2).bucket() << 16;
        for (KeepRule.TopK rule : List.of(new KeepRule.TopK(median, 3, 1), new KeepRule.TopK(0, c.count() / 5, 0),
                new KeepRule.TopK(Integer.MAX_VALUE, 0, 0), new KeepRule.TopK(0, c.count(), 0))) {
            sameWithCompanions(c, k -> mergedWith(k, c, m -> k.graft(salience, rule, c.count(), m)),
                    (a, b) -> assertMerged(a, b, "graft " + rule));
        }
    }
    @ParameterizedTest(name = "{0} x {1}")
    @MethodSource("dtypesAndCounts")
    void sumsOfTheOutputMatch(Dtype dtype, int count) {
        Chunk c = chunk(dtype, count, 3, 52);
        Operand[] deltas = {D0, new Operand.Delta(1), new Operand.Delta(2)};
        float[] weights = {1.0f, -0.6f, 0.35f};
        ModelTerm[] terms = new ModelTerm[3];
        for (int i = 0; i < 3; i++) {
            terms[i] = new ModelTerm(weights[i], new KeepRule.TopK(Float.floatToRawIntBits(0.0625f), c.count() / 9, 0),
                    1.0f);
        }
        // LiNeS' two quantities in the order the statistics stage asks them: the weighted sum of the
        // deltas, then the merge (which may overwrite the decoded inputs) minus the base.
        same(c, k -> {
            ExactSum weighted = new ExactSum();
            k.combine(deltas, weights, false, c.count(), new ChunkMetrics(3));
            k.outputMagnitudes(false, c.count(), weighted);
            ExactSum merged = new ExactSum();
            k.mergeTaskVector(c.count(), c.start(), terms, Consensus.SUM, false, 1.0f, new ChunkMetrics(3));
            k.outputMagnitudes(true, c.count(), merged);
            return new float[]{weighted.toFloat(), merged.toFloat()};
        }, (a, b) -> assertArrayEquals(a, b, "output sums"));
    }
}
