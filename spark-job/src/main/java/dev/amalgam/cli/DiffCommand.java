package dev.amalgam.cli;

import dev.amalgam.job.CheckpointDiff;
import dev.amalgam.job.DiffReport;
import dev.amalgam.plan.PlanOptions;
import org.apache.spark.api.java.JavaSparkContext;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.concurrent.Callable;

@Command(name = "diff", description = "Compares two checkpoints tensor by tensor as a Spark job (chunked reads, bounded "
        + "memory): relative L2 difference, max |A - B|, cosine similarity (of the deltas from --base when given), "
        + "count of differing values, and names or shapes on one side only. Prints a summary and writes diff.json, "
        + "diff.parquet and diff.html.")
final class DiffCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "A", description = "the reference checkpoint (any Hadoop path)")
    String a;

    @Parameters(index = "1", paramLabel = "B", description = "the checkpoint compared with it")
    String b;

    @Option(names = "--base", description = "a base checkpoint: cosines are of the deltas A - base and B - base")
    String base;

    @Option(names = "--out", defaultValue = "amalgam-diff", description = "where diff.json, diff.parquet and "
            + "diff.html go (default: ${DEFAULT-VALUE})")
    String out;

    @Option(names = "--chunk-elements", defaultValue = "" + PlanOptions.DEFAULT_CHUNK_ELEMENTS,
            description = "elements per chunk, the unit of work (default: ${DEFAULT-VALUE})")
    int chunkElements;

    @Mixin
    SparkOptions spark;

    @Override
    public Integer call() throws Exception {
        try (JavaSparkContext sc = spark.start()) {
            CheckpointDiff.Result result = CheckpointDiff.run(sc, a, b, base, chunkElements);
            System.out.print(DiffReport.summary(result));
            try {
                DiffReport.write(sc, result, out);
            } catch (java.io.IOException | RuntimeException e) {
                throw new dev.amalgam.AmalgamException(dev.amalgam.AmalgamException.Kind.OUTPUT, out
                        + ": cannot write the diff there (" + e.getMessage() + "); choose another --out", e);
            }
            System.out.println("  written: " + out + "/" + DiffReport.JSON + ", " + DiffReport.PARQUET + ", "
                    + DiffReport.HTML);
        }
        return 0;
    }
}
