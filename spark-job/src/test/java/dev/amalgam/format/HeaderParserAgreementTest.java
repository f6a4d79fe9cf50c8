package dev.amalgam.format;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Headers where the reference parser (serde_json into the reference's structs) decides one way
 * and Amalgam once decided the other.
 */
class HeaderParserAgreementTest {

    private static byte[] file(String json, int dataBytes) {
        byte[] header = json.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + header.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(header.length).put(header);
        return b.array();
    }

    private static SafetensorsHeader.Parsed accepted(String json, int dataBytes) {
        return ReferenceHeaderCasesTest.parseFile(file(json, dataBytes));
    }

    private static String refused(String json, int dataBytes) {
        return assertThrows(FormatException.class, () -> ReferenceHeaderCasesTest.parseFile(file(json, dataBytes)))
                .getMessage();
    }

    private static String tensor(String name, long begin) {
        return "\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[" + begin + "," + (begin + 4) + "]}";
    }

    @Test
    void contentAfterTheJsonObjectIsRefused() {
        assertThat(refused("{}x", 0)).contains("content after its JSON object (at header character 2)");
        assertThat(refused("{}{\"b\":1}", 0)).contains("content after its JSON object");
        assertThat(refused("{}\0", 0)).contains("content after its JSON object");
    }

    @Test
    void aByteOrderMarkBeforeTheObjectIsRefused() {
        assertThat(refused("\uFEFF{}", 0)).contains("model.safetensors");
    }

    @Test
    void loneSurrogateEscapesAreRefusedWherePairedOnesAreAccepted() {
        assertThat(refused("{" + tensor("a\\uD800b", 0) + "}", 4)).contains("lone UTF-16 surrogate escape (\\uD800");
        assertThat(refused("{" + tensor("a\\uDC00", 0) + "}", 4)).contains("lone UTF-16 surrogate");
        assertThat(refused("{\"__metadata__\":{\"k\":\"\\uD83D\"}}", 0)).contains("lone UTF-16 surrogate");
        assertThat(refused("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"note\":\"\\uDFFF\"}}", 4))
                .contains("lone UTF-16 surrogate");
        assertEquals("a\uD83D\uDE00", accepted("{" + tensor("a\\uD83D\\uDE00", 0) + "}", 4).tensors().get(0).name());
    }

    @Test
    void namesOverFiftyThousandCharactersAreAccepted() {
        String name = "n".repeat(60_000);
        assertEquals(name, accepted("{" + tensor(name, 0) + "}", 4).tensors().get(0).name());
    }

    @Test
    void stringsOverTwentyMillionCharactersAreAccepted() {
        String value = "v".repeat(21_000_000);
        assertEquals(value.length(), accepted("{\"__metadata__\":{\"blob\":\"" + value + "\"}}", 0)
                .metadata().get("blob").length());
    }

    @Test
    void nullMetadataIsAccepted() {
        assertThat(accepted("{\"__metadata__\":null," + tensor("a", 0) + "}", 4).metadata()).isEmpty();
    }

    @Test
    void fieldsTheReferenceIgnoresAreIgnored() {
        assertThat(accepted("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":[{\"x\":1.5}]}}", 4)
                .tensors()).hasSize(1);
    }

    @Test
    void anEntryGivenAsAnArrayIsReadAsSerdeReadsAStruct() {
        assertThat(accepted("{\"t\":[\"F32\",[1],[0,4]]}", 4).tensors()).singleElement()
                .satisfies(t -> assertEquals(4, t.byteLength()));
        assertThat(refused("{\"t\":[\"F32\",[1],[0,4],1]}", 4)).contains("expected [dtype, shape, data_offsets]");
    }

    @Test
    void nestingStopsWhereTheReferenceStops() {
        String allowed = "[".repeat(SafetensorsHeader.MAX_DEPTH - 2) + "]".repeat(SafetensorsHeader.MAX_DEPTH - 2);
        assertThat(accepted("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":" + allowed + "}}", 4)
                .tensors()).hasSize(1);
        String deeper = "[" + allowed + "]";
        assertThat(refused("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":" + deeper + "}}", 4))
                .contains("nests deeper than 127 levels");
    }

    @Test
    void numbersOutOfTheReferencesRangeAreRefusedEvenInIgnoredFields() {
        assertThat(refused("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1e999}}", 4))
                .contains("out of the range");
        assertThat(refused("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":" + "9".repeat(400)
                + "}}", 4)).contains("out of the range");
        assertThat(accepted("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":" + "9".repeat(300)
                + "}}", 4).tensors()).hasSize(1);
    }

    @Test
    void errorOutputIsBoundedPerFile() {
        StringBuilder json = new StringBuilder("{");
        for (int i = 0; i < 100_000; i++) {
            json.append(i == 0 ? "" : ",").append(tensor("w" + i, 0));
        }
        json.append('}');
        FormatException e = assertThrows(FormatException.class,
                () -> ReferenceHeaderCasesTest.parseFile(file(json.toString(), 4)));
        assertThat(e.problems()).hasSize(Problems.SHOWN + 1);
        assertThat(e.problems().get(Problems.SHOWN)).isEqualTo("model.safetensors: ... and 99979 more problems of the "
                + "same kinds (the first 20 are shown)");
    }
}
