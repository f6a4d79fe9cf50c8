package dev.amalgam.staging;

import dev.amalgam.plan.ChunkPlan;
import dev.amalgam.plan.TensorPlan;
import org.apache.arrow.memory.ArrowBuf;
import dev.amalgam.format.LocalFiles;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.Map;
import java.util.OptionalInt;

/** Writes each chunk at its planned offset in the staged shard file (local and POSIX file systems). */
final class PositionedShardSink implements ChunkSink {
    private final OutputTarget target;
    private final Configuration hadoop;
    private final Map<Integer, FileChannel> channels = new HashMap<>();
    private long written;

    PositionedShardSink(OutputTarget target, Configuration hadoop) {
        this.target = target;
        this.hadoop = hadoop;
    }

    @Override
    public void write(TensorPlan tensor, ChunkPlan chunk, ArrowBuf bytes, long length) {
        File file = new File(new Path(target.stagingDir(), target.shardFiles()[tensor.shard()]).toUri());
        try {
            FileChannel channel = channels.get(tensor.shard());
            if (channel == null) {
                channel = FileChannel.open(file.toPath(), StandardOpenOption.WRITE);
                channels.put(tensor.shard(), channel);
            }
            ByteBuffer view = bytes.nioBuffer(0, (int) length).order(ByteOrder.LITTLE_ENDIAN);
            long position = tensor.outOffset() + chunk.start() * tensor.outDtype().byteSize();
            while (view.hasRemaining()) {
                position += channel.write(view, position);
            }
            written += length;
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot write tensor '" + tensor.name() + "' chunk "
                    + chunk.ordinal() + ": " + e.getMessage(), e);
        }
    }

    @Override
    public OptionalInt storedChecksum(TensorPlan tensor, ChunkPlan chunk, long length) {
        Path shard = new Path(target.stagingDir(), target.shardFiles()[tensor.shard()]);
        long position = tensor.outOffset() + chunk.start() * tensor.outDtype().byteSize();
        try {
            FileSystem fs = LocalFiles.withoutChecksums(shard.getFileSystem(hadoop));
            if (fs.getFileStatus(shard).getLen() < position + length) {
                return OptionalInt.empty();
            }
            try (FSDataInputStream in = fs.open(shard)) {
                return OptionalInt.of(Checksums.crc32c(in, position, length));
            }
        } catch (IOException e) {
            return OptionalInt.empty();
        }
    }

    @Override
    public long bytesWritten() {
        return written;
    }

    @Override
    public void close() {
        for (FileChannel c : channels.values()) {
            try {
                c.close();
            } catch (IOException ignored) {
                // Data already went through write(); a close failure on a channel loses nothing.
            }
        }
        channels.clear();
    }
}
