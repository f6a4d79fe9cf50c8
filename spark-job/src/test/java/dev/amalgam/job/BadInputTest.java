package dev.amalgam.job;

import dev.amalgam.AmalgamException;
import dev.amalgam.format.CheckpointReader;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.testing.FaultyFileSystem;
import dev.amalgam.testing.MergeFixture;
import dev.amalgam.testing.TestSpark;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Bad input is refused before work starts, naming the file and the tensor; a failure in the
 * middle of the merge stage publishes nothing. In every case the destination does not exist
 * afterwards and no staging directory is left beside it.
 */
class BadInputTest {
    @TempDir
    Path temp;
    MergeFixture f;
    String config;

    @BeforeEach
    void generate() {
        f = MergeFixture.create(temp, Dtype.F16, 2, Long.MAX_VALUE);
        config = f.config("ties.yml", "merge_method: ties\nbase_model: " + f.base + "\nmodels:\n"
                + "  - model: " + f.models.get(0) + "\n    parameters: {weight: 1.0, density: 0.5}\n"
                + "  - model: " + f.models.get(1) + "\n    parameters: {weight: 1.0, density: 0.5}\n");
    }

    @AfterEach
    void heal() {
        FaultyFileSystem.heal();
    }

    private AmalgamException refused(String configFile) {
        String out = f.out("merged");
        AmalgamException e = assertThrows(AmalgamException.class,
                () -> new MergeJob(TestSpark.context()).run(MergeRequest.of(configFile, out).withChunkElements(64)));
        assertFalse(Files.exists(Path.of(out)), "the destination must not exist after a failed run");
        try (Stream<Path> left = Files.list(temp)) {
            List<String> names = left.map(p -> p.getFileName().toString()).toList();
            assertThat(names).noneMatch(n -> n.startsWith(".amalgam-lock"));
            if (e.kind() != AmalgamException.Kind.EXECUTION) {
                // Refused before any work: nothing to resume, so nothing staged.
                assertThat(names).noneMatch(n -> n.startsWith(".amalgam-staging"));
            }
        } catch (java.io.IOException io) {
            throw new java.io.UncheckedIOException(io);
        }
        return e;
    }

    private Path shard(String model) {
        return Path.of(model, CheckpointReader.SINGLE_FILE);
    }

