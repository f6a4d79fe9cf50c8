package dev.amalgam.cli;

import dev.amalgam.job.NightlyRun;
import org.apache.spark.api.java.JavaSparkContext;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.concurrent.Callable;

@Command(name = "nightly", description = {
        "Merges CONFIG into DEST_ROOT/<time>-<fingerprint> and points DEST_ROOT/latest at it, unless nothing "
                + "changed since the latest merge (then exits 0 doing nothing). Keeps the newest --keep merges.",
        "For cron, systemd timers and Airflow: one run at a time per DEST_ROOT (a second exits 6), a killed "
                + "run is resumed by the next, exit codes as for merge."})
final class NightlyCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "CONFIG", description = "merge config (YAML, any Hadoop path)")
    String config;

    @Parameters(index = "1", paramLabel = "DEST_ROOT", description = "directory holding the merges (any Hadoop path)")
    String root;

    @Option(names = "--keep", defaultValue = "7", description = "how many merges to keep (default: ${DEFAULT-VALUE})")
    int keep;

    @Mixin
    SparkOptions spark;

    @Mixin
    MergeOptions options;

    @Override
    public Integer call() {
        try (JavaSparkContext sc = spark.start()) {
            NightlyRun.Outcome outcome = new NightlyRun(sc).run(options.request(config, root, false), root, keep);
            if (outcome.merged()) {
                System.out.println(ReportSummary.of(outcome.result()));
                System.out.println("latest -> " + outcome.destination()
                        + (outcome.removed().isEmpty() ? "" : "; removed " + String.join(", ", outcome.removed())));
            } else {
                System.out.println("unchanged: latest is " + outcome.destination());
            }
        }
        return 0;
    }
}
