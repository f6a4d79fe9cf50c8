package dev.amalgam.job;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.amalgam.AmalgamException;
import dev.amalgam.format.StoredTensor;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.testing.MergeFixture;
import dev.amalgam.testing.TestSpark;
import dev.amalgam.testing.Tensors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * NaN and infinite values are counted in the passes that already read the inputs and write the
 * result, and the --non-finite policy decides: error (the default) publishes nothing and keeps the
 * chunks, warn and allow publish with the counts in the report.
 */
class NonFiniteValuesTest {
    private static final String TENSOR = "model.layers.1.mlp.up_proj.weight";

    @TempDir
    Path temp;

    private static String ties(MergeFixture f) {
        return f.config("ties.yml", "merge_method: ties\nbase_model: " + f.base + "\nmodels:\n"
                + "  - model: " + f.models.get(0) + "\n    parameters: {weight: 1.0, density: 0.5}\n"
                + "  - model: " + f.models.get(1) + "\n    parameters: {weight: 1.0, density: 0.5}\n");
    }

    /** Writes NaN, +Inf and -Inf over the first values of a tensor; returns how many it wrote. */
    private static int poison(String model, String tensor, Dtype dtype, int count) throws Exception {
        StoredTensor t = Tensors.open(model).tensors().stream().filter(s -> s.name().equals(tensor)).findFirst()
                .orElseThrow();
        float[] special = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
        float[] values = new float[count];
        for (int i = 0; i < count; i++) {
            values[i] = special[i % 3];
        }
        String file = t.file().startsWith("file:") ? Path.of(java.net.URI.create(t.file())).toString() : t.file();
        try (RandomAccessFile raf = new RandomAccessFile(file, "rw")) {
            raf.seek(t.offset() + 5L * dtype.byteSize());
            raf.write(Tensors.encode(values, dtype));
        }
        return count;
    }

    private static JsonNode report(String out) throws Exception {
        return new ObjectMapper().readTree(Path.of(out, "amalgam-report.json").toFile());
    }

    private static JsonNode tensor(JsonNode report, String name) {
        for (JsonNode t : report.get("tensors")) {
            if (t.get("name").asText().equals(name)) {
                return t;
            }
        }
        throw new AssertionError(name);
    }

    @ParameterizedTest
    @EnumSource(value = Dtype.class, names = {"F32", "F16", "BF16"})
    void byDefaultNonFiniteInputsFailTheRunBeforePublishingNamingModelTensorAndCount(Dtype dtype) throws Exception {
        MergeFixture f = MergeFixture.create(temp, dtype, 2, Long.MAX_VALUE);
        int n = poison(f.models.get(1), TENSOR, dtype, 7);
        String out = f.out("merged");
        AmalgamException e = assertThrows(AmalgamException.class, () -> new MergeJob(TestSpark.context())
                .run(MergeRequest.of(ties(f), out).withChunkElements(64)));
        assertEquals(AmalgamException.Kind.INPUT, e.kind());
        assertThat(e.getMessage()).contains("nothing was published")
                .contains("model " + f.models.get(1) + ": tensor '" + TENSOR + "' holds " + n + " NaN or infinite values")
                .contains("--non-finite warn");
        assertFalse(Files.exists(Path.of(out)));
    }

    @Test
    void aRerunUnderWarnPublishesTheKeptChunksWithoutMergingAgainAndReportsTheCounts() throws Exception {
        MergeFixture f = MergeFixture.create(temp, Dtype.BF16, 2, Long.MAX_VALUE);
        int n = poison(f.models.get(0), TENSOR, Dtype.BF16, 4);
        String out = f.out("merged");
        String config = ties(f);
        assertThrows(AmalgamException.class, () -> new MergeJob(TestSpark.context())
                .run(MergeRequest.of(config, out).withChunkElements(64)));
        new MergeJob(TestSpark.context()).run(MergeRequest.of(config, out).withChunkElements(64)
                .withNonFinite(NonFinitePolicy.WARN));
        JsonNode report = report(out);
        assertEquals(0, report.get("chunks_merged").asLong());
        assertEquals("warn", report.get("non_finite").get("policy").asText());
        assertEquals(n, report.get("non_finite").get("models").get(0).asLong());
        assertEquals(0, report.get("non_finite").get("models").get(1).asLong());
        JsonNode t = tensor(report, TENSOR).get("non_finite");
        assertEquals(n, t.get("models").get(0).asLong());
        assertEquals(0, t.get("base_model").asLong());
    }

