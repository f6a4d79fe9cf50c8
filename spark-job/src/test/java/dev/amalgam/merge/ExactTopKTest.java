package dev.amalgam.merge;

import dev.amalgam.format.CheckpointWriter;
import dev.amalgam.job.MergeJob;
import dev.amalgam.job.MergeRequest;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.testing.TestSpark;
import dev.amalgam.testing.Tensors;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Magnitude trimming keeps exactly floor(density x n) entries, largest |delta| first and equal
 * magnitudes by lower flat index, even when a tensor has only a few distinct values and the
 * threshold's run of equal values spans many chunks.
 */
class ExactTopKTest {
    @TempDir
    Path temp;

    private static final int N = 10_007;

    @Test
    void keepsExactlyKWithTiesByLowerIndexAcrossChunks() throws Exception {
        Configuration hadoop = new Configuration();
        long[] shape = {N};
        List<CheckpointWriter.Spec> specs = List.of(new CheckpointWriter.Spec("w", Dtype.F32, shape));
        CheckpointWriter.write(hadoop, temp + "/base", specs, Long.MAX_VALUE, s -> floats(i -> 0.0f));
        // Four distinct magnitudes, both signs: |d| in {1, 2, 3, 4}.
        CheckpointWriter.write(hadoop, temp + "/tuned", specs, Long.MAX_VALUE,
                s -> floats(i -> ((i * 7919) % 4 + 1) * (i % 3 == 0 ? -1.0f : 1.0f)));
        float density = 0.37f;
        Path config = temp.resolve("ties.yml");
        Files.writeString(config, "merge_method: ties\nbase_model: " + temp + "/base\nmodels:\n  - model: " + temp
                + "/tuned\n    parameters: {weight: 1.0, density: " + density + "}\n");
        new MergeJob(TestSpark.context()).run(MergeRequest.of(config.toString(), temp + "/out").withChunkElements(13).withWholeTensorStatistics(false)
                .withPartitions(4));

        float[] out = Tensors.all(temp + "/out").get("w");
        long k = (long) Math.floor((double) density * N);
        int kept = 0;
        for (float v : out) {
            kept += v != 0.0f ? 1 : 0;
        }
        assertEquals(k, kept, "exactly floor(density x n) entries survive");
        // Every 4 and the lowest-index 3s survive: count the 4s, then the 3s must be a prefix.
        int fours = 0;
        for (int i = 0; i < N; i++) {
            fours += magnitude(i) == 4 ? 1 : 0;
        }
        long threesKept = k - fours;
        long threesSeen = 0;
        for (int i = 0; i < N; i++) {
            float expected = 0.0f;
            if (magnitude(i) == 4) {
                expected = sign(i) * 4;
            } else if (magnitude(i) == 3) {
                expected = threesSeen < threesKept ? sign(i) * 3 : 0.0f;
                threesSeen++;
            }
            assertEquals(expected, out[i], "element " + i);
        }
    }

    /**
     * At 1e8 elements float32(0.3) x n = 30,000,001.19 but 0.3 x n = 30,000,000 in double: the
     * merge keeps the double count, with the threshold's run of equal bf16 magnitudes split
     * across chunks.
     */
    @Test
    void keepsTheDoubleCountNotTheFloat32OneAtAHundredMillionElements() throws Exception {
        int rows = 10_000;
        int cols = 10_000;
        long n = (long) rows * cols;
        Configuration hadoop = new Configuration();
        List<CheckpointWriter.Spec> specs = List.of(new CheckpointWriter.Spec("w", Dtype.BF16, new long[]{rows, cols}));
        CheckpointWriter.write(hadoop, temp + "/base", specs, Long.MAX_VALUE, s -> bf16((int) n, i -> 0.0f));
        // 64 distinct magnitudes, both signs, never zero: every kept entry stays non-zero in bf16.
        CheckpointWriter.write(hadoop, temp + "/tuned", specs, Long.MAX_VALUE,
                s -> bf16((int) n, i -> (((i * 2654435761L) >>> 9) % 64 + 1) * 0.0625f * ((i & 4) == 0 ? 1 : -1)));
        Path config = temp.resolve("ties-large.yml");
        Files.writeString(config, "merge_method: ties\nbase_model: " + temp + "/base\nmodels:\n  - model: " + temp
                + "/tuned\n    parameters: {weight: 1.0, density: 0.3}\n");
        new MergeJob(TestSpark.context()).run(MergeRequest.of(config.toString(), temp + "/out-large"));

        long kept = 0;
        for (dev.amalgam.format.StoredTensor t : dev.amalgam.testing.Tensors.open(temp + "/out-large").tensors()) {
            kept += nonZeroBf16(t);
        }
        assertEquals(30_000_000L, (long) Math.floor(0.3 * n));
        assertEquals(30_000_001L, (long) Math.floor((double) 0.3f * n), "float32 would keep one more");
        assertEquals(30_000_000L, kept);
    }

    private static ByteBuffer bf16(int n, Values values) {
        ByteBuffer b = ByteBuffer.allocate(n * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < n; i++) {
            b.putShort(dev.amalgam.kernels.ElementCodec.floatToBfloat16(values.at(i)));
        }
        return b.flip();
    }

    /** Counts non-zero bf16 values by streaming the tensor's bytes. */
    private static long nonZeroBf16(dev.amalgam.format.StoredTensor t) throws java.io.IOException {
        String file = t.file().startsWith("file:") ? Path.of(java.net.URI.create(t.file())).toString() : t.file();
        long count = 0;
        try (java.nio.channels.FileChannel channel = java.nio.channels.FileChannel.open(Path.of(file))) {
            ByteBuffer buffer = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
            long position = t.offset();
            long end = t.offset() + t.elements() * 2;
            while (position < end) {
                buffer.clear().limit((int) Math.min(buffer.capacity(), end - position));
                position += channel.read(buffer, position);
                buffer.flip();
                while (buffer.remaining() >= 2) {
                    count += (buffer.getShort() & 0x7fff) != 0 ? 1 : 0;
                }
            }
        }
        return count;
    }

    private static int magnitude(int i) {
        return (i * 7919) % 4 + 1;
    }

    private static float sign(int i) {
        return i % 3 == 0 ? -1.0f : 1.0f;
    }

    private interface Values {
        float at(int i);
    }

    private static ByteBuffer floats(Values values) {
        ByteBuffer b = ByteBuffer.allocate(N * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < N; i++) {
            b.putFloat(values.at(i));
        }
        b.flip();
        return b;
    }
}
