package dev.amalgam.format;

import dev.amalgam.kernels.Dtype;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a whole checkpoint directory (single file, or shards and an index) from tensors
 * produced one at a time. Used for generated sample checkpoints: demos, benchmarks, tests.
 * Merge output does not go through here: executors write it chunk by chunk.
 */
public final class CheckpointWriter {

    /** A tensor to write: its header entry's name, dtype and shape. */
    public record Spec(String name, Dtype dtype, long[] shape) {
        public long bytes() {
            return TensorEntry.elementCount(shape) * dtype.byteSize();
        }
    }

    /** Produces a tensor's little-endian bytes on demand, so only one tensor is in memory. */
    public interface Source {
        ByteBuffer bytes(Spec spec);
    }

    private CheckpointWriter() {
    }

    public static void write(Configuration hadoop, String directory, List<Spec> specs, long shardBytes, Source source)
            throws IOException {
        Path dir = new Path(directory);
        FileSystem fs = LocalFiles.withoutChecksums(dir.getFileSystem(hadoop));
        fs.mkdirs(dir);
        List<List<Spec>> shards = ShardLayout.greedy(specs, Spec::bytes, shardBytes);
        Map<String, String> weightMap = new LinkedHashMap<>();
        long total = 0;
        for (int i = 0; i < shards.size(); i++) {
            String name = ShardLayout.fileName(i, shards.size());
            List<TensorEntry> entries = new ArrayList<>();
            long offset = 0;
            for (Spec s : shards.get(i)) {
                entries.add(new TensorEntry(s.name(), s.dtype(), s.shape(), offset, offset + s.bytes()));
                offset += s.bytes();
                weightMap.put(s.name(), name);
            }
            total += offset;
            try (FSDataOutputStream out = fs.create(new Path(dir, name), true)) {
                out.write(SafetensorsHeader.encode(entries, Map.of("format", "pt")));
                for (Spec s : shards.get(i)) {
                    ByteBuffer bytes = source.bytes(s);
                    byte[] chunk = new byte[1 << 20];
                    while (bytes.hasRemaining()) {
                        int n = Math.min(chunk.length, bytes.remaining());
                        bytes.get(chunk, 0, n);
                        out.write(chunk, 0, n);
                    }
                }
            }
        }
        if (shards.size() > 1) {
            try (FSDataOutputStream out = fs.create(new Path(dir, CheckpointReader.INDEX_FILE), true)) {
                out.write(ShardIndex.encode(weightMap, total));
            }
        }
    }
}
