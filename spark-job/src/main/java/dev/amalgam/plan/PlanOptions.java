package dev.amalgam.plan;

import dev.amalgam.AmalgamException;

/**
 * Knobs that shape the plan but not the result: any chunk size gives the same bytes.
 *
 * @param chunkElements upper bound on a chunk's elements (rounded down to whole rows where a
 *                      method ranks within rows, but never below one row)
 * @param shardBytes    upper bound on an output shard's tensor bytes; a larger tensor gets its own
 * @param wholeTensorStatistics keep a tensor that needs statistics in one chunk, whatever
 *                      {@code chunkElements}, where the executors' memory holds it: its statistics
 *                      are then computed in the task that merges it, with no read of their own
 */
public record PlanOptions(int chunkElements, long shardBytes, boolean wholeTensorStatistics) {
    public static final int DEFAULT_CHUNK_ELEMENTS = 4 << 20;
    public static final long DEFAULT_SHARD_BYTES = 5_000_000_000L;
    public static final int MAX_CHUNK_ELEMENTS = 1 << 28;

    public PlanOptions(int chunkElements, long shardBytes) {
        this(chunkElements, shardBytes, true);
    }

    public PlanOptions {
        checkChunkElements(chunkElements);
        if (shardBytes < 1) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, "--out-shard-size must be at least 1 byte, got "
                    + shardBytes);
        }
    }

    /** Refuses a --chunk-elements value no command can work with. */
    public static void checkChunkElements(int chunkElements) {
        if (chunkElements < 1 || chunkElements > MAX_CHUNK_ELEMENTS) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, "--chunk-elements " + chunkElements
                    + " is outside [1, " + MAX_CHUNK_ELEMENTS + "]; a chunk's float32 buffer must stay under 2 GB");
        }
    }
}
