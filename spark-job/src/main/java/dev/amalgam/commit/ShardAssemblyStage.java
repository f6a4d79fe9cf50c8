package dev.amalgam.commit;

import dev.amalgam.staging.OutputTarget;

import dev.amalgam.executor.ExecutorHadoop;
import dev.amalgam.plan.MergePlan;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * Assembles the shards of a part-file merge. By concat on the driver where the file system has
 * it (metadata only); otherwise one executor task per shard streams it together, so the driver
 * never moves a model's bytes and shards are assembled in parallel.
 */
public final class ShardAssemblyStage {
    private ShardAssemblyStage() {
    }

    /** @return how the shards were assembled: "concat", "executor-copy", or "none" when all were done */
    public static String run(JavaSparkContext sc, Broadcast<MergePlan> planB, OutputTarget target,
                             ShardAssembler assembler) throws IOException {
        MergePlan plan = planB.value();
        List<Integer> pending = assembler.pending(plan);
        String how = pending.isEmpty() ? "none" : assembler.concatenates() ? "concat" : "executor-copy";
        if (how.equals("concat")) {
            for (int shard : pending) {
                assembler.concat(plan, shard);
            }
        } else if (how.equals("executor-copy")) {
            try (var step = dev.amalgam.executor.SparkWorkNames.start(sc, "shard assembly", pending.size()
                    + (pending.size() == 1 ? " shard, " : " shards, ") + "part files copied into "
                    + plan.shards()[pending.get(0)].fileName() + (pending.size() > 1 ? " .. "
                    + plan.shards()[pending.get(pending.size() - 1)].fileName() : ""))) {
                sc.parallelize(new ArrayList<>(pending), pending.size()).foreach(shard -> {
                    TaskContext task = TaskContext.get();
                    String attempt = "attempt-" + (task == null ? 0 : task.taskAttemptId());
                    ShardAssembler.open(target, ExecutorHadoop.configuration()).copy(planB.value(), shard, attempt);
                });
            }
        }
        assembler.finish();
        return how;
    }
}
