package dev.amalgam.format;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.amalgam.cli.AmalgamCli;
import dev.amalgam.kernels.Dtype;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Thousands of mutated headers and index files, each read as {@code amalgam inspect} reads them
 * (every twentieth through the command line itself): every outcome must be a valid checkpoint
 * (exit 0, its header consistent) or Amalgam's own input error (exit 3); a crash, a hang or
 * another code fails the test with the case to replay. Seeded, so a failure reproduces; {@code -Damalgam.fuzz.seed=N} explores other cases and
 * {@code -Damalgam.fuzz.cases=N} runs more.
 */
class HeaderFuzzTest {
    private static final long SEED = Long.getLong("amalgam.fuzz.seed", 20261202L);
    private static final int HEADER_CASES = Integer.getInteger("amalgam.fuzz.cases", 4000);
    private static final int INDEX_CASES = HEADER_CASES / 4;
    private static final String[] DTYPES = {"F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "U8", "BOOL", "F4", "F6_E2M3",
            "F6_E3M2", "I8", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "I32", "U32", "C64", "F64", "I64",
            "U64", "f32", "", "F 32", "F32\u0000", "\uD800", "BF16 ", "Q4_K"};
    private static final String[] NUMBERS = {"0", "1", "-1", "2147483647", "2147483648", "4294967296",
            "9007199254740993", "9223372036854775807", "9223372036854775808", "18446744073709551615",
            "18446744073709551616", "1" + "0".repeat(30), "1.5", "1e3", "-0", "\"3\"", "null", "true", "[]", "{}",
            "1e999", "9".repeat(400)};
    private static final String[] STRINGS = {"\\uD800", "\\uDC00", "\\uD83D\\uDE00", "\\uD800\\u0041", "\\u0000",
            "\\\"", "a".repeat(70_000), "../../etc/passwd", "/abs", "\\u00e9", "é", "\u4e2d", "\\ud800x", "\\uDBFF\\uDFFF"};

    private static final CheckpointReader READER = new CheckpointReader(new org.apache.hadoop.conf.Configuration());

    @TempDir
    static Path temp;

    private static PrintStream out;
    private static PrintStream err;

    @BeforeAll
    static void quiet() {
        out = System.out;
        err = System.err;
        PrintStream nowhere = new PrintStream(OutputStream.nullOutputStream());
        System.setOut(nowhere);
        System.setErr(nowhere);
    }

    @AfterAll
    static void loud() {
        System.setOut(out);
        System.setErr(err);
    }

    /** A valid file: random tensors of the dtypes Amalgam reads, metadata, contiguous data. */
    private static byte[] validFile(SplittableRandom r) {
        int count = 1 + r.nextInt(6);
        List<TensorEntry> tensors = new ArrayList<>();
        long offset = 0;
        Dtype[] dtypes = {Dtype.F32, Dtype.F16, Dtype.BF16};
        for (int i = 0; i < count; i++) {
            Dtype dtype = dtypes[r.nextInt(dtypes.length)];
            long[] shape = new long[r.nextInt(4)];
            for (int d = 0; d < shape.length; d++) {
                shape[d] = r.nextInt(5);
            }
            long bytes = TensorEntry.elementCount(shape) * dtype.byteSize();
            tensors.add(new TensorEntry("layers." + i + ".w", dtype, shape, offset, offset + bytes));
            offset += bytes;
        }
        byte[] header = SafetensorsHeader.encode(tensors, r.nextBoolean() ? java.util.Map.of("format", "pt")
                : java.util.Map.of());
        ByteBuffer file = ByteBuffer.allocate((int) (header.length + offset));
        file.put(header);
        return file.array();
    }

