package dev.amalgam.cli;

import dev.amalgam.AmalgamException;
import dev.amalgam.job.MergeRequest;
import dev.amalgam.job.NonFinitePolicy;
import dev.amalgam.plan.PlanOptions;
import picocli.CommandLine.Option;

/** The options of a merge shared by {@code merge} and {@code nightly}; none changes the bytes but the seed. */
final class MergeOptions {
    @Option(names = "--chunk-elements", defaultValue = "" + PlanOptions.DEFAULT_CHUNK_ELEMENTS,
            description = "elements per chunk, the unit of distributed work (default: ${DEFAULT-VALUE})")
    int chunkElements;

    @Option(names = "--split-statistics-tensors", negatable = false,
            description = "cut tensors that need statistics by --chunk-elements too, even where the executors' memory "
                    + "holds them whole (their statistics then read the inputs once more; same bytes)")
    boolean splitStatisticsTensors;

    @Option(names = "--partitions", defaultValue = "0",
            description = "Spark partitions for the chunk stages (default 0: about 8 chunks per task, at least 4 tasks per core)")
    int partitions;

    @Option(names = "--out-shard-size", defaultValue = "5G", converter = Sizes.class,
            description = "largest output shard, e.g. 500M, 2G (default: ${DEFAULT-VALUE})")
    long shardSize;

    @Option(names = "--random-seed", description = "seed of the random masks (overrides the config's random_seed)")
    Long seed;

    @Option(names = "--write-mode", defaultValue = "auto",
            description = "auto, positioned or parts (default: ${DEFAULT-VALUE}: positioned on local paths, parts elsewhere)")
    String writeMode;

    @Option(names = "--content-checksums", negatable = false,
            description = "fingerprint the inputs by content checksums too, not only size and modification time")
    boolean contentChecksums;

    @Option(names = "--non-finite", defaultValue = "error",
            description = "NaN or infinite values in the inputs or the result: error (default: fail before publishing, "
                    + "naming model, tensor and count), warn (publish and warn) or allow (publish; counts in the report)")
    String nonFinite;

    @Option(names = "--no-progress", negatable = false, description = "no progress line on stderr")
    boolean noProgress;

    MergeRequest request(String config, String destination, boolean overwrite) {
        return new MergeRequest(config, destination, new PlanOptions(chunkElements, shardSize, !splitStatisticsTensors), partitions,
                WriteModes.parse(writeMode), overwrite, seed, !noProgress, contentChecksums,
                NonFinitePolicy.parse(nonFinite).orElseThrow(() -> new AmalgamException(AmalgamException.Kind.CONFIG,
                        "--non-finite '" + nonFinite + "' is unknown; use error, warn or allow")));
    }
}
