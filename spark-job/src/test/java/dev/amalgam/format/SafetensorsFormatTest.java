package dev.amalgam.format;

import dev.amalgam.kernels.Dtype;
import dev.amalgam.testing.Tensors;
import org.apache.arrow.memory.ArrowBuf;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafetensorsFormatTest {
    @TempDir
    Path temp;

    private final Configuration hadoop = new Configuration();

    private List<CheckpointWriter.Spec> specs(Dtype dtype) {
        return List.of(new CheckpointWriter.Spec("a.weight", dtype, new long[]{3, 5}),
                new CheckpointWriter.Spec("b.bias", dtype, new long[]{7}),
                new CheckpointWriter.Spec("c.scalar", dtype, new long[]{}),
                new CheckpointWriter.Spec("d.empty", dtype, new long[]{0, 4}),
                new CheckpointWriter.Spec("e.weight", dtype, new long[]{4, 4}));
    }

    private static ByteBuffer pattern(CheckpointWriter.Spec spec) {
        byte[] bytes = new byte[(int) spec.bytes()];
        for (int i = 0; i < bytes.length; i++) {
            bytes[i] = (byte) (spec.name().hashCode() * 31 + i);
        }
        return ByteBuffer.wrap(bytes);
    }

    @ParameterizedTest
    @EnumSource(value = Dtype.class, names = {"F32", "F16", "BF16"})
    void singleFileRoundTripsEveryTensorsBytes(Dtype dtype) throws IOException {
        roundTrip(dtype, Long.MAX_VALUE, 1);
    }

    @ParameterizedTest
    @EnumSource(value = Dtype.class, names = {"F32", "F16", "BF16"})
    void shardedCheckpointRoundTripsThroughItsIndex(Dtype dtype) throws IOException {
        roundTrip(dtype, 40, 3);
        assertTrue(Files.exists(temp.resolve("ckpt").resolve(CheckpointReader.INDEX_FILE)));
    }

    private void roundTrip(Dtype dtype, long shardBytes, int minShards) throws IOException {
        String dir = temp.resolve("ckpt").toString();
        CheckpointWriter.write(hadoop, dir, specs(dtype), shardBytes, SafetensorsFormatTest::pattern);
        Checkpoint read = new CheckpointReader(hadoop).read(dir);
        assertThat(read.shardFiles().size()).isGreaterThanOrEqualTo(minShards);
        assertEquals(specs(dtype).stream().map(CheckpointWriter.Spec::name).toList(),
                read.tensors().stream().map(StoredTensor::name).toList());
        try (BufferAllocator allocator = new RootAllocator(); RangeReader reader = new RangeReader(hadoop)) {
            for (CheckpointWriter.Spec spec : specs(dtype)) {
                StoredTensor t = read.byName().get(spec.name());
                assertEquals(dtype, t.dtype());
                assertArrayEquals(spec.shape(), t.shape());
                byte[] expected = pattern(spec).array();
                assertArrayEquals(expected, Tensors.bytes(t));
                if (expected.length > 2) {
                    // A positioned read of an inner range, as a chunk task does.
                    try (ArrowBuf buf = allocator.buffer(expected.length)) {
                        reader.read(t.file(), t.offset() + 2, expected.length - 2, buf);
                        byte[] got = new byte[expected.length - 2];
                        buf.getBytes(0, got);
                        assertArrayEquals(java.util.Arrays.copyOfRange(expected, 2, expected.length), got);
                    }
                }
            }
        }
    }

    // ---- header rules: each gives its own message naming the file and tensor ----

    private String file(String headerJson, int dataBytes) throws IOException {
        return file(headerJson.getBytes(StandardCharsets.UTF_8), dataBytes, headerJson.getBytes(StandardCharsets.UTF_8).length);
    }

    private String file(byte[] header, int dataBytes, long declaredLength) throws IOException {
        Path dir = Files.createDirectories(temp.resolve("bad" + System.nanoTime()));
        ByteBuffer b = ByteBuffer.allocate(8 + header.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(declaredLength).put(header);
        Files.write(dir.resolve("model.safetensors"), b.array());
        return dir.toString();
    }

    private String failure(String dir) {
        return assertThrows(FormatException.class, () -> new CheckpointReader(hadoop).read(dir)).getMessage();
    }

    @Test
    void headerLengthPastTheEndOfTheFileIsRefused() throws IOException {
        String dir = file("{}".getBytes(StandardCharsets.UTF_8), 0, 500);
        assertThat(failure(dir)).contains("model.safetensors").contains("reaches past the end").contains("truncated");
    }

    @Test
    void headerLengthOverTheLimitIsRefused() throws IOException {
        String dir = file("{}".getBytes(StandardCharsets.UTF_8), 0, 200_000_000L);
        assertThat(failure(dir)).contains("over the limit of 100000000 bytes");
    }

    @Test
    void aFileShorterThanTheLengthPrefixIsRefused() throws IOException {
        Path dir = Files.createDirectories(temp.resolve("tiny"));
        Files.write(dir.resolve("model.safetensors"), new byte[]{1, 2, 3});
        assertThat(failure(dir.toString())).contains("shorter than the 8-byte header length");
    }

    @Test
    void invalidUtf8IsRefused() throws IOException {
        assertThat(failure(file(new byte[]{'{', (byte) 0xff, '}'}, 0, 3))).contains("not valid UTF-8");
    }

    @Test
    void invalidJsonIsRefused() throws IOException {
        assertThat(failure(file("{\"a\": ", 0))).contains("not valid JSON");
    }

    @Test
    void aHeaderThatIsNotAnObjectIsRefused() throws IOException {
        assertThat(failure(file("[1, 2]", 0))).contains("not a JSON object");
    }

    @Test
    void anEntryWithoutDataOffsetsIsRefused() throws IOException {
        assertThat(failure(file("{\"w\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4)))
                .contains("tensor 'w' lacks data_offsets");
    }

    @Test
    void byteLengthMustMatchShapeTimesDtypeSize() throws IOException {
        assertThat(failure(file("{\"w\": {\"dtype\": \"BF16\", \"shape\": [2, 3], \"data_offsets\": [0, 10]}}", 10)))
                .contains("tensor 'w' occupies 10 bytes but shape [2, 3] of BF16 needs 12");
    }

    @Test
    void overlappingOffsetsAreRefused() throws IOException {
        assertThat(failure(file("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                + " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", 12)))
                .contains("tensor 'b' starts at data offset 4").contains("overlap");
    }

    @Test
    void gapsBetweenTensorsAreRefused() throws IOException {
        assertThat(failure(file("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                + " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}", 12)))
                .contains("tensor 'b'").contains("gap");
    }

    @Test
    void trailingBytesAreRefused() throws IOException {
        assertThat(failure(file("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 9)))
                .contains("cover 4 bytes of data but the file holds 9").contains("trailing bytes");
    }

    @Test
    void aTruncatedDataAreaIsRefused() throws IOException {
        assertThat(failure(file("{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 10)))
                .contains("tensor 'a' ends at data offset 16 but the file holds 10 bytes of data (truncated file");
    }

    @Test
    void duplicateTensorNamesAreRefused() throws IOException {
        assertThat(failure(file("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                + " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8)))
                .contains("holds a name twice: 'a'");
    }

    @Test
    void metadataMustMapStringsToStrings() throws IOException {
        assertThat(failure(file("{\"__metadata__\": {\"format\": 3}}", 0)))
                .contains("__metadata__ entry 'format' is not a string");
    }

    @Test
    void dtypesAmalgamCannotMergeAreRefusedByName() throws IOException {
        assertThat(failure(file("{\"ids\": {\"dtype\": \"I64\", \"shape\": [1], \"data_offsets\": [0, 8]}}", 8)))
                .contains("tensor 'ids' has dtype I64, which Amalgam cannot merge yet (supported: F32, F16, BF16; "
                        + "F8_E4M3 and F8_E5M2 with their scales; U8 as MXFP4 blocks)");
        assertThat(failure(file("{\"x\": {\"dtype\": \"Q4\", \"shape\": [1], \"data_offsets\": [0, 1]}}", 1)))
                .contains("dtype Q4, which is not a safetensors dtype");
    }

    @Test
    void anIndexNamingAMissingShardIsRefused() throws IOException {
        String dir = temp.resolve("sharded").toString();
        CheckpointWriter.write(hadoop, dir, specs(Dtype.F32), 40, SafetensorsFormatTest::pattern);
        Files.delete(temp.resolve("sharded").resolve("model-00002-of-00003.safetensors"));
        assertThat(failure(dir)).contains("weight_map names shard 'model-00002-of-00003.safetensors', which does not exist");
    }

    @Test
    void anIndexNamingATensorItsShardLacksIsRefused() throws IOException {
        String dir = temp.resolve("sharded").toString();
        CheckpointWriter.write(hadoop, dir, specs(Dtype.F32), 40, SafetensorsFormatTest::pattern);
        Path index = temp.resolve("sharded").resolve(CheckpointReader.INDEX_FILE);
        Files.writeString(index, Files.readString(index).replace("\"b.bias\"", "\"b.ghost\""));
        assertThat(failure(dir)).contains("weight_map puts tensor 'b.ghost'").contains("does not hold it");
    }

    @Test
    void writtenHeadersArePaddedToEightBytes() {
        byte[] header = SafetensorsHeader.encode(new ArrayList<>(List.of(
                new TensorEntry("x", Dtype.F16, new long[]{3}, 0, 6))), java.util.Map.of("format", "pt"));
        assertEquals(0, header.length % 8);
        long n = ByteBuffer.wrap(header).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(header.length - 8, n);
    }
}
