package dev.amalgam.kernels;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorShape;

import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import org.apache.arrow.memory.ArrowBuf;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * SIMD versions of the hot loops (the JDK's Vector API), lane for lane the same IEEE operations
 * in the same order as the scalar code in {@link TaskVectorKernel} and {@link KeepRule}, which
 * remains the definition and handles the tail of each chunk. Only loaded when the JVM has the
 * jdk.incubator.vector module ({@link Simd#ENABLED}).
 */
final class SimdKernels {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    /** Shorts with as many lanes as {@link #I}, for bf16 storage. */
    private static final VectorSpecies<Short> S = VectorSpecies.of(short.class,
            VectorShape.forBitSize(I.vectorBitSize() / 2));

    /** Full-width short and byte species for the bit-pattern counts, which widen nothing. */
    private static final VectorSpecies<Short> S_FULL = ShortVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Byte> B_FULL = ByteVector.SPECIES_PREFERRED;

    private SimdKernels() {
    }

    /** Bytes {@link #countLanes} covers of {@code length}; the rest is the caller's scalar tail. */
    static int countBound(int length) {
        return length - length % B_FULL.vectorByteSize();
    }

    /**
     * Lanes of {@code width} bytes in {@code [from, from + length)} whose bits under {@code mask}
     * equal {@code pattern} ({@link NonFinite}); {@code length} is a multiple of the vector size.
     */
    static long countLanes(ArrowBuf raw, long from, int length, int width, long mask, long pattern) {
        ByteBuffer b = raw.nioBuffer(from, length).order(LE);
        int step = B_FULL.vectorByteSize();
        long n = 0;
        switch (width) {
            case 4 -> {
                for (int at = 0; at < length; at += step) {
                    n += IntVector.fromByteBuffer(I, b, at, LE).and((int) mask)
                            .compare(VectorOperators.EQ, (int) pattern).trueCount();
                }
            }
            case 2 -> {
                for (int at = 0; at < length; at += step) {
                    n += ShortVector.fromByteBuffer(S_FULL, b, at, LE).and((short) mask)
                            .compare(VectorOperators.EQ, (short) pattern).trueCount();
                }
            }
            default -> {
                for (int at = 0; at < length; at += step) {
                    n += ByteVector.fromByteBuffer(B_FULL, b, at, LE).and((byte) mask)
                            .compare(VectorOperators.EQ, (byte) pattern).trueCount();
                }
            }
        }
        return n;
    }

    /** Elements a vector loop covers for {@code count}; the rest is the scalar tail. */
    static int bound(int count) {
        return F.loopBound(count);
    }

    private static ByteBuffer view(ArrowBuf buf, int count) {
        return buf.nioBuffer(0, count * 4).order(LE);
    }

    /**
     * Every model's x = x - base over [0, bound), adding each model's sum of squared deltas into
     * {@code squares} and each pair's dot product of deltas into {@code dots}
     * ({@link ChunkMetrics#pair}), for the run report. Block by block: a model's delta, still in a
     * register, is multiplied with the deltas of the (up to three) models before it in the same
     * block, which are in the L1 cache; float lanes within a block, blocks added in double.
     */
    static void toDeltas(ArrowBuf[] models, ArrowBuf base, int count, double[] squares, double[] dots) {
        int m = models.length;
        ByteBuffer bb = view(base, count);
        ByteBuffer[] xb = new ByteBuffer[m];
        for (int i = 0; i < m; i++) {
            xb[i] = view(models[i], count);
        }
        float[] sums = new float[4];
        int end = bound(count);
        for (int block = 0; block < end; block += BLOCK) {
            int to = Math.min(end, block + BLOCK);
            for (int i = 0; i < m; i++) {
                int fused = Math.min(i, 3);
                switch (fused) {
                    case 0 -> blockDelta(xb[i], bb, block, to, sums);
                    case 1 -> blockDelta(xb[i], bb, xb[i - 1], block, to, sums);
                    case 2 -> blockDelta(xb[i], bb, xb[i - 2], xb[i - 1], block, to, sums);
                    default -> blockDelta(xb[i], bb, xb[i - 3], xb[i - 2], xb[i - 1], block, to, sums);
                }
                squares[i] += sums[0];
                for (int k = 0; k < fused; k++) {
                    dots[ChunkMetrics.pair(i - fused + k, i, m)] += sums[1 + k];
                }
                for (int k = 0; k < i - fused; k++) {
                    dots[ChunkMetrics.pair(k, i, m)] += blockDot(xb[k], xb[i], block, to);
                }
            }
        }
    }

    private static void blockDelta(ByteBuffer x, ByteBuffer base, int from, int to, float[] sums) {
        FloatVector sq = FloatVector.zero(F);
        for (int j = from; j < to; j += F.length()) {
            int at = j << 2;
            FloatVector d = FloatVector.fromByteBuffer(F, x, at, LE).sub(FloatVector.fromByteBuffer(F, base, at, LE));
            d.intoByteBuffer(x, at, LE);
            sq = sq.add(d.mul(d));
        }
        sums[0] = sq.reduceLanes(VectorOperators.ADD);
    }

    private static void blockDelta(ByteBuffer x, ByteBuffer base, ByteBuffer p0, int from, int to, float[] sums) {
        FloatVector sq = FloatVector.zero(F);
        FloatVector s0 = FloatVector.zero(F);
        for (int j = from; j < to; j += F.length()) {
            int at = j << 2;
            FloatVector d = FloatVector.fromByteBuffer(F, x, at, LE).sub(FloatVector.fromByteBuffer(F, base, at, LE));
            d.intoByteBuffer(x, at, LE);
            sq = sq.add(d.mul(d));
            s0 = s0.add(FloatVector.fromByteBuffer(F, p0, at, LE).mul(d));
        }
        sums[0] = sq.reduceLanes(VectorOperators.ADD);
        sums[1] = s0.reduceLanes(VectorOperators.ADD);
    }

    private static void blockDelta(ByteBuffer x, ByteBuffer base, ByteBuffer p0, ByteBuffer p1, int from, int to,
                                   float[] sums) {
        FloatVector sq = FloatVector.zero(F);
        FloatVector s0 = FloatVector.zero(F);
        FloatVector s1 = FloatVector.zero(F);
        for (int j = from; j < to; j += F.length()) {
            int at = j << 2;
            FloatVector d = FloatVector.fromByteBuffer(F, x, at, LE).sub(FloatVector.fromByteBuffer(F, base, at, LE));
            d.intoByteBuffer(x, at, LE);
            sq = sq.add(d.mul(d));
            s0 = s0.add(FloatVector.fromByteBuffer(F, p0, at, LE).mul(d));
            s1 = s1.add(FloatVector.fromByteBuffer(F, p1, at, LE).mul(d));
        }
        sums[0] = sq.reduceLanes(VectorOperators.ADD);
        sums[1] = s0.reduceLanes(VectorOperators.ADD);
        sums[2] = s1.reduceLanes(VectorOperators.ADD);
    }

    private static void blockDelta(ByteBuffer x, ByteBuffer base, ByteBuffer p0, ByteBuffer p1, ByteBuffer p2,
                                   int from, int to, float[] sums) {
        FloatVector sq = FloatVector.zero(F);
        FloatVector s0 = FloatVector.zero(F);
        FloatVector s1 = FloatVector.zero(F);
        FloatVector s2 = FloatVector.zero(F);
        for (int j = from; j < to; j += F.length()) {
            int at = j << 2;
            FloatVector d = FloatVector.fromByteBuffer(F, x, at, LE).sub(FloatVector.fromByteBuffer(F, base, at, LE));
            d.intoByteBuffer(x, at, LE);
            sq = sq.add(d.mul(d));
            s0 = s0.add(FloatVector.fromByteBuffer(F, p0, at, LE).mul(d));
            s1 = s1.add(FloatVector.fromByteBuffer(F, p1, at, LE).mul(d));
            s2 = s2.add(FloatVector.fromByteBuffer(F, p2, at, LE).mul(d));
        }
        sums[0] = sq.reduceLanes(VectorOperators.ADD);
        sums[1] = s0.reduceLanes(VectorOperators.ADD);
        sums[2] = s1.reduceLanes(VectorOperators.ADD);
        sums[3] = s2.reduceLanes(VectorOperators.ADD);
    }

    private static float blockDot(ByteBuffer a, ByteBuffer b, int from, int to) {
        FloatVector sum = FloatVector.zero(F);
        for (int j = from; j < to; j += F.length()) {
            int at = j << 2;
            sum = sum.add(FloatVector.fromByteBuffer(F, a, at, LE).mul(FloatVector.fromByteBuffer(F, b, at, LE)));
        }
        return sum.reduceLanes(VectorOperators.ADD);
    }

    /** Elements per block of {@link #toDeltas}: (models + 1) blocks of 4 KB stay in L1. */
    private static final int BLOCK = 1024;

    /** dst = x - base over [0, bound). */
    static void delta(ArrowBuf x, ArrowBuf base, ArrowBuf dst, int count) {
        ByteBuffer xb = view(x, count);
        ByteBuffer bb = view(base, count);
        ByteBuffer db = view(dst, count);
        int end = bound(count);
        for (int j = 0; j < end; j += F.length()) {
            int at = j << 2;
            FloatVector.fromByteBuffer(F, xb, at, LE).sub(FloatVector.fromByteBuffer(F, bb, at, LE)).intoByteBuffer(db, at, LE);
        }
    }

    /**
     * The combine step over [0, bound): weigh, elect signs (with consensus), normalize, lambda,
     * add the base. Returns the number of sign conflicts.
     */
    static long combine(ArrowBuf base, ArrowBuf[] models, int count, float[] weights, float[] scales,
                        boolean consensus, float plainDiv, boolean normalize, float lambda, ArrowBuf out) {
        // No arrays of vectors: they force every vector onto the heap. Each model's weighted
        // delta is recomputed where it is needed (same operations, same bits, still in cache).
        int m = models.length;
        ByteBuffer bb = view(base, count);
        ByteBuffer ob = view(out, count);
        ByteBuffer[] xb = new ByteBuffer[m];
        for (int i = 0; i < m; i++) {
            xb[i] = view(models[i], count);
        }
        long conflicts = 0;
        int end = bound(count);
        for (int j = 0; j < end; j += F.length()) {
            int at = j << 2;
            FloatVector sum = FloatVector.zero(F);
            for (int i = 0; i < m; i++) {
                sum = sum.add(weighted(xb[i], at, weights[i], scales[i]));
            }
            FloatVector mix;
            FloatVector div;
            if (consensus) {
                VectorMask<Float> positive = sum.compare(VectorOperators.GE, 0.0f);
                VectorMask<Float> negative = positive.not();
                mix = FloatVector.zero(F);
                div = FloatVector.zero(F);
                VectorMask<Float> conflict = F.maskAll(false);
                for (int i = 0; i < m; i++) {
                    FloatVector v = weighted(xb[i], at, weights[i], scales[i]);
                    VectorMask<Float> agree = positive.and(v.compare(VectorOperators.GT, 0.0f))
                            .or(negative.and(v.compare(VectorOperators.LT, 0.0f)));
                    mix = mix.add(v, agree);
                    div = div.add(FloatVector.broadcast(F, weights[i]), agree);
                    conflict = conflict.or(agree.not().and(v.compare(VectorOperators.NE, 0.0f)));
                }
                conflicts += conflict.trueCount();
                div = div.blend(1.0f, div.compare(VectorOperators.EQ, 0.0f));
            } else {
                mix = sum;
                div = FloatVector.broadcast(F, plainDiv);
            }
            if (normalize) {
                mix = mix.div(div);
            }
            if (lambda != 1.0f) {
                mix = mix.mul(lambda);
            }
            FloatVector.fromByteBuffer(F, bb, at, LE).add(mix).intoByteBuffer(ob, at, LE);
        }
        return conflicts;
    }

    /** {@code w * (d * s)}, the rescale skipped when it is 1, as the scalar weigh does. */
    private static FloatVector weighted(ByteBuffer x, int at, float weight, float scale) {
        FloatVector d = FloatVector.fromByteBuffer(F, x, at, LE);
        if (scale != 1.0f) {
            d = d.mul(scale);
        }
        return d.mul(weight);
    }

    /**
     * Top-k over [0, bound) for vectors holding no entry equal to the threshold (those need the
     * sequential equal-rank and are left to the scalar code, which {@code scalarBlock} runs).
     * Returns the kept count; {@code equalRank} is carried in {@code rank[0]}.
     */
    static long topK(ArrowBuf delta, int count, int thresholdBits, long equalsToKeep, long[] rank) {
        ByteBuffer db = view(delta, count);
        IntVector threshold = IntVector.broadcast(I, thresholdBits);
        IntVector zero = IntVector.zero(I);
        long kept = 0;
        int end = I.loopBound(count);
        for (int j = 0; j < end; j += I.length()) {
            int at = j << 2;
            IntVector raw = IntVector.fromByteBuffer(I, db, at, LE);
            IntVector bits = raw.and(0x7fffffff);
            VectorMask<Integer> equal = bits.compare(VectorOperators.EQ, threshold);
            if (equal.anyTrue()) {
                kept += KeepRule.TopK.scalarRange(delta, j, j + I.length(), thresholdBits, equalsToKeep, rank);
                continue;
            }
            VectorMask<Integer> keep = bits.compare(VectorOperators.GT, threshold);
            kept += keep.trueCount();
            raw.blend(zero, keep.not()).intoByteBuffer(db, at, LE);
        }
        return kept;
    }

    static int intBound(int count) {
        return I.loopBound(count);
    }

    /** bf16 to float32 over [0, intBound): the 16 bits become the high half of the float. */
    static void decodeBf16(ArrowBuf src, ArrowBuf dst, int count) {
        ByteBuffer sb = src.nioBuffer(0, count * 2).order(LE);
        ByteBuffer db = view(dst, count);
        int end = intBound(count);
        for (int j = 0; j < end; j += I.length()) {
            IntVector widened = (IntVector) ShortVector.fromByteBuffer(S, sb, j << 1, LE)
                    .convertShape(VectorOperators.S2I, I, 0);
            widened.lanewise(VectorOperators.LSHL, 16).intoByteBuffer(db, j << 2, LE);
        }
    }

    /** float32 to bf16 over [0, intBound), round to nearest even, NaN kept quiet: as floatToBfloat16. */
    static void encodeBf16(ArrowBuf src, ArrowBuf dst, int count) {
        ByteBuffer sb = view(src, count);
        ByteBuffer db = dst.nioBuffer(0, count * 2).order(LE);
        int end = intBound(count);
        for (int j = 0; j < end; j += I.length()) {
            IntVector bits = IntVector.fromByteBuffer(I, sb, j << 2, LE);
            IntVector high = bits.lanewise(VectorOperators.LSHR, 16);
            VectorMask<Integer> nan = bits.and(0x7fffffff).compare(VectorOperators.GT, 0x7f800000);
            IntVector rounded = bits.add(0x7fff).add(high.and(1)).lanewise(VectorOperators.LSHR, 16);
            ((ShortVector) rounded.blend(high.or(0x0040), nan).convertShape(VectorOperators.I2S, S, 0))
                    .intoByteBuffer(db, j << 1, LE);
        }
    }

    /**
     * {@link MagnitudeHistogram#addLow} over [0, end): a vector none of whose |delta| patterns lies
     * in the high bucket (most of them: one bucket holds a small share of a tensor) is skipped with
     * one compare; the others go through the scalar definition.
     */
    static void addLow(ArrowBuf delta, int end, int highBucket, long[] histogram) {
        ByteBuffer db = view(delta, end);
        int lo = highBucket << 16;
        int hi = lo | 0xffff;
        for (int j = 0; j < end; j += I.length()) {
            IntVector bits = IntVector.fromByteBuffer(I, db, j << 2, LE).and(0x7fffffff);
            if (bits.compare(VectorOperators.GE, lo).and(bits.compare(VectorOperators.LE, hi)).anyTrue()) {
                MagnitudeHistogram.addLow(delta, j, j + I.length(), highBucket, histogram);
            }
        }
    }

    /**
     * {@link MagnitudeHistogram#addBand} over [0, end), vectors with no |delta| pattern between the
     * band's lowest and highest high buckets skipped with two compares.
     */
    static void addBand(ArrowBuf delta, int end, int lowestBucket, int highestBucket, int[] slotOf, int[] band) {
        ByteBuffer db = view(delta, end);
        int lo = lowestBucket << 16;
        int hi = (highestBucket << 16) | 0xffff;
        for (int j = 0; j < end; j += I.length()) {
            IntVector bits = IntVector.fromByteBuffer(I, db, j << 2, LE).and(0x7fffffff);
            if (bits.compare(VectorOperators.GE, lo).and(bits.compare(VectorOperators.LE, hi)).anyTrue()) {
                MagnitudeHistogram.addBand(delta, j, j + I.length(), slotOf, band);
            }
        }
    }
}