    @Test
    void countsAreTheSameWholeOrInChunksAndNonFiniteBaseValuesAreTheBases() throws Exception {
        MergeFixture f = MergeFixture.create(temp, Dtype.F16, 2, Long.MAX_VALUE);
        int n = poison(f.base, TENSOR, Dtype.F16, 11);
        String config = ties(f);
        for (int chunk : new int[]{7, 1 << 20}) {
            String out = f.out("merged-" + chunk);
            new MergeJob(TestSpark.context()).run(MergeRequest.of(config, out).withChunkElements(chunk)
                    .withWholeTensorStatistics(false).withNonFinite(NonFinitePolicy.ALLOW));
            JsonNode t = tensor(report(out), TENSOR).get("non_finite");
            assertEquals(n, t.get("base_model").asLong());
            assertEquals(n, report(out).get("non_finite").get("base_model").asLong());
            // A NaN base makes every delta NaN, and the merged value base + delta NaN or infinite.
            long merged = Stream.of(Tensors.floats(Tensors.open(out).tensors().stream()
                    .filter(s -> s.name().equals(TENSOR)).findFirst().orElseThrow()))
                    .mapToLong(values -> countNonFinite(values)).sum();
            assertEquals(merged, t.get("output").asLong());
            assertTrue(merged > 0);
        }
    }

    private static long countNonFinite(float[] values) {
        long n = 0;
        for (float v : values) {
            n += Float.isFinite(v) ? 0 : 1;
        }
        return n;
    }

    @Test
    void aResultThatOverflowsFromFiniteInputsIsAnExecutionErrorNamingTheMergedTensor() throws Exception {
        MergeFixture f = MergeFixture.create(temp, Dtype.F16, 2, Long.MAX_VALUE);
        // Two float16 inputs of 60000 each sum to 120000, past float16's 65504.
        for (String model : f.models) {
            StoredTensor t = Tensors.open(model).tensors().stream().filter(s -> s.name().equals(TENSOR)).findFirst()
                    .orElseThrow();
            String file = t.file().startsWith("file:") ? Path.of(java.net.URI.create(t.file())).toString() : t.file();
            try (RandomAccessFile raf = new RandomAccessFile(file, "rw")) {
                raf.seek(t.offset());
                raf.write(Tensors.encode(new float[]{60000f, 60000f, 60000f}, Dtype.F16));
            }
        }
        String config = f.config("linear.yml", "merge_method: linear\nmodels:\n"
                + "  - model: " + f.models.get(0) + "\n    parameters: {weight: 1.0}\n"
                + "  - model: " + f.models.get(1) + "\n    parameters: {weight: 1.0}\n"
                + "parameters: {normalize: false}\n");
        String out = f.out("merged");
        AmalgamException e = assertThrows(AmalgamException.class, () -> new MergeJob(TestSpark.context())
                .run(MergeRequest.of(config, out).withChunkElements(64)));
        assertEquals(AmalgamException.Kind.EXECUTION, e.kind());
        assertThat(e.getMessage()).contains("the merged tensor '" + TENSOR + "' holds 3 NaN or infinite values");
        assertFalse(Files.exists(Path.of(out)));
    }

    @Test
    void underAllowNothingIsSaidAndTheCountsAreInTheReport() throws Exception {
        MergeFixture f = MergeFixture.create(temp, Dtype.F32, 2, Long.MAX_VALUE);
        int n = poison(f.models.get(1), TENSOR, Dtype.F32, 5);
        String out = f.out("merged");
        new MergeJob(TestSpark.context()).run(MergeRequest.of(ties(f), out).withNonFinite(NonFinitePolicy.ALLOW));
        assertEquals(n, report(out).get("non_finite").get("models").get(1).asLong());
        List<String> clean = List.of("model.layers.0.mlp.up_proj.weight");
        assertThat(tensor(report(out), clean.get(0)).has("non_finite")).isFalse();
    }

    @Test
    void theCommandLineExitsWithTheInputCodeAndNoStackTraceAndRefusesAnUnknownPolicy() throws Exception {
        MergeFixture f = MergeFixture.create(temp, Dtype.BF16, 2, Long.MAX_VALUE);
        poison(f.models.get(0), TENSOR, Dtype.BF16, 2);
        dev.amalgam.testing.CliProcess.Run run = dev.amalgam.testing.CliProcess.run(temp, "merge", ties(f),
                f.out("merged"), "--no-progress");
        assertEquals(3, run.exitCode(), run.stderr());
        assertThat(run.stderr()).contains("tensor '" + TENSOR + "' holds 2 NaN or infinite values")
                .doesNotContain("\tat ");
        dev.amalgam.testing.CliProcess.Run bad = dev.amalgam.testing.CliProcess.run(temp, "merge", ties(f),
                f.out("merged"), "--non-finite", "ignore");
        assertEquals(2, bad.exitCode(), bad.stderr());
        assertThat(bad.stderr()).contains("--non-finite 'ignore' is unknown; use error, warn or allow");
    }
}
