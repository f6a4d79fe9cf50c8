package dev.amalgam.executor;

import dev.amalgam.plan.MergePlan;
import org.apache.spark.api.java.JavaSparkContext;

import java.util.Collection;

/**
 * Names the Spark work of a step, so the Spark UI and event logs of a long merge read as the
 * steps it runs ("statistics round 1 (sample): 38 chunks of 12 tensors, 'a' .. 'b'") instead of
 * anonymous {@code collect at ...} lines. The job description names the jobs; the call site,
 * which Spark records when an RDD is created, names their stages, so a step is named before
 * its RDDs are built.
 */
public final class SparkWorkNames {
    private SparkWorkNames() {
    }

    /** Named work; closing it clears the name for what the driver runs next. */
    public interface Step extends AutoCloseable {
        @Override
        void close();
    }

    public static Step start(JavaSparkContext sc, String step, String range) {
        String description = step + ": " + range;
        sc.setJobDescription(description);
        sc.sc().setCallSite(description);
        return () -> {
            sc.setJobDescription(null);
            sc.sc().clearCallSite();
        };
    }

    /** The tensors {@code chunks} (indices into the plan's chunks) belong to, as a short range. */
    public static String chunkRange(MergePlan plan, Collection<Integer> chunks) {
        int first = Integer.MAX_VALUE;
        int last = -1;
        java.util.BitSet tensors = new java.util.BitSet();
        for (int c : chunks) {
            int t = plan.chunks()[c].tensor();
            tensors.set(t);
            first = Math.min(first, t);
            last = Math.max(last, t);
        }
        if (last < 0) {
            return "no chunks";
        }
        String names = first == last ? "'" + plan.tensors()[first].name() + "'"
                : "'" + plan.tensors()[first].name() + "' .. '" + plan.tensors()[last].name() + "'";
        return chunks.size() + (chunks.size() == 1 ? " chunk" : " chunks") + " of " + tensors.cardinality()
                + (tensors.cardinality() == 1 ? " tensor, " : " tensors, ") + names;
    }
}
