package dev.amalgam.format;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The safetensors reference implementation's own header tests (safetensors/src/tensor.rs, named
 * after them), rebuilt from their bytes. Where a case uses I32, a dtype Amalgam refuses on purpose,
 * the same bytes carry F32 (also 4 bytes), so the case still tests what it was written for.
 */
class ReferenceHeaderCasesTest {

    /** Parses a whole file image the way {@link CheckpointReader} does. */
    static SafetensorsHeader.Parsed parseFile(byte[] file) {
        byte[] prefix = new byte[8];
        System.arraycopy(file, 0, prefix, 0, Math.min(8, file.length));
        long n = SafetensorsHeader.headerLength("model.safetensors", prefix, file.length);
        byte[] header = new byte[(int) n];
        System.arraycopy(file, 8, header, 0, (int) n);
        return SafetensorsHeader.parse("model.safetensors", header, file.length);
    }

    static byte[] bytes(String latin1) {
        return latin1.getBytes(StandardCharsets.ISO_8859_1);
    }

    static String refused(byte[] file) {
        return assertThrows(FormatException.class, () -> parseFile(file)).getMessage();
    }

    private static final String ZEROS16 = "\0".repeat(16);

    @Test
    void test_empty() {
        assertThat(parseFile(bytes("\u0008\0\0\0\0\0\0\0{}      ")).tensors()).isEmpty();
        String meta = "{\"__metadata__\":{\"framework\":\"pt\"}}     ";
        SafetensorsHeader.Parsed parsed = parseFile(bytes("\u0028\0\0\0\0\0\0\0" + meta));
        assertEquals("pt", parsed.metadata().get("framework"));
    }

    @Test
    void test_empty_shapes_allowed() {
        SafetensorsHeader.Parsed parsed = parseFile(bytes(
                "8\0\0\0\0\0\0\0{\"test\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}\0\0\0\0"));
        assertThat(parsed.tensors()).singleElement().satisfies(t -> assertThat(t.shape()).isEmpty());
    }

    @Test
    void test_deserialization() {
        SafetensorsHeader.Parsed parsed = parseFile(bytes(
                "<\0\0\0\0\0\0\0{\"test\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}" + ZEROS16));
        assertThat(parsed.tensors()).singleElement().satisfies(t -> {
            assertEquals("test", t.name());
            assertThat(t.shape()).containsExactly(2, 2);
        });
    }

    @Test
    void test_json_attack() {
        StringBuilder json = new StringBuilder("{");
        for (int i = 0; i < 10; i++) {
            json.append(i == 0 ? "" : ",").append("\"weight_").append(i)
                    .append("\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}");
        }
        json.append('}');
        ByteBuffer file = ByteBuffer.allocate(8 + json.length() + 16).order(ByteOrder.LITTLE_ENDIAN);
        file.putLong(json.length()).put(bytes(json.toString()));
        assertThat(refused(file.array())).contains("(overlap)");
    }

    @Test
    void test_metadata_incomplete_buffer() {
        String header = "<\0\0\0\0\0\0\0{\"test\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";
        assertThat(refused(bytes(header + ZEROS16 + "extra_bogus_data_for_polyglot_file"))).contains("trailing bytes");
        assertThat(refused(bytes(header + "\0".repeat(14)))).contains("truncated file");
    }

    @Test
    void test_header_too_large() {
        assertThat(refused(bytes("<\0\0\0\0\u00ff\u00ff\u00ff{\"test\":{\"dtype\":\"F32\",\"shape\":[2,2],"
                + "\"data_offsets\":[0,16]}}" + ZEROS16))).contains("over the limit of 100000000 bytes");
    }

    @Test
    void test_header_too_small() {
        assertThat(refused(new byte[0])).contains("shorter than the 8-byte header length");
    }

    @Test
    void test_invalid_header_length() {
        assertThat(refused(bytes("<\0\0\0\0\0\0\0"))).contains("reaches past the end");
    }

    @Test
    void test_invalid_header_non_utf8() {
        assertThat(refused(bytes("\u0001\0\0\0\0\0\0\0\u00ff"))).contains("not valid UTF-8");
    }

    @Test
    void test_invalid_header_not_json() {
        assertThat(refused(bytes("\u0001\0\0\0\0\0\0\0{"))).contains("not valid JSON");
    }

    @Test
    void test_whitespace_padded_header() {
        assertThat(parseFile(bytes("\u0006\0\0\0\0\0\0\0{}\r \t\n")).tensors()).isEmpty();
    }

    @Test
    void test_whitespace_leading_padded_header() {
        assertThat(parseFile(bytes("\u0006\0\0\0\0\0\0\0\t\n{}\r ")).tensors()).isEmpty();
    }

    @Test
    void test_zero_sized_tensor() {
        SafetensorsHeader.Parsed parsed = parseFile(bytes(
                "<\0\0\0\0\0\0\0{\"test\":{\"dtype\":\"F32\",\"shape\":[2,0],\"data_offsets\":[0, 0]}}"));
        assertThat(parsed.tensors()).singleElement().satisfies(t -> assertEquals(0, t.byteLength()));
    }

    @Test
    void test_invalid_info() {
        assertThat(refused(bytes("<\0\0\0\0\0\0\0{\"test\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0, 4]}}")))
                .contains("occupies 4 bytes but shape [2, 2] of F32 needs 16");
    }

    @Test
    void test_validation_overflow() {
        // 18446744073709551614 is a valid usize there; Amalgam refuses dimensions past 2^63 on purpose.
        assertThat(refused(bytes("O\0\0\0\0\0\0\0{\"test\":{\"dtype\":\"F32\",\"shape\":[2,18446744073709551614],"
                + "\"data_offsets\":[0,16]}}" + ZEROS16))).contains("not a list of non-negative integers");
        assertThat(refused(bytes("N\0\0\0\0\0\0\0{\"test\":{\"dtype\":\"F32\",\"shape\":[2,9223372036854775807],"
                + "\"data_offsets\":[0,16]}}" + ZEROS16))).contains("size overflows");
    }

    @Test
    void theReferencesI32IsRefusedByNameOnPurpose() {
        assertThat(refused(bytes("<\0\0\0\0\0\0\0{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}"
                + ZEROS16))).contains("dtype I32, which Amalgam cannot merge yet");
    }
}
