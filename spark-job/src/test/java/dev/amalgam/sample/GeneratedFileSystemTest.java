package dev.amalgam.sample;

import dev.amalgam.format.Checkpoint;
import dev.amalgam.format.CheckpointReader;
import dev.amalgam.format.Quantization;
import dev.amalgam.format.StoredTensor;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The generated file system serves checkpoints with the real layouts' tensor counts and sizes,
 * readable by the checkpoint reader like any other, with the same bytes on every read.
 */
class GeneratedFileSystemTest {
    private final Configuration hadoop = new Configuration();

    @ParameterizedTest
    @CsvSource({
            "qwen2-72b, 963, 72.7e9",
            "llama3-70b, 723, 70.6e9",
            "mixtral-8x22b, 1739, 140.6e9",
            "qwen3-235b-a22b, 1037, 235.1e9",
            "deepseek-v3, 45395, 671.0e9"})
    void servesEachLayoutWithItsTensorCountAndParameters(String layout, int tensors, double parameters) {
        Checkpoint c = new CheckpointReader(hadoop).read(GeneratedFileSystem.SCHEME + ":///" + layout + "/base");
        assertEquals(tensors, c.tensors().size(), "tensors as the model sees them");
        long elements = c.tensors().stream().mapToLong(StoredTensor::elements).sum();
        assertThat((double) elements).isBetween(parameters * 0.97, parameters * 1.03);
        assertThat(c.sideFiles()).contains("config.json");
    }

    @Test
    void deepSeekWeightsReadAsFp8WithTheirBlockScales() {
        Checkpoint c = new CheckpointReader(hadoop).read(GeneratedFileSystem.SCHEME + ":///deepseek-v3-4layers/base");
        StoredTensor expert = c.byName().get("model.layers.3.mlp.experts.17.down_proj.weight");
        Quantization.BlockScaled q = (Quantization.BlockScaled) expert.quantization();
        assertEquals(128, q.blockRows());
        assertArrayEquals(new long[]{56, 16}, q.scales().shape());
    }

    @Test
    void readsAreDeterministicAndAFineTuneDiffersFromItsBase() throws Exception {
        String dir = GeneratedFileSystem.SCHEME + ":///qwen2-72b-1layers/";
        FileSystem fs = new Path(dir).getFileSystem(hadoop);
        Path shard = new Path(dir + "base/model-00001-of-00002.safetensors");
        byte[] a = new byte[4096];
        byte[] b = new byte[4096];
        byte[] tuned = new byte[4096];
        long at = fs.getFileStatus(shard).getLen() - 10_000;
        try (FSDataInputStream in = fs.open(shard);
             FSDataInputStream again = fs.open(shard);
             FSDataInputStream other = fs.open(new Path(dir + "tuned-1/model-00001-of-00002.safetensors"))) {
            in.readFully(at, a);
            again.readFully(at + 1, b, 0, 4095);
            other.readFully(at, tuned);
        }
        assertArrayEquals(java.util.Arrays.copyOfRange(a, 1, 4096), java.util.Arrays.copyOf(b, 4095));
        assertThat(java.util.Arrays.equals(a, tuned)).isFalse();
    }
}
