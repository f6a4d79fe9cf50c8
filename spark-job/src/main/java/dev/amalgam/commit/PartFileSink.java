package dev.amalgam.commit;

import dev.amalgam.plan.ChunkPlan;
import dev.amalgam.plan.TensorPlan;
import org.apache.arrow.memory.ArrowBuf;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.io.UncheckedIOException;

/** Writes each chunk to its own part file, for file systems without random writes (HDFS, object stores). */
final class PartFileSink implements ChunkSink {
    private static final int STAGING = 1 << 20;

    private final OutputTarget target;
    private final Configuration hadoop;
    private final byte[] staging = new byte[STAGING];
    private long written;

    PartFileSink(OutputTarget target, Configuration hadoop) {
        this.target = target;
        this.hadoop = hadoop;
    }

    @Override
    public void write(TensorPlan tensor, ChunkPlan chunk, ArrowBuf bytes, long length) {
        Path part = new Path(new Path(target.stagingDir(), OutputTarget.PARTS_DIR), OutputTarget.partName(chunk.index()));
        try {
            FileSystem fs = part.getFileSystem(hadoop);
            try (FSDataOutputStream out = fs.create(part, true)) {
                for (long done = 0; done < length; ) {
                    int n = (int) Math.min(STAGING, length - done);
                    bytes.getBytes(done, staging, 0, n);
                    out.write(staging, 0, n);
                    done += n;
                }
            }
            written += length;
        } catch (IOException e) {
            throw new UncheckedIOException(part + ": cannot write tensor '" + tensor.name() + "' chunk "
                    + chunk.ordinal() + ": " + e.getMessage(), e);
        }
    }

    @Override
    public long bytesWritten() {
        return written;
    }

    @Override
    public void close() {
    }
}
