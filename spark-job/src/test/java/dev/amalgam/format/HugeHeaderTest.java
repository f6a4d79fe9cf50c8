package dev.amalgam.format;

import dev.amalgam.testing.CliProcess;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A valid header of 300,000 tensors (21 MB): read in a small heap, and refused with the heap to
 * give, never a raw OutOfMemoryError, in a heap too small for it.
 */
class HugeHeaderTest {
    private static final int TENSORS = 300_000;

    @TempDir
    static Path temp;

    static Path model;

    @BeforeAll
    static void writeModel() throws IOException {
        model = Files.createDirectories(temp.resolve("many-tensors"));
        StringBuilder json = new StringBuilder("{");
        for (int i = 0; i < TENSORS; i++) {
            json.append(i == 0 ? "" : ",").append("\"model.layers.").append(i)
                    .append(".w\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[").append(2L * i).append(',')
                    .append(2L * i + 2).append("]}");
        }
        json.append('}');
        byte[] header = json.toString().getBytes(StandardCharsets.UTF_8);
        try (OutputStream out = Files.newOutputStream(model.resolve("model.safetensors"))) {
            out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length).array());
            out.write(header);
            out.write(new byte[2 * TENSORS]);
        }
    }

    @Test
    void aValidHugeHeaderIsReadInAHeapOfSevenTimesItsSize() throws Exception {
        CliProcess.Run run = CliProcess.run(List.of("-Xmx160m"), temp, "inspect", model.toString());
        assertEquals(0, run.exitCode(), run.stderr());
        assertThat(run.stdout()).contains(TENSORS + " tensors").contains("model.layers.299999.w");
    }

    @Test
    void aHeapTooSmallForTheHeaderIsAnErrorNamingTheFileAndTheHeapToGive() throws Exception {
        CliProcess.Run run = CliProcess.run(List.of("-Xmx40m"), temp, "inspect", model.toString());
        assertEquals(3, run.exitCode(), run.stderr());
        assertThat(run.stderr()).contains(model.resolve("model.safetensors").toString())
                .contains("MB of heap to read").contains("JAVA_OPTS=-Xmx")
                .doesNotContain("OutOfMemoryError").doesNotContain("\tat ");
    }
}
