package dev.amalgam.staging;

import dev.amalgam.plan.ChunkPlan;
import dev.amalgam.plan.TensorPlan;
import org.apache.arrow.memory.ArrowBuf;
import org.apache.hadoop.conf.Configuration;

import java.util.OptionalInt;

/**
 * Where an executor puts a merged chunk's encoded bytes. Writes are idempotent (same bytes to
 * the same place), so a retried or speculative task is harmless.
 */
public interface ChunkSink extends AutoCloseable {

    void write(TensorPlan tensor, ChunkPlan chunk, ArrowBuf bytes, long length);

    /**
     * The CRC-32C of the bytes already stored for {@code chunk} (by an earlier attempt or run),
     * or empty when none of the expected length are there.
     */
    OptionalInt storedChecksum(TensorPlan tensor, ChunkPlan chunk, long length);

    long bytesWritten();

    @Override
    void close();

    /**
     * Opens the sink for {@code target} on an executor; {@code attempt} names this task attempt's
     * temporary files so concurrent attempts of one chunk never write the same file.
     */
    static ChunkSink open(OutputTarget target, Configuration hadoop, String attempt) {
        return target.positioned() ? new PositionedShardSink(target, hadoop) : new PartFileSink(target, hadoop, attempt);
    }
}
