package dev.amalgam.format;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.amalgam.kernels.Dtype;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

/**
 * A checkpoint's index names only files inside its directory: nothing a model's index or a user's
 * path says opens a file elsewhere, on another file system, or one that blocks.
 */
class UntrustedPathsTest {
    @TempDir
    Path temp;

    private static final String INDEX = CheckpointReader.INDEX_FILE;

    /** A sharded checkpoint of two tensors whose index maps tensor 'a' to {@code entry} (raw JSON). */
    private Path withEntry(String name, String entryJson) throws Exception {
        Path dir = temp.resolve(name);
        CheckpointWriter.write(new Configuration(), dir.toString(), List.of(
                        new CheckpointWriter.Spec("a", Dtype.F32, new long[]{4}),
                        new CheckpointWriter.Spec("b", Dtype.F32, new long[]{4})),
                16, s -> ByteBuffer.allocate(16));
        ObjectNode index = (ObjectNode) new ObjectMapper().readTree(dir.resolve(INDEX).toFile());
        ((ObjectNode) index.get("weight_map")).set("a", new ObjectMapper().readTree(entryJson));
        Files.writeString(dir.resolve(INDEX), index.toString());
        return dir;
    }

    private static FormatException refused(Path dir) {
        return assertThrows(FormatException.class, () -> new CheckpointReader(new Configuration()).read(dir.toString()));
    }

    @ParameterizedTest
    @ValueSource(strings = {"\"../../../../../../etc/passwd\"", "\"/etc/passwd\"", "\"\"", "\"a:b\"",
            "\"hdfs://namenode/x.safetensors\"", "\"s3a://bucket/x.safetensors\"", "\"sub/../../x\"", "\"./x\"",
            "\"a\\u0000b\"", "\"..\\\\x\"", "123", "null", "{\"a\": 1}"})
    void anIndexEntryThatCouldLeaveTheModelIsRefusedNamingTheIndexAndTheEntry(String entry) throws Exception {
        Path dir = withEntry("bad", entry);
        FormatException e = refused(dir);
        assertThat(e.getMessage()).contains(dir.resolve(INDEX).toString()).contains("weight_map entry 'a'")
                .doesNotContain("Exception");
    }

    @Test
    void theOnlyProblemOfAManyBadEntriesIndexIsBoundedInLength() throws Exception {
        Path dir = withEntry("many", "\"/x\"");
        ObjectNode index = (ObjectNode) new ObjectMapper().readTree(dir.resolve(INDEX).toFile());
        for (int i = 0; i < 10_000; i++) {
            ((ObjectNode) index.get("weight_map")).put("t" + i, "../t" + i);
        }
        Files.writeString(dir.resolve(INDEX), index.toString());
        assertThat(refused(dir).problems()).hasSizeLessThan(30);
    }

    @Test
    void aFifoWhereTheModelFileBelongsIsRefusedWithoutOpeningIt() throws Exception {
        Path dir = Files.createDirectories(temp.resolve("fifo"));
        Process mkfifo = new ProcessBuilder("mkfifo", dir.resolve(CheckpointReader.SINGLE_FILE).toString()).start();
        assertThat(mkfifo.waitFor()).isZero();
        FormatException e = assertTimeoutPreemptively(Duration.ofSeconds(20), () -> refused(dir));
        assertThat(e.getMessage()).contains("not a regular file");
    }

    @Test
    void aFifoNamedByTheIndexIsRefusedWithoutOpeningIt() throws Exception {
        Path dir = withEntry("fifo-shard", "\"pipe.safetensors\"");
        Process mkfifo = new ProcessBuilder("mkfifo", dir.resolve("pipe.safetensors").toString()).start();
        assertThat(mkfifo.waitFor()).isZero();
        FormatException e = assertTimeoutPreemptively(Duration.ofSeconds(20), () -> refused(dir));
        assertThat(e.getMessage()).contains("pipe.safetensors").contains("not a regular file");
    }

    @Test
    void anEmptyModelPathIsAnErrorNotACrash() {
        FormatException e = assertThrows(FormatException.class, () -> new CheckpointReader(new Configuration()).read(""));
        assertThat(e.getMessage()).contains("empty");
    }

    @Test
    void aShardInASubdirectoryOfTheModelIsStillRead() throws Exception {
        Path dir = withEntry("nested", "\"sub/a.safetensors\"");
        Files.createDirectories(dir.resolve("sub"));
        // Tensor 'a' moves to sub/: a relative path inside the model is fine.
        Path first = Files.list(dir).filter(p -> p.getFileName().toString().startsWith("model-00001")).findFirst()
                .orElseThrow();
        Files.move(first, dir.resolve("sub/a.safetensors"));
        Checkpoint read = new CheckpointReader(new Configuration()).read(dir.toString());
        assertThat(read.byName()).containsKeys("a", "b");
    }
}
