package dev.amalgam.job;

import dev.amalgam.AmalgamException;
import dev.amalgam.executor.ExecutorHadoop;
import dev.amalgam.executor.ExecutorMemory;
import dev.amalgam.executor.SparkWorkNames;
import dev.amalgam.format.Checkpoint;
import dev.amalgam.format.CheckpointReader;
import dev.amalgam.format.FormatException;
import dev.amalgam.format.RangeReader;
import dev.amalgam.format.StoredTensor;
import dev.amalgam.kernels.ElementCodec;
import dev.amalgam.plan.PlanOptions;
import org.apache.arrow.memory.ArrowBuf;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.spark.api.java.JavaSparkContext;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Compares two checkpoints tensor by tensor as a Spark job: each tensor is cut into chunks, every
 * task reads its chunk of A, B (and the base) with positioned reads and sums in double; the
 * driver adds the chunks' sums in chunk order, so the figures do not depend on partitioning.
 * A is the reference: the relative L2 difference is |A - B| / |A|; with a base, the cosine is
 * that of the deltas A - base and B - base. Values differ when their float32 bits differ.
 */
public final class CheckpointDiff {
    /** One tensor present in both with the same shape. */
    public record TensorDiff(String name, String dtypeA, String dtypeB, long elements, double relativeL2,
                             double maxAbsDifference, double cosine, long differing) implements Serializable {
    }

    /** The comparison, plus what could not be compared and why. */
    public record Result(String a, String b, String base, List<TensorDiff> tensors, List<String> onlyInA,
                         List<String> onlyInB, List<String> notCompared) {
        public long differingTensors() {
            return tensors.stream().filter(t -> t.differing() > 0).count();
        }
    }

    /** A chunk of a compared tensor: which tensor, where, and its stored tensors in A, B and the base. */
    record Chunk(int tensor, long start, int count, StoredTensor a, StoredTensor b, StoredTensor base)
            implements Serializable {
    }

    /** A chunk's sums: |a|^2, |x|^2, |y|^2, x.y (x, y: the values, or their deltas from the base), |a-b|^2, max |a-b|. */
    record Sums(int tensor, long start, double[] values, long differing) implements Serializable {
    }

    private CheckpointDiff() {
    }

    public static Result run(JavaSparkContext sc, String a, String b, String base, int chunkElements) {
        PlanOptions.checkChunkElements(chunkElements);
        CheckpointReader reader = new CheckpointReader(sc.hadoopConfiguration());
        List<String> problems = new ArrayList<>();
        Checkpoint ca = read(reader, a, problems);
        Checkpoint cb = read(reader, b, problems);
        Checkpoint cc = base == null ? null : read(reader, base, problems);
        if (!problems.isEmpty()) {
            throw new AmalgamException(AmalgamException.Kind.INPUT, problems);
        }
        Map<String, StoredTensor> inB = cb.byName();
        Map<String, StoredTensor> inBase = cc == null ? Map.of() : cc.byName();
        List<String> onlyInA = new ArrayList<>();
        List<String> notCompared = new ArrayList<>();
        List<StoredTensor[]> compared = new ArrayList<>();
        for (StoredTensor ta : ca.tensors()) {
            StoredTensor tb = inB.get(ta.name());
            StoredTensor tc = inBase.get(ta.name());
            if (tb == null) {
                onlyInA.add(ta.name());
            } else if (!Arrays.equals(ta.shape(), tb.shape())) {
                notCompared.add(ta.name() + ": shape " + Arrays.toString(ta.shape()) + " in A, "
                        + Arrays.toString(tb.shape()) + " in B");
            } else if (ta.quantization() != null || tb.quantization() != null) {
                notCompared.add(ta.name() + ": block-quantized (FP8 or MXFP4); compare the dequantized merges instead");
            } else if (cc != null && (tc == null || !Arrays.equals(tc.shape(), ta.shape()) || tc.quantization() != null)) {
                notCompared.add(ta.name() + ": the base has no tensor of that name and shape to take deltas from");
            } else {
                compared.add(new StoredTensor[]{ta, tb, tc});
            }
        }
        List<String> onlyInB = new ArrayList<>();
        Map<String, StoredTensor> inA = ca.byName();
        for (StoredTensor tb : cb.tensors()) {
            if (!inA.containsKey(tb.name())) {
                onlyInB.add(tb.name());
            }
        }
        List<Chunk> chunks = new ArrayList<>();
        for (int t = 0; t < compared.size(); t++) {
            StoredTensor[] s = compared.get(t);
            for (long start = 0; start < s[0].elements(); start += chunkElements) {
                chunks.add(new Chunk(t, start, (int) Math.min(chunkElements, s[0].elements() - start), s[0], s[1], s[2]));
            }
        }
        List<Sums> sums;
        try (SparkWorkNames.Step step = SparkWorkNames.start(sc, "diff", chunks.size() + " chunks of "
                + compared.size() + " tensors")) {
            sums = chunks.isEmpty() ? List.of() : sc.parallelize(chunks, Math.max(1, Math.min(chunks.size(),
                    4 * sc.defaultParallelism()))).map(CheckpointDiff::compare).collect();
        }
        double[][] total = new double[compared.size()][6];
        long[] differing = new long[compared.size()];
        // In chunk order: the same sums whatever the partitioning.
        List<Sums> ordered = new ArrayList<>(sums);
        ordered.sort((x, y) -> x.tensor() != y.tensor() ? Integer.compare(x.tensor(), y.tensor())
                : Long.compare(x.start(), y.start()));
        for (Sums s : ordered) {
            double[] t = total[s.tensor()];
            for (int i = 0; i < 5; i++) {
                t[i] += s.values()[i];
            }
            t[5] = Math.max(t[5], s.values()[5]);
            differing[s.tensor()] += s.differing();
        }
        List<TensorDiff> tensors = new ArrayList<>();
        for (int t = 0; t < compared.size(); t++) {
            double[] v = total[t];
            StoredTensor ta = compared.get(t)[0];
            double norm = Math.sqrt(v[0]);
            // Two zero vectors point the same way; one zero vector has no direction (NaN).
            double cosine = v[1] == 0 && v[2] == 0 ? 1.0 : v[3] / Math.sqrt(v[1] * v[2]);
            tensors.add(new TensorDiff(ta.name(), ta.dtype().safetensorsName(), compared.get(t)[1].dtype().safetensorsName(),
                    ta.elements(), norm == 0 ? (v[4] == 0 ? 0 : Double.POSITIVE_INFINITY) : Math.sqrt(v[4]) / norm, v[5],
                    cosine, differing[t]));
        }
        return new Result(a, b, base, tensors, onlyInA, onlyInB, notCompared);
    }

