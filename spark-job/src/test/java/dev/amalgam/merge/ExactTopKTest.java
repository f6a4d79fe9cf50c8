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
        new MergeJob(TestSpark.context()).run(MergeRequest.of(config.toString(), temp + "/out").withChunkElements(13)
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
