package dev.amalgam.commit;

import dev.amalgam.plan.ChunkPlan;
import dev.amalgam.plan.TensorPlan;
import org.apache.arrow.memory.ArrowBuf;
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

/** Writes each chunk at its planned offset in the staged shard file (local and POSIX file systems). */
final class PositionedShardSink implements ChunkSink {
    private final OutputTarget target;
    private final Map<Integer, FileChannel> channels = new HashMap<>();
    private long written;

    PositionedShardSink(OutputTarget target) {
        this.target = target;
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
