package dev.amalgam.job;

import dev.amalgam.staging.WriteMode;
import dev.amalgam.plan.PlanOptions;

/**
 * One merge to run: the config, the destination, and the knobs that do not change the result.
 *
 * @param partitions Spark partitions for the chunk stages; 0: about eight chunks per task, at least four
 *                   tasks per core
 * @param randomSeed overrides the config's random_seed when not null
 * @param contentChecksums fingerprint the inputs by their content too, not only by size and modification time
 * @param nonFinite what NaN and infinite values in the inputs or the result do to the run
 */
public record MergeRequest(String configFile, String destination, PlanOptions planOptions, int partitions,
                           WriteMode writeMode, boolean overwrite, Long randomSeed, boolean progress,
                           boolean contentChecksums, NonFinitePolicy nonFinite) {

    public static MergeRequest of(String configFile, String destination) {
        return new MergeRequest(configFile, destination,
                new PlanOptions(PlanOptions.DEFAULT_CHUNK_ELEMENTS, PlanOptions.DEFAULT_SHARD_BYTES),
                0, WriteMode.AUTO, false, null, false, false, NonFinitePolicy.ERROR);
    }

    public MergeRequest withChunkElements(int chunkElements) {
        return new MergeRequest(configFile, destination, new PlanOptions(chunkElements, planOptions.shardBytes(),
                planOptions.wholeTensorStatistics()),
                partitions, writeMode, overwrite, randomSeed, progress, contentChecksums, nonFinite);
    }

    public MergeRequest withShardBytes(long shardBytes) {
        return new MergeRequest(configFile, destination, new PlanOptions(planOptions.chunkElements(), shardBytes,
                planOptions.wholeTensorStatistics()),
                partitions, writeMode, overwrite, randomSeed, progress, contentChecksums, nonFinite);
    }

    /** Whether tensors that need statistics stay whole where memory allows ({@link PlanOptions}). */
    public MergeRequest withWholeTensorStatistics(boolean value) {
        return new MergeRequest(configFile, destination, new PlanOptions(planOptions.chunkElements(),
                planOptions.shardBytes(), value), partitions, writeMode, overwrite, randomSeed, progress, contentChecksums, nonFinite);
    }

    public MergeRequest withPartitions(int n) {
        return new MergeRequest(configFile, destination, planOptions, n, writeMode, overwrite, randomSeed, progress, contentChecksums, nonFinite);
    }

    public MergeRequest withWriteMode(WriteMode mode) {
        return new MergeRequest(configFile, destination, planOptions, partitions, mode, overwrite, randomSeed, progress, contentChecksums, nonFinite);
    }

    public MergeRequest withOverwrite(boolean value) {
        return new MergeRequest(configFile, destination, planOptions, partitions, writeMode, value, randomSeed, progress, contentChecksums, nonFinite);
    }

    public MergeRequest withRandomSeed(Long seed) {
        return new MergeRequest(configFile, destination, planOptions, partitions, writeMode, overwrite, seed, progress, contentChecksums, nonFinite);
    }

    public MergeRequest withProgress(boolean value) {
        return new MergeRequest(configFile, destination, planOptions, partitions, writeMode, overwrite, randomSeed, value, contentChecksums, nonFinite);
    }

    public MergeRequest withDestination(String value) {
        return new MergeRequest(configFile, value, planOptions, partitions, writeMode, overwrite, randomSeed, progress,
                contentChecksums, nonFinite);
    }

    public MergeRequest withContentChecksums(boolean value) {
        return new MergeRequest(configFile, destination, planOptions, partitions, writeMode, overwrite, randomSeed,
                progress, value, nonFinite);
    }

    public MergeRequest withNonFinite(NonFinitePolicy value) {
        return new MergeRequest(configFile, destination, planOptions, partitions, writeMode, overwrite, randomSeed,
                progress, contentChecksums, value);
    }
}
