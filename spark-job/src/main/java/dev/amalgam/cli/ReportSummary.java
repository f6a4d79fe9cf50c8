package dev.amalgam.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.amalgam.job.MergeJob;

/** A few lines a person reads after a merge; the whole report is amalgam-report.json. */
final class ReportSummary {
    private ReportSummary() {
    }

    static String of(MergeJob.Result result) {
        JsonNode r = result.report();
        StringBuilder s = new StringBuilder();
        JsonNode moe = r.path("moe");
        s.append(moe.isObject() ? "assembled a " + moe.path("architecture").asText() + " MoE of "
                + moe.path("experts").asInt() + " experts" : "merged " + r.path("merge_method").asText())
                .append(" -> ").append(result.destination()).append('\n');
        s.append(String.format("  %d tensors in %d shard(s), %.1f MB written, %d chunks in %d partitions (%s writes)%n",
                r.path("tensors").size(), r.path("shards").asInt(), r.path("output_bytes").asLong() / 1e6,
                r.path("chunks").asInt(), r.path("partitions").asInt(), r.path("write_mode").asText()));
        s.append("  timings (s):");
        r.path("timings_seconds").fields().forEachRemaining(e ->
                s.append(String.format(" %s %.2f", e.getKey(), e.getValue().asDouble())));
        s.append('\n');
        double conflicts = 0;
        double kept = 0;
        int models = 0;
        int iterations = 0;
        for (JsonNode t : r.path("tensors")) {
            iterations = Math.max(iterations, t.path("iterations").asInt(0));
            conflicts += t.path("sign_conflict_fraction").asDouble();
            for (JsonNode m : t.path("models")) {
                kept += m.path("kept_density").asDouble();
                models++;
            }
        }
        if (models > 0) {
            s.append(String.format("  mean kept density %.3f, mean sign-conflict fraction %.3f%n",
                    kept / models, conflicts / Math.max(1, r.path("tensors").size())));
        }
        if (iterations > 0) {
            s.append(String.format("  iterations: at most %d on any tensor (per tensor in the report)%n", iterations));
        }
        s.append("  report: ").append(result.destination()).append("/amalgam-report.json, with charts: ")
                .append(result.destination()).append("/").append(dev.amalgam.commit.HtmlReport.FILE);
        return s.toString();
    }
}