    private static Checkpoint read(CheckpointReader reader, String dir, List<String> problems) {
        try {
            return reader.read(dir);
        } catch (FormatException e) {
            problems.addAll(e.problems());
            return null;
        }
    }

    /** On an executor: one chunk's sums, in Arrow buffers bounded by the chunk (one raw buffer, one decoded per input). */
    private static Sums compare(Chunk c) {
        int inputs = c.base() == null ? 2 : 3;
        StoredTensor[] stored = {c.a(), c.b(), c.base()};
        long rawBytes = 0;
        for (int i = 0; i < inputs; i++) {
            rawBytes = Math.max(rawBytes, (long) c.count() * stored[i].dtype().byteSize());
        }
        ArrowBuf[] decoded = new ArrowBuf[inputs];
        try (BufferAllocator allocator = ExecutorMemory.root().newChildAllocator("diff", 0, Long.MAX_VALUE);
             RangeReader reader = new RangeReader(ExecutorHadoop.configuration());
             ArrowBuf raw = allocator.buffer(rawBytes)) {
            try {
                for (int i = 0; i < inputs; i++) {
                    StoredTensor t = stored[i];
                    reader.read(t.file(), t.offset() + c.start() * t.dtype().byteSize(),
                            (long) c.count() * t.dtype().byteSize(), raw);
                    decoded[i] = allocator.buffer(4L * c.count());
                    ElementCodec.decode(raw, t.dtype(), decoded[i], c.count());
                }
                return sums(c, decoded[0], decoded[1], inputs == 3 ? decoded[2] : null);
            } finally {
                for (ArrowBuf d : decoded) {
                    if (d != null) {
                        d.close();
                    }
                }
            }
        }
    }

    private static Sums sums(Chunk c, ArrowBuf a, ArrowBuf b, ArrowBuf base) {
        double aa = 0;
        double xx = 0;
        double yy = 0;
        double xy = 0;
        double dd = 0;
        double max = 0;
        long differing = 0;
        for (int j = 0; j < c.count(); j++) {
            long at = 4L * j;
            float va = a.getFloat(at);
            float vb = b.getFloat(at);
            // The cosine is of the deltas where there is a base, of the values otherwise.
            double x = base == null ? va : (double) va - base.getFloat(at);
            double y = base == null ? vb : (double) vb - base.getFloat(at);
            double d = (double) va - vb;
            aa += (double) va * va;
            xx += x * x;
            yy += y * y;
            xy += x * y;
            dd += d * d;
            max = Math.max(max, Math.abs(d));
            differing += Float.floatToIntBits(va) != Float.floatToIntBits(vb) ? 1 : 0;
        }
        return new Sums(c.tensor(), c.start(), new double[]{aa, xx, yy, xy, dd, max}, differing);
    }
}
