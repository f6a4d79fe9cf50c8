package dev.amalgam.cli;

import dev.amalgam.format.StoredTensor;
import dev.amalgam.job.MergeJob;
import dev.amalgam.method.MergeMethod;
import dev.amalgam.method.Reduction;
import dev.amalgam.method.StatisticRequest;
import dev.amalgam.plan.ChunkPlan;
import dev.amalgam.plan.MergePlan;
import dev.amalgam.plan.ResourceCheck;
import dev.amalgam.plan.ShardPlan;
import dev.amalgam.plan.TensorPlan;
import dev.amalgam.stats.LocalStatistics;
import dev.amalgam.stats.StatisticsResult;

import java.util.List;
import java.util.Locale;
import java.util.Optional;

/** What {@code amalgam plan} prints: the merge a plan describes, in a user's terms. */
final class PlanDescription {
    private PlanDescription() {
    }

    static String of(MergeJob.Inspection inspection, ResourceCheck.Settings settings, String master, boolean onePass,
                     Optional<BenchFigures.Figure> figure) {
        MergePlan plan = inspection.planned().plan();
        MergeMethod method = inspection.planned().method();
        StringBuilder out = new StringBuilder();
        int tensors = 0;
        for (TensorPlan t : plan.tensors()) {
            tensors += t.derived() ? 0 : 1;
        }
        if (inspection.planned().moe() != null) {
            out.append(line("assemble", inspection.planned().moe().describe() + ", from "
                    + inspection.planned().inputs().size() + " checkpoints (copied by passthrough)"));
        } else {
            out.append(line("merge", method.name() + " of " + plan.modelCount() + (plan.modelCount() == 1 ? " model" : " models")
                    + (plan.settings().hasBase() ? " onto the base " + inspection.planned().reference().directory() : "")));
        }
        if (inspection.planned().vocabulary() != null) {
            String source = inspection.config().tokenizerSource() == null ? "base" : inspection.config().tokenizerSource();
            out.append(line("vocabulary", inspection.planned().vocabulary().describe(source)));
        }
        out.append(line("tensors", tensors + ", " + plan.chunks().length + " chunks of at most "
                + String.format(Locale.ROOT, "%,d", ResourceCheck.maxChunk(plan)) + " elements"));

        // Statistics: what round 0 asks for is known from the plan; later rounds depend on its values.
        int whole = 0;
        int cut = 0;
        boolean orders = false;
        long cutBytes = 0;
        boolean[] multi = new boolean[plan.tensors().length];
        for (ChunkPlan c : plan.chunks()) {
            multi[c.tensor()] |= !LocalStatistics.isLocal(method, plan.tensors()[c.tensor()], c);
        }
        for (TensorPlan t : plan.tensors()) {
            if (t.derived() || t.copy()) {
                continue;
            }
            List<StatisticRequest> requests = method.statistics(t, 0, StatisticsResult.empty().view(t.index(), -1));
            if (requests.isEmpty()) {
                continue;
            }
            if (multi[t.index()]) {
                cut++;
                cutBytes += inputBytes(t);
                orders |= requests.stream().anyMatch(r -> r.reduction() == Reduction.ORDER);
            } else {
                whole++;
            }
        }
        long statisticsBytes = orders && onePass ? cutBytes + cutBytes / 64 : cutBytes;
        if (whole + cut == 0) {
            out.append(line("statistics", "none: " + method.name() + " merges each chunk on its own, one read of the inputs"));
        } else {
            out.append(line("statistics", (whole + cut) + " tensors need them: " + whole + " kept whole, computed in "
                    + "their merge task (no extra read); " + cut + " cut into chunks or reduced over more than their "
                    + "tensor"
                    + (cut == 0 ? "" : ", whose statistics read their inputs once more"
                    + (orders && onePass ? " after a 1/64 sample" : "") + " (" + gb(statisticsBytes) + ")")
                    + ". A method that asks for further rounds after seeing these values reads those tensors again."));
        }
        long input = plan.inputBytes();
        long read = input + statisticsBytes;
        out.append(line("reads", gb(read) + ": the inputs' " + gb(input) + " once by the merge"
                + (statisticsBytes > 0 ? " and " + gb(statisticsBytes) + " by the statistics" : "")
                + String.format(Locale.ROOT, " (%.2fx the input)", read / (double) Math.max(1, input))));
        out.append(line("writes", gb(plan.outputBytes()) + " in " + plan.shards().length
                + (plan.shards().length == 1 ? " shard" : " shards") + ":"));
        for (ShardPlan s : plan.shards()) {
            out.append("      ").append(s.fileName()).append("  ").append(s.tensorCount()).append(" tensors, ")
                    .append(gb(s.fileSize())).append('\n');
        }
        long perTask = ResourceCheck.taskHostBytes(plan, settings.gpuHost());
        out.append(line("memory", mib(perTask) + " of Arrow buffers per task; " + settings.tasksPerExecutor()
                + (settings.tasksPerExecutor() == 1 ? " task" : " tasks") + " per executor hold "
                + mib(perTask * settings.tasksPerExecutor()) + " of the " + mib(settings.executorLimit())
                + " limit (--executor-memory-limit)"));
        if (figure.isPresent()) {
            BenchFigures.Figure f = figure.get();
            double seconds = input / 1e9 / f.inputGbPerSecond();
            String cold = f.coldInputGbPerSecond() > 0
                    ? String.format(Locale.ROOT, " to %.0f s", input / 1e9 / f.coldInputGbPerSecond()) : "";
            out.append(line("estimate", String.format(Locale.ROOT, "%.0f s%s: this plan's %s of input at the %.3f GB/s "
                            + "%s measured for %s on this machine (%s, %s; %.1f GB of input) with compiled code%s; "
                            + "Spark's start-up and publishing not included%s", seconds, cold, gb(input),
                    f.inputGbPerSecond(), "`bench`", f.method(), f.master(), f.measured(), f.inputGb(),
                    cold.isEmpty() ? "" : String.format(Locale.ROOT, ", and at %.3f GB/s for a first merge in a fresh"
                            + " JVM (compilation included), which short merges pay", f.coldInputGbPerSecond()),
                    f.master().equals(master) ? "" : "; it was measured on " + f.master() + ", not " + master
                            + ": scale by the cores")));
        } else {
            out.append(line("estimate", "none: `bench` has not measured " + method.name() + " on this machine; "
                    + "run `scripts/amalgam bench --methods " + method.name() + " --size 1G` once and plan uses its "
                    + "figure (" + BenchFigures.file() + ")"));
        }
        return out.toString();
    }

    private static long inputBytes(TensorPlan t) {
        long bytes = t.base() == null ? 0 : t.base().byteLength();
        for (StoredTensor m : t.models()) {
            bytes += m.byteLength();
        }
        return bytes;
    }

    private static String line(String key, String text) {
        return String.format(Locale.ROOT, "%-11s %s%n", key, text);
    }

    private static String gb(long bytes) {
        return bytes >= 1e9 ? String.format(Locale.ROOT, "%.2f GB", bytes / 1e9)
                : bytes >= 1e6 ? String.format(Locale.ROOT, "%.1f MB", bytes / 1e6)
                : String.format(Locale.ROOT, "%.1f kB", bytes / 1e3);
    }

    private static String mib(long bytes) {
        return bytes >= 1L << 30 ? String.format(Locale.ROOT, "%.1f GiB", bytes / (double) (1L << 30))
                : bytes >= 1L << 20 ? String.format(Locale.ROOT, "%.1f MiB", bytes / (double) (1L << 20))
                : String.format(Locale.ROOT, "%.1f KiB", bytes / 1024.0);
    }
}