    private static String json(byte[] file) {
        long n = ByteBuffer.wrap(file, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        return new String(file, 8, (int) n, StandardCharsets.UTF_8);
    }

    /** The file with its JSON replaced (the length prefix follows; the data area stays). */
    private static byte[] withJson(byte[] file, String json) {
        long n = ByteBuffer.wrap(file, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        byte[] header = json.getBytes(StandardCharsets.UTF_8);
        int data = file.length - 8 - (int) n;
        ByteBuffer b = ByteBuffer.allocate(8 + header.length + data).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(header.length).put(header).put(file, 8 + (int) n, data);
        return b.array();
    }

    private static String pick(SplittableRandom r, String[] options) {
        return options[r.nextInt(options.length)];
    }

    /** Replaces the {@code k}-th match of a regular expression, k chosen at random. */
    private static String replaceOne(SplittableRandom r, String text, String regex, Function<String, String> by) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile(regex).matcher(text);
        List<int[]> spans = new ArrayList<>();
        while (m.find()) {
            spans.add(new int[]{m.start(), m.end()});
        }
        if (spans.isEmpty()) {
            return text;
        }
        int[] s = spans.get(r.nextInt(spans.size()));
        return text.substring(0, s[0]) + by.apply(text.substring(s[0], s[1])) + text.substring(s[1]);
    }

    private static byte[] mutate(SplittableRandom r, byte[] valid) {
        String j = json(valid);
        return switch (r.nextInt(16)) {
            case 0 -> { // bit flips anywhere in the file, length prefix included
                byte[] b = valid.clone();
                for (int k = 1 + r.nextInt(4); k > 0; k--) {
                    int at = r.nextInt(b.length);
                    b[at] ^= (byte) (1 << r.nextInt(8));
                }
                yield b;
            }
            case 1 -> java.util.Arrays.copyOf(valid, r.nextInt(valid.length + 1)); // truncation
            case 2 -> withJson(valid, replaceOne(r, j, "(?<=\"shape\":\\[)[0-9]+", s -> pick(r, NUMBERS)));
            case 3 -> withJson(valid, replaceOne(r, j, "(?<=\"data_offsets\":\\[)[0-9]+,[0-9]+",
                    s -> pick(r, NUMBERS) + "," + pick(r, NUMBERS)));
            case 4 -> withJson(valid, j.replaceFirst("^\\{", "{\"__metadata__\":" + pick(r, new String[]{"null", "1",
                    "[\"a\"]", "{\"a\":1}", "{\"a\":null}", "{\"a\":{\"b\":\"c\"}}", "\"x\"", "{\"a\":\"" + pick(r, STRINGS)
                    + "\"}"}) + ","));
            case 5 -> withJson(valid, replaceOne(r, j, "(?<=\"dtype\":\")[A-Z0-9_]+", s -> pick(r, DTYPES)));
            case 6 -> withJson(valid, replaceOne(r, j, "\"layers\\.[0-9]+\\.w\"", s -> "\"" + pick(r, STRINGS) + s.substring(1)));
            case 7 -> withJson(valid, replaceOne(r, j, "\\}\\}?\\s*$", s -> ",\"junk\":" + nested(r) + s));
            case 8 -> { // random structural edits
                StringBuilder b = new StringBuilder(j);
                for (int k = 1 + r.nextInt(3); k > 0 && b.length() > 0; k--) {
                    int at = r.nextInt(b.length());
                    if (r.nextBoolean()) {
                        b.deleteCharAt(at);
                    } else {
                        b.insert(at, "{}[]\",:0\\ \u0000".charAt(r.nextInt(11)));
                    }
                }
                yield withJson(valid, b.toString());
            }
            case 9 -> { // the length prefix off by a little or by a lot
                byte[] b = valid.clone();
                long n = ByteBuffer.wrap(b, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
                long[] choices = {n - 1, n + 1, n + 8, 0, -1, Long.MAX_VALUE, 100_000_001L, 1L << 32, b.length};
                ByteBuffer.wrap(b, 0, 8).order(ByteOrder.LITTLE_ENDIAN).putLong(choices[r.nextInt(choices.length)]);
                yield b;
            }
            case 10 -> withJson(valid, pick(r, new String[]{"\uFEFF", " \t\n", "", "x"}) + j.stripTrailing()
                    + pick(r, new String[]{"x", "{}", "\u0000", " \r\n", "", "]", "\"", ",{}"}));
            case 11 -> withJson(valid, replaceOne(r, j, "\"layers\\.[0-9]+\\.w\":\\{[^}]*\\}", s -> s + "," + s));
            case 12 -> withJson(valid, replaceOne(r, j, "\"layers\\.[0-9]+\\.w\":\\{[^}]*\\}",
                    s -> s.replace("\"shape\"", pick(r, new String[]{"\"Shape\"", "\"shape\":[1],\"x\"", "\"shape\":[]"
                            + ",\"shape\""}))));
            case 13 -> { // an entry as an array, or a scalar
                yield withJson(valid, replaceOne(r, j, "(?<=\"layers\\.[0-9]{1,2}\\.w\":)\\{[^}]*\\}",
                        s -> pick(r, new String[]{"[\"F32\",[0],[0,0]]", "[\"F32\",[0]]", "1", "\"t\"", "null", "[]"})));
            }
            case 14 -> withJson(valid, replaceOne(r, j, "(?<=\"shape\":\\[)[0-9,]*", s -> {
                StringBuilder dims = new StringBuilder();
                for (int k = r.nextInt(40); k > 0; k--) {
                    dims.append(pick(r, new String[]{"65536", "2", "0", "4294967297"})).append(k > 1 ? "," : "");
                }
                return dims.toString();
            }));
            default -> withJson(valid, j.replace("[0,", "[" + pick(r, NUMBERS) + ","));
        };
    }

    private static String nested(SplittableRandom r) {
        int depth = r.nextInt(4) == 0 ? 100 + r.nextInt(60) : r.nextInt(6);
        String open = r.nextBoolean() ? "[" : "{\"k\":";
        String close = open.equals("[") ? "]" : "}";
        return open.repeat(depth) + pick(r, NUMBERS) + close.repeat(depth);
    }

    /**
     * Runs inspect; checks the outcome is exit 3, or exit 0 for a file an independent strict
     * reading also finds valid (one JSON object and only whitespace after it, no lone surrogates,
     * sizes matching shapes). Returns the exit code.
     */
    private static int check(String what, Path dir, byte[] replay, boolean header, boolean throughCli) {
        int code;
        try {
            // The reader is what inspect runs; the command line turns its FormatException into exit 3.
            READER.read(dir.toString());
            code = 0;
        } catch (FormatException e) {
            code = 3;
        } catch (Throwable t) {
            fail(what + " escaped as " + t + "; replay: " + hex(replay), t);
            return -1;
        }
        if (throughCli) {
            int cli;
            try {
                cli = AmalgamCli.execute("inspect", dir.toString());
            } catch (Throwable t) {
                fail(what + " escaped the command line as " + t + "; replay: " + hex(replay), t);
                return -1;
            }
            assertEquals(code, cli, what + ": the command line's exit code; replay: " + hex(replay));
        }
        if (code == 0) {
            if (header) {
                assertStrictlyValid(what, replay);
            }
            Checkpoint c = READER.read(dir.toString());
            for (StoredTensor t : c.tensors()) {
                assertEquals(t.byteLength(), t.elements() * t.dtype().byteSize(), what);
            }
        } else if (code != 3) {
            fail(what + " exited " + code + " (expected 0 or 3); replay: " + hex(replay));
        }
        return code;
    }

    /** The case's bytes to replay (its seed and number reproduce it too). */
    private static String hex(byte[] bytes) {
        String all = HexFormat.of().formatHex(bytes);
        return all.length() <= 4096 ? all : all.substring(0, 4096) + "... (" + bytes.length + " bytes)";
    }

    private static final ObjectMapper STRICT = new ObjectMapper(com.fasterxml.jackson.core.JsonFactory.builder()
            .streamReadConstraints(com.fasterxml.jackson.core.StreamReadConstraints.builder()
                    .maxNameLength(Integer.MAX_VALUE).maxStringLength(Integer.MAX_VALUE)
                    .maxNumberLength(Integer.MAX_VALUE).build()).build())
            .enable(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(com.fasterxml.jackson.core.JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    private static void assertStrictlyValid(String what, byte[] file) {
        String text = json(file);
        String replay = "; replay: " + hex(file);
        if (!text.replaceFirst("^[ \\t\\r\\n]+", "").startsWith("{")) {
            fail(what + " was accepted but does not start with an object" + replay);
        }
        com.fasterxml.jackson.databind.JsonNode root;
        try {
            root = STRICT.readTree(text);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            fail(what + " was accepted but is not one strict JSON object: " + e.getOriginalMessage() + replay);
            return;
        }
        root.fieldNames().forEachRemaining(name -> {
            for (int i = 0; i < name.length(); i++) {
                char c = name.charAt(i);
                boolean paired = Character.isHighSurrogate(c) && i + 1 < name.length()
                        && Character.isLowSurrogate(name.charAt(i + 1));
                if (paired) {
                    i++;
                } else if (Character.isSurrogate(c)) {
                    fail(what + " was accepted with a lone surrogate in a name" + replay);
                }
            }
        });
    }

    @Test
    void mutatedHeadersAreReadOrRefusedWithTheInputExitCode() throws IOException {
        SplittableRandom r = new SplittableRandom(SEED);
        Path dir = Files.createDirectories(temp.resolve("headers"));
        int refused = 0;
        for (int i = 0; i < HEADER_CASES; i++) {
            byte[] file = mutate(r, validFile(r));
            Files.write(dir.resolve(CheckpointReader.SINGLE_FILE), file);
            refused += check("header case " + i + " (seed " + SEED + ")", dir, file, true, i % 20 == 0) == 3 ? 1 : 0;
        }
        // The mutations must mostly break things, or the suite tests nothing.
        org.assertj.core.api.Assertions.assertThat(refused).isGreaterThan(HEADER_CASES / 2);
    }

    @Test
    void mutatedIndexFilesAreReadOrRefusedWithTheInputExitCode() throws IOException {
        SplittableRandom r = new SplittableRandom(SEED + 1);
        Path dir = Files.createDirectories(temp.resolve("index"));
        Files.write(dir.resolve("a.safetensors"), validFile(new SplittableRandom(1)));
        Files.write(dir.resolve("b.safetensors"), validFile(new SplittableRandom(2)));
        ObjectMapper json = new ObjectMapper();
        String[] values = {"a.safetensors", "b.safetensors", "", "..", "../a.safetensors", "/etc/passwd", "a:b",
                "hdfs://x/y", "s3a://b/k", "file:///etc/passwd", "sub/../a.safetensors", "a.safetensors\u0000",
                "c.safetensors", ".", "./a.safetensors", "\uD800", "%2e%2e/a", "\\..\\a", "a".repeat(5000)};
        for (int i = 0; i < INDEX_CASES; i++) {
            ObjectNode root = json.createObjectNode();
            root.putObject("metadata").put("total_size", r.nextInt(100));
            ObjectNode map = root.putObject("weight_map");
            for (int k = 0; k < 1 + r.nextInt(5); k++) {
                String name = "layers." + r.nextInt(6) + ".w";
                switch (r.nextInt(4)) {
                    case 0 -> map.put(name, r.nextInt(3));
                    case 1 -> map.putNull(name);
                    default -> map.put(name, pick(r, values));
                }
            }
            String text = json.writeValueAsString(root);
            if (r.nextInt(3) == 0) {
                StringBuilder b = new StringBuilder(text);
                for (int k = 1 + r.nextInt(3); k > 0 && b.length() > 0; k--) {
                    b.setCharAt(r.nextInt(b.length()), "{}[]\",:0x\\".charAt(r.nextInt(10)));
                }
                text = b.toString();
            }
            byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
            Files.write(dir.resolve(CheckpointReader.INDEX_FILE), bytes);
            check("index case " + i + " (seed " + (SEED + 1) + ")", dir, bytes, false, i % 20 == 0);
        }
    }
}
