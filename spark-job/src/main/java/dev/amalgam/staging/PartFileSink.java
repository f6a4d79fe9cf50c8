package dev.amalgam.staging;


import dev.amalgam.format.LocalFiles;
import dev.amalgam.plan.ChunkPlan;
import dev.amalgam.plan.TensorPlan;
import org.apache.arrow.memory.ArrowBuf;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.OptionalInt;

/**
 * Writes each chunk to its own part file, for file systems without random writes (HDFS, object
 * stores). A part is written under a name of its own attempt and renamed into place when
 * complete: on HDFS a killed writer's file stays leased for a while, and a retry must not wait
 * for it or see it half-written.
 */
final class PartFileSink implements ChunkSink {
    private static final int STAGING = 1 << 20;

    private final OutputTarget target;
    private final Configuration hadoop;
    private final String attempt;
    private final byte[] staging = new byte[STAGING];
    private long written;

    PartFileSink(OutputTarget target, Configuration hadoop, String attempt) {
        this.target = target;
        this.hadoop = hadoop;
        this.attempt = attempt;
    }

    @Override
    public void write(TensorPlan tensor, ChunkPlan chunk, ArrowBuf bytes, long length) {
        Path part = partPath(chunk);
        Path temporary = new Path(part.getParent(), "." + part.getName() + "." + attempt);
        try {
            FileSystem fs = fileSystem(part);
            try (FSDataOutputStream out = fs.create(temporary, true)) {
                for (long done = 0; done < length; ) {
                    int n = (int) Math.min(STAGING, length - done);
                    bytes.getBytes(done, staging, 0, n);
                    out.write(staging, 0, n);
                    done += n;
                }
            }
            Renames.replace(fs, temporary, part);
            written += length;
        } catch (IOException e) {
            throw new UncheckedIOException(part + ": cannot write tensor '" + tensor.name() + "' chunk "
                    + chunk.ordinal() + ": " + e.getMessage(), e);
        }
    }

    /**
     * Reads the part back; once a shard is assembled its parts are gone (HDFS concat consumes
     * them), so then the chunk's range in the assembled shard is read instead.
     */
    @Override
    public OptionalInt storedChecksum(TensorPlan tensor, ChunkPlan chunk, long length) {
        Path part = partPath(chunk);
        Path shard = new Path(target.stagingDir(), target.shardFiles()[tensor.shard()]);
        long inShard = tensor.outOffset() + chunk.start() * tensor.outDtype().byteSize();
        try {
            FileSystem fs = fileSystem(part);
            OptionalInt fromPart = checksum(fs, part, 0, length, length);
            return fromPart.isPresent() ? fromPart : checksum(fs, shard, inShard, length, -1);
        } catch (IOException e) {
            return OptionalInt.empty();
        }
    }

    private static OptionalInt checksum(FileSystem fs, Path file, long offset, long length, long exactSize)
            throws IOException {
        try {
            FileStatus status = fs.getFileStatus(file);
            boolean fits = exactSize >= 0 ? status.getLen() == exactSize : status.getLen() >= offset + length;
            if (!fits) {
                return OptionalInt.empty();
            }
            try (FSDataInputStream in = fs.open(file)) {
                return OptionalInt.of(Checksums.crc32c(in, offset, length));
            }
        } catch (FileNotFoundException e) {
            return OptionalInt.empty();
        }
    }

    private Path partPath(ChunkPlan chunk) {
        return new Path(new Path(target.stagingDir(), OutputTarget.PARTS_DIR), OutputTarget.partName(chunk.index()));
    }

    private FileSystem fileSystem(Path path) throws IOException {
        return LocalFiles.withoutChecksums(path.getFileSystem(hadoop));
    }

    @Override
    public long bytesWritten() {
        return written;
    }

    @Override
    public void close() {
    }
}
