package dev.amalgam.job;

import dev.amalgam.merge.ChunkReport;
import dev.amalgam.plan.MergePlan;
import dev.amalgam.plan.TensorPlan;

import java.util.ArrayList;
import java.util.List;

/**
 * NaN and infinite values per tensor, per input model (the base last) and in the result, summed
 * from the merge stage's chunk reports.
 */
final class NonFiniteCounts {
    /** Tensors listed one by one in a message before the rest are counted. */
    static final int LISTED = 20;

    private final MergePlan plan;
    private final long[][] inputs;
    private final long[] output;

    private NonFiniteCounts(MergePlan plan, long[][] inputs, long[] output) {
        this.plan = plan;
        this.inputs = inputs;
        this.output = output;
    }

    static NonFiniteCounts of(MergePlan plan, List<ChunkReport> reports) {
        int slots = plan.modelCount() + 1;
        long[][] inputs = new long[plan.tensors().length][slots];
        long[] output = new long[plan.tensors().length];
        for (ChunkReport r : reports) {
            for (int i = 0; i < Math.min(slots, r.nonFiniteIn().length); i++) {
                inputs[r.tensor()][i] += r.nonFiniteIn()[i];
            }
            output[r.tensor()] += r.nonFiniteOut();
        }
        return new NonFiniteCounts(plan, inputs, output);
    }

    boolean any() {
        return anyInput() || total(output) > 0;
    }

    boolean anyInput() {
        for (long[] t : inputs) {
            if (total(t) > 0) {
                return true;
            }
        }
        return false;
    }

    /** Per input (the models, then the base), over all tensors. */
    long[] perInput() {
        long[] sums = new long[plan.modelCount() + 1];
        for (long[] t : inputs) {
            for (int i = 0; i < sums.length; i++) {
                sums[i] += t[i];
            }
        }
        return sums;
    }

    long[] ofTensor(int tensor) {
        return inputs[tensor].clone();
    }

    long outputOf(int tensor) {
        return output[tensor];
    }

    long output() {
        return total(output);
    }

    /**
     * One line per tensor and input holding non-finite values, then per merged tensor; bounded to
     * {@link #LISTED} lines and a count of the rest.
     *
     * @param inputNames the models' directories, then the base's (null when there is none)
     */
    List<String> lines(List<String> inputNames) {
        List<String> all = new ArrayList<>();
        int more = 0;
        for (TensorPlan t : plan.tensors()) {
            for (int i = 0; i < inputs[t.index()].length; i++) {
                if (inputs[t.index()][i] > 0) {
                    if (all.size() < LISTED) {
                        all.add((i == plan.modelCount() ? "base model " : "model ") + inputNames.get(i) + ": tensor '"
                                + t.name() + "' holds " + inputs[t.index()][i] + " NaN or infinite values (of "
                                + t.elements() + ")");
                    } else {
                        more++;
                    }
                }
            }
        }
        for (TensorPlan t : plan.tensors()) {
            if (output[t.index()] > 0) {
                if (all.size() < LISTED) {
                    all.add("the merged tensor '" + t.name() + "' holds " + output[t.index()]
                            + " NaN or infinite values (of " + t.elements() + ")");
                } else {
                    more++;
                }
            }
        }
        if (more > 0) {
            all.add("... and " + more + " more tensors with NaN or infinite values (all are in amalgam-report.json "
                    + "under --non-finite warn)");
        }
        return all;
    }

    private static long total(long[] values) {
        long n = 0;
        for (long v : values) {
            n += v;
        }
        return n;
    }
}