    @Test
    void aTruncatedShardNamesTheFile() throws Exception {
        Path file = shard(f.models.get(1));
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
            raf.setLength(raf.length() - 100);
        }
        AmalgamException e = refused(config);
        assertEquals(AmalgamException.Kind.INPUT, e.kind());
        assertEquals(3, e.kind().exitCode());
        assertThat(e.getMessage()).contains(file.toString()).contains("tensor 'lm_head.weight'").contains("truncated file");
    }

    @Test
    void overlappingHeaderOffsetsNameTheFileAndTensor() throws Exception {
        Path file = shard(f.models.get(0));
        byte[] bytes = Files.readAllBytes(file);
        int n = (int) ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
        String header = new String(bytes, 8, n, StandardCharsets.UTF_8);
        // Make lm_head start 2 bytes early: same length, so it overlaps its predecessor.
        String key = "\"lm_head.weight\":{\"dtype\":\"F16\",\"shape\":[40,16],\"data_offsets\":[";
        int at = header.indexOf(key) + key.length();
        int comma = header.indexOf(',', at);
        int end = header.indexOf(']', comma);
        long begin = Long.parseLong(header.substring(at, comma)) - 2;
        long stop = Long.parseLong(header.substring(comma + 1, end)) - 2;
        String changed = header.substring(0, at) + begin + "," + stop + header.substring(end);
        changed = changed + " ".repeat(header.length() - changed.length());
        System.arraycopy(changed.getBytes(StandardCharsets.UTF_8), 0, bytes, 8, n);
        Files.write(file, bytes);
        AmalgamException e = refused(config);
        assertEquals(AmalgamException.Kind.INPUT, e.kind());
        assertThat(e.getMessage()).contains(file.toString()).contains("tensor 'lm_head.weight'").contains("overlap");
    }

    @Test
    void aShapeMismatchBetweenModelsNamesBothFilesAndTheTensor() throws Exception {
        String tensor = "model.layers.0.self_attn.q_proj.weight";
        rewriteHeader(shard(f.models.get(1)), "\"" + tensor + "\":{\"dtype\":\"F16\",\"shape\":[16,16]",
                "\"" + tensor + "\":{\"dtype\":\"F16\",\"shape\":[32,8]");
        AmalgamException e = refused(config);
        assertEquals(AmalgamException.Kind.INPUT, e.kind());
        assertThat(e.getMessage()).contains(shard(f.models.get(1)).toString()).contains("tensor '" + tensor + "'")
                .contains("has shape [32, 8] but [16, 16]").contains(shard(f.base).toString());
    }

    @Test
    void aMissingTensorNamesTheModelAndTensor() throws Exception {
        rewriteHeader(shard(f.models.get(0)), "\"model.norm.weight\"", "\"model.norm.weigh_\"");
        AmalgamException e = refused(config);
        assertEquals(AmalgamException.Kind.INPUT, e.kind());
        assertThat(e.getMessage()).contains(f.models.get(0)).contains("tensor 'model.norm.weight'").contains("is missing");
    }

    @Test
    void anUnknownDtypeNamesTheFileAndTensor() throws Exception {
        rewriteHeader(shard(f.base), "\"model.norm.weight\":{\"dtype\":\"F16\"", "\"model.norm.weight\":{\"dtype\":\"I16\"");
        AmalgamException e = refused(config);
        assertEquals(AmalgamException.Kind.INPUT, e.kind());
        assertThat(e.getMessage()).contains(shard(f.base).toString()).contains("tensor 'model.norm.weight' has dtype I16");
    }

    @Test
    void aMissingModelDirectoryIsNamed() {
        String broken = f.config("missing.yml", "merge_method: ties\nbase_model: " + f.base + "\nmodels:\n"
                + "  - model: " + temp + "/nowhere\n    parameters: {weight: 1.0}\n");
        assertThat(refused(broken).getMessage()).contains(temp + "/nowhere: not a directory");
    }

    @Test
    void aTokenizerSourceThatIsNoDirectoryIsAConfigError() {
        String broken = f.config("tok.yml", "merge_method: task_arithmetic\nbase_model: " + f.base + "\nmodels:\n"
                + "  - model: " + f.models.get(0) + "\n    parameters: {weight: 1.0}\ntokenizer_source: " + temp + "/nowhere\n");
        AmalgamException e = refused(broken);
        assertEquals(AmalgamException.Kind.CONFIG, e.kind());
        assertThat(e.getMessage()).contains("tokenizer_source '" + temp + "/nowhere' is not a directory");
    }

    @Test
    void aTokenizerSourceWithoutTokenizerFilesIsAConfigError() throws Exception {
        java.nio.file.Path bare = temp.resolve("bare-model");
        java.nio.file.Files.createDirectories(bare);
        String broken = f.config("tok-bare.yml", "merge_method: task_arithmetic\nbase_model: " + f.base + "\nmodels:\n"
                + "  - model: " + f.models.get(0) + "\n    parameters: {weight: 1.0}\ntokenizer_source: " + bare + "\n");
        AmalgamException e = refused(broken);
        assertEquals(AmalgamException.Kind.CONFIG, e.kind());
        assertThat(e.getMessage()).contains("tokenizer_source '" + bare + "' (" + bare + ") holds no tokenizer files")
                .contains("tokenizer.json");
    }

    @Test
    void aFailureInTheMiddleOfTheMergeStagePublishesNothing() {
        String faulty = f.config("faulty.yml", "merge_method: task_arithmetic\nbase_model: faulty://" + f.base
                + "\nmodels:\n  - model: faulty://" + f.models.get(0) + "\n    parameters: {weight: 1.0}\n"
                + "  - model: faulty://" + f.models.get(1) + "\n    parameters: {weight: 1.0}\n");
        FaultyFileSystem.failAfter(60);
        AmalgamException e = refused(faulty);
        assertEquals(AmalgamException.Kind.EXECUTION, e.kind());
        assertThat(e.getMessage()).contains("nothing was published").contains("injected read failure")
                .contains("model.safetensors").contains("tensor '").contains("rerunning the same command resumes");
    }

    @Test
    void positionedWritesAreRefusedOnFileSystemsWithoutThem() {
        AmalgamException e = assertThrows(AmalgamException.class, () -> new MergeJob(TestSpark.context())
                .run(MergeRequest.of(config, "faulty://" + f.out("elsewhere"))
                        .withWriteMode(dev.amalgam.staging.WriteMode.POSITIONED)));
        assertEquals(AmalgamException.Kind.CONFIG, e.kind());
        assertThat(e.getMessage()).contains("--write-mode positioned needs a local or POSIX path");
        assertFalse(Files.exists(Path.of(f.out("elsewhere"))));
    }

    @Test
    void aNonEmptyDestinationIsRefusedBeforeAnyWork() throws Exception {
        Path dest = Files.createDirectories(temp.resolve("taken"));
        Files.writeString(dest.resolve("keep.txt"), "mine");
        AmalgamException e = assertThrows(AmalgamException.class,
                () -> new MergeJob(TestSpark.context()).run(MergeRequest.of(config, dest.toString())));
        assertEquals(AmalgamException.Kind.OUTPUT, e.kind());
        assertThat(e.getMessage()).contains("exists and is not empty").contains("--overwrite");
        assertEquals("mine", Files.readString(dest.resolve("keep.txt")));
    }

    @Test
    void overwriteReplacesTheDestinationWhole() throws Exception {
        Path dest = Files.createDirectories(temp.resolve("replaced"));
        Files.writeString(dest.resolve("old.txt"), "old");
        new MergeJob(TestSpark.context()).run(MergeRequest.of(config, dest.toString()).withOverwrite(true));
        assertFalse(Files.exists(dest.resolve("old.txt")));
        assertThat(Files.exists(dest.resolve(CheckpointReader.SINGLE_FILE))).isTrue();
    }

    private static void rewriteHeader(Path file, String from, String to) throws Exception {
        byte[] bytes = Files.readAllBytes(file);
        int n = (int) ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
        String header = new String(bytes, 8, n, StandardCharsets.UTF_8);
        if (!header.contains(from)) {
            throw new IllegalStateException("header lacks " + from + ": " + header);
        }
        String changed = header.replace(from, to);
        if (changed.length() > header.length()) {
            throw new IllegalStateException("replacement must not grow the header");
        }
        changed = changed + " ".repeat(header.length() - changed.length());
        System.arraycopy(changed.getBytes(StandardCharsets.UTF_8), 0, bytes, 8, n);
        Files.write(file, bytes);
    }

    @Test
    void aConfigFileOverTheSizeLimitIsRefusedBeforeItIsRead() throws Exception {
        Path huge = temp.resolve("huge.yml");
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(huge.toFile(), "rw")) {
            f.setLength(dev.amalgam.config.MergeConfigParser.MAX_CONFIG_BYTES + 1);
        }
        AmalgamException e = assertThrows(AmalgamException.class,
                () -> new MergeJob(TestSpark.context()).inspect(MergeRequest.of(huge.toString(), temp + "/never")));
        assertEquals(AmalgamException.Kind.CONFIG, e.kind());
        assertThat(e.getMessage()).contains(huge.toString()).contains("over the limit of " + dev.amalgam.config.MergeConfigParser.MAX_CONFIG_BYTES);
    }

    @Test
    void aConfigPathThatIsEmptyOrAFifoIsAConfigErrorAndNothingBlocks() throws Exception {
        AmalgamException empty = assertThrows(AmalgamException.class,
                () -> new MergeJob(TestSpark.context()).inspect(MergeRequest.of("", temp + "/never")));
        assertEquals(AmalgamException.Kind.CONFIG, empty.kind());
        assertThat(empty.getMessage()).contains("empty");
        Path fifo = temp.resolve("config-fifo.yml");
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
        AmalgamException e = org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(java.time.Duration.ofSeconds(20),
                () -> assertThrows(AmalgamException.class,
                        () -> new MergeJob(TestSpark.context()).inspect(MergeRequest.of(fifo.toString(), temp + "/never"))));
        assertEquals(AmalgamException.Kind.CONFIG, e.kind());
        assertThat(e.getMessage()).contains(fifo.toString()).contains("not a regular file");
    }
}
