package dev.amalgam.commit;

import dev.amalgam.plan.ChunkPlan;
import dev.amalgam.plan.TensorPlan;
import org.apache.arrow.memory.ArrowBuf;

/**
 * Where an executor puts a merged chunk's encoded bytes. Writes are idempotent (same bytes to
 * the same place), so a retried or speculative task is harmless.
 */
public interface ChunkSink extends AutoCloseable {

    void write(TensorPlan tensor, ChunkPlan chunk, ArrowBuf bytes, long length);

    long bytesWritten();

    @Override
    void close();

    /** Opens the sink for {@code target} on an executor. */
    static ChunkSink open(OutputTarget target, org.apache.hadoop.conf.Configuration hadoop) {
        return target.positioned() ? new PositionedShardSink(target) : new PartFileSink(target, hadoop);
    }
}
