package dev.amalgam.plan;

/**
 * Knobs that shape the plan but not the result: any chunk size gives the same bytes.
 *
 * @param chunkElements upper bound on a chunk's elements (rounded down to whole rows where a
 *                      method ranks within rows, but never below one row)
 * @param shardBytes    upper bound on an output shard's tensor bytes; a larger tensor gets its own
 */
public record PlanOptions(int chunkElements, long shardBytes) {
    public static final int DEFAULT_CHUNK_ELEMENTS = 4 << 20;
    public static final long DEFAULT_SHARD_BYTES = 5_000_000_000L;

    public PlanOptions {
        if (chunkElements < 1) {
            throw new IllegalArgumentException("chunk elements must be at least 1, got " + chunkElements);
        }
        if (shardBytes < 1) {
            throw new IllegalArgumentException("shard size must be at least 1 byte, got " + shardBytes);
        }
    }
}
