package dev.amalgam.format;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.exc.StreamConstraintsException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.amalgam.kernels.Dtype;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The safetensors header: an 8-byte little-endian length N, then N bytes of UTF-8 JSON. Parsing
 * applies the reference parser's rules and reports every violation with the file and tensor.
 */
public final class SafetensorsHeader {
    public static final long MAX_HEADER_BYTES = 100_000_000L;

    /** Dtypes safetensors defines that Amalgam does not merge yet: refused by name. */
    private static final Set<String> KNOWN_UNSUPPORTED = Set.of("BOOL", "I8", "I16", "U16", "I32", "U32",
            "F64", "I64", "U64", "C64", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "F4", "F6_E2M3", "F6_E3M2");

    /** serde_json's recursion limit: the reference refuses a 128th level of nesting. */
    static final int MAX_DEPTH = 127;

    /** Headers from this size on are checked against the free heap before parsing. */
    private static final long HEAP_CHECK_FROM = 8L << 20;
    private static final long HEAP_PER_HEADER_BYTE = 3;

    private static final JsonFactory JSON_FACTORY = JsonFactory.builder()
            .streamReadConstraints(StreamReadConstraints.builder()
                    .maxNestingDepth(MAX_DEPTH)
                    // The reference has no limits on names, strings or numbers; the header's size bounds them.
                    .maxNameLength(Integer.MAX_VALUE)
                    .maxStringLength(Integer.MAX_VALUE)
                    .maxNumberLength(Integer.MAX_VALUE)
                    .build())
            // Interning 1.35 M distinct tensor names would only cost memory, and crafted names could flood it.
            .disable(JsonFactory.Feature.CANONICALIZE_FIELD_NAMES)
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .build();

    private static final ObjectMapper JSON = new ObjectMapper();

    /** A parsed header: tensors in data order, metadata, and where the data area starts in the file. */
    public record Parsed(List<TensorEntry> tensors, Map<String, String> metadata, long dataStart) {
    }

    private SafetensorsHeader() {
    }

    /** Reads the header length from the first 8 bytes, checking it against the file length. */
    public static long headerLength(String file, byte[] prefix, long fileLength) {
        if (fileLength < 8) {
            throw invalid(file, "the file is " + fileLength + " bytes, shorter than the 8-byte header length");
        }
        long n = ByteBuffer.wrap(prefix, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        if (n < 0 || n > MAX_HEADER_BYTES) {
            throw invalid(file, "header length " + Long.toUnsignedString(n) + " is over the limit of "
                    + MAX_HEADER_BYTES + " bytes (is this a safetensors file?)");
        }
        if (8 + n > fileLength) {
            throw invalid(file, "header length " + n + " reaches past the end of the " + fileLength
                    + "-byte file (truncated?)");
        }
        return n;
    }

    /**
     * Parses and validates the JSON header of a file of {@code fileLength} bytes. Agrees with the
     * reference parser (serde_json into the reference's structs) on what it accepts, except where
     * the README says Amalgam is stricter (duplicate names, dtypes it cannot merge, dimensions past
     * 2^63). Streams the JSON so a header's heap is its tensors' entries, not a JSON tree.
     */
    public static Parsed parse(String file, byte[] headerJson, long fileLength) {
        requireUtf8(file, headerJson);
        try {
            return parseJson(file, headerJson, fileLength);
        } catch (OutOfMemoryError e) {
            throw tooLargeForHeap(file, headerJson.length);
        }
    }

    /** Heap a header of this many bytes may need while parsed (measured: about 2.6x on 1.35 M tensors). */
    public static long heapNeeded(long headerBytes) {
        return HEAP_PER_HEADER_BYTE * headerBytes;
    }

    /** Refuses, naming the file and the heap to give, a header this JVM cannot hold while parsing it. */
    public static void requireHeap(String file, long headerBytes) {
        if (headerBytes < HEAP_CHECK_FROM) {
            return;
        }
        Runtime runtime = Runtime.getRuntime();
        long available = runtime.maxMemory() - (runtime.totalMemory() - runtime.freeMemory());
        if (heapNeeded(headerBytes) > available) {
            System.gc();
            available = runtime.maxMemory() - (runtime.totalMemory() - runtime.freeMemory());
            if (heapNeeded(headerBytes) > available) {
                throw tooLargeForHeap(file, headerBytes);
            }
        }
    }

    public static FormatException tooLargeForHeap(String file, long headerBytes) {
        long maxMb = Runtime.getRuntime().maxMemory() >> 20;
        long needMb = (heapNeeded(headerBytes) >> 20) + maxMb / 4 + 64;
        return invalid(file, "the " + (headerBytes >> 20) + " MB header needs about " + (heapNeeded(headerBytes) >> 20)
                + " MB of heap to read, more than this JVM has free (maximum heap " + maxMb + " MB); give the "
                + "driver more, e.g. JAVA_OPTS=-Xmx" + needMb + "m for scripts/amalgam, or --driver-memory " + needMb
                + "m for scripts/submit");
    }

    private static void requireUtf8(String file, byte[] headerJson) {
        // Decode into a small window only to validate: a 100 MB header must not become a 200 MB String.
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(headerJson);
        CharBuffer window = CharBuffer.allocate(8192);
        while (true) {
            CoderResult result = decoder.decode(in, window, true);
            if (result.isError()) {
                throw invalid(file, "the header is not valid UTF-8 (at header byte " + in.position() + ")");
            }
            window.clear();
            if (result.isUnderflow()) {
                break;
            }
        }
        decoder.flush(window);
    }

    private static Parsed parseJson(String file, byte[] headerJson, long fileLength) {
        long dataStart = 8L + headerJson.length;
        long dataLength = fileLength - dataStart;
        Problems problems = new Problems(file);
        Map<String, String> metadata = new LinkedHashMap<>();
        List<TensorEntry> tensors = new ArrayList<>();
        // A Reader fixes the encoding: Jackson would otherwise guess UTF-16 from "{\0}\0" and skip a BOM.
        try (JsonParser p = JSON_FACTORY.createParser(new InputStreamReader(new ByteArrayInputStream(headerJson),
                StandardCharsets.UTF_8))) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                throw invalid(file, "the header is not a JSON object");
            }
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                requireWholeCharacters(file, name);
                p.nextToken();
                if (name.equals("__metadata__")) {
                    readMetadata(file, p, metadata, problems);
                } else {
                    TensorEntry entry = readEntry(file, name, p, problems);
                    if (entry != null) {
                        tensors.add(entry);
                    }
                }
            }
            requireNothingAfter(file, p);
        } catch (StreamConstraintsException e) {
            throw invalid(file, "the header nests deeper than " + MAX_DEPTH + " levels, the reference parser's limit");
        } catch (JsonParseException e) {
            String message = e.getOriginalMessage();
            if (message.startsWith("Duplicate field")) {
                throw invalid(file, "the header holds a name twice: " + message.substring("Duplicate field ".length())
                        + " (Amalgam refuses duplicate names, which the reference resolves silently)");
            }
            throw invalid(file, "the header is not valid JSON: " + message + " (at header character "
                    + e.getLocation().getCharOffset() + ")");
        } catch (IOException e) {
            throw invalid(file, "the header cannot be parsed: " + e.getMessage());
        }
        tensors.sort(Comparator.comparingLong(TensorEntry::begin).thenComparingLong(TensorEntry::end));
        long expected = 0;
        for (TensorEntry t : tensors) {
            if (t.begin() != expected) {
                problems.add(file + ": tensor '" + t.name() + "' starts at data offset " + t.begin() + " but "
                        + (t.begin() < expected ? "the previous tensor ends at " + expected + " (overlap)"
                        : "the previous tensor ends at " + expected + " (gap)"));
            }
            expected = Math.max(expected, t.end());
        }
        if (problems.isEmpty() && expected > dataLength) {
            TensorEntry cut = tensors.stream().filter(t -> t.end() > dataLength).findFirst().orElseThrow();
            problems.add(file + ": tensor '" + cut.name() + "' ends at data offset " + cut.end() + " but the file holds "
                    + dataLength + " bytes of data (truncated file; copy it again)");
        } else if (problems.isEmpty() && expected < dataLength) {
            problems.add(file + ": the tensors cover " + expected + " bytes of data but the file holds "
                    + dataLength + " (trailing bytes)");
        }
        problems.throwIfAny();
        return new Parsed(List.copyOf(tensors), Map.copyOf(metadata), dataStart);
    }

    /** Only JSON whitespace (space, tab, CR, LF) may follow the object; serde_json refuses the rest. */
    private static void requireNothingAfter(String file, JsonParser p) throws IOException {
        JsonToken next;
        try {
            next = p.nextToken();
        } catch (JsonParseException e) {
            next = JsonToken.NOT_AVAILABLE;
        }
        if (next != null) {
            throw invalid(file, "the header has content after its JSON object (at header character "
                    + p.currentTokenLocation().getCharOffset() + "); only spaces, tabs and line breaks may pad a header");
        }
    }

    /** serde_json refuses strings with an unpaired UTF-16 surrogate escape, and so must we. */
    private static void requireWholeCharacters(String file, String text) {
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                throw invalid(file, "the header holds a string with a lone UTF-16 surrogate escape (\\u"
                        + Integer.toHexString(c).toUpperCase(java.util.Locale.ROOT) + " near '"
                        + printable(text.substring(0, Math.min(i, 40))) + "'); the safetensors reference and "
                        + "transformers refuse such files");
            }
        }
    }

    private static String printable(String s) {
        return s.codePoints().filter(cp -> cp >= 0x20 && !Character.isSurrogate((char) cp))
                .collect(StringBuilder::new, StringBuilder::appendCodePoint, StringBuilder::append).toString();
    }

    /** Consumes the value at the current token, checking what serde_json checks in values it ignores. */
    private static void skipValue(String file, JsonParser p) throws IOException {
        int depth = 0;
        JsonToken t = p.currentToken();
        while (true) {
            switch (t) {
                case START_OBJECT, START_ARRAY -> depth++;
                case END_OBJECT, END_ARRAY -> depth--;
                case FIELD_NAME -> requireWholeCharacters(file, p.currentName());
                case VALUE_STRING -> requireWholeCharacters(file, p.getText());
                case VALUE_NUMBER_INT, VALUE_NUMBER_FLOAT -> requireFiniteNumber(file, p);
                default -> {
                }
            }
            if (depth == 0) {
                return;
            }
            t = p.nextToken();
        }
    }

    private static void requireFiniteNumber(String file, JsonParser p) throws IOException {
        String text = p.getText();
        // serde_json parses every number, ignored or not, as at most an f64 and refuses one out of range.
        boolean finite = p.currentToken() == JsonToken.VALUE_NUMBER_INT && text.length() <= 18
                || Double.isFinite(Double.parseDouble(text));
        if (!finite) {
            throw invalid(file, "the header holds the number " + (text.length() > 40 ? text.substring(0, 40) + "..."
                    : text) + ", out of the range the reference parser reads");
        }
    }

    private static void readMetadata(String file, JsonParser p, Map<String, String> metadata, Problems problems)
            throws IOException {
        if (p.currentToken() == JsonToken.VALUE_NULL) {
            return;
        }
        if (p.currentToken() != JsonToken.START_OBJECT) {
            problems.add(file + ": __metadata__ must be an object of strings (or null)");
            skipValue(file, p);
            return;
        }
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String key = p.currentName();
            requireWholeCharacters(file, key);
            if (p.nextToken() == JsonToken.VALUE_STRING) {
                String value = p.getText();
                requireWholeCharacters(file, value);
                metadata.put(key, value);
            } else {
                problems.add(file + ": __metadata__ entry '" + key + "' is not a string");
                skipValue(file, p);
            }
        }
    }

    /**
     * A tensor's entry: an object with dtype, shape and data_offsets (other fields ignored), or,
     * as serde also reads a struct, the array [dtype, shape, data_offsets].
     */
    private static TensorEntry readEntry(String file, String name, JsonParser p, Problems problems) throws IOException {
        String where = file + ": tensor '" + name + "'";
        String dtypeName = null;
        long[] shape = null;
        long[] offsets = null;
        boolean bad = false;
        if (p.currentToken() == JsonToken.START_OBJECT) {
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                requireWholeCharacters(file, field);
                p.nextToken();
                switch (field) {
                    case "dtype" -> dtypeName = readDtype(file, where, p, problems);
                    case "shape" -> shape = readIntegers(file, where, "shape", p, problems);
                    case "data_offsets" -> offsets = readIntegers(file, where, "data_offsets", p, problems);
                    default -> skipValue(file, p);
                }
                bad |= field.equals("dtype") && dtypeName == null || field.equals("shape") && shape == null
                        || field.equals("data_offsets") && offsets == null;
            }
        } else if (p.currentToken() == JsonToken.START_ARRAY) {
            int fields = 0;
            while (p.nextToken() != JsonToken.END_ARRAY) {
                switch (fields++) {
                    case 0 -> bad |= (dtypeName = readDtype(file, where, p, problems)) == null;
                    case 1 -> bad |= (shape = readIntegers(file, where, "shape", p, problems)) == null;
                    case 2 -> bad |= (offsets = readIntegers(file, where, "data_offsets", p, problems)) == null;
                    default -> skipValue(file, p);
                }
            }
            if (fields > 3) {
                problems.add(where + " is an array of " + fields + " values; expected [dtype, shape, data_offsets]");
                return null;
            }
        } else {
            problems.add(where + " is not an object with dtype, shape and data_offsets");
            skipValue(file, p);
            return null;
        }
        if (bad) {
            return null;
        }
        if (dtypeName == null || shape == null || offsets == null) {
            problems.add(where + " lacks " + (dtypeName == null ? "dtype" : shape == null ? "shape" : "data_offsets"));
            return null;
        }
        Dtype dtype = Dtype.fromSafetensors(dtypeName).orElse(null);
        if (dtype == null) {
            problems.add(where + " has dtype " + dtypeName + (KNOWN_UNSUPPORTED.contains(dtypeName)
                    ? ", which Amalgam cannot merge yet (supported: F32, F16, BF16; F8_E4M3 and F8_E5M2 with their "
                    + "scales; U8 as MXFP4 blocks)"
                    : ", which is not a safetensors dtype"));
            return null;
        }
        if (offsets.length != 2) {
            problems.add(where + " has " + offsets.length + " data_offsets; expected [begin, end]");
            return null;
        }
        long begin = offsets[0];
        long end = offsets[1];
        if (end < begin) {
            problems.add(where + " has data_offsets [" + begin + ", " + end + "] with end before begin");
            return null;
        }
        long expectedBytes;
        try {
            expectedBytes = Math.multiplyExact(TensorEntry.elementCount(shape), dtype.byteSize());
        } catch (ArithmeticException e) {
            problems.add(where + " has a shape whose size overflows");
            return null;
        }
        if (end - begin != expectedBytes) {
            problems.add(where + " occupies " + (end - begin) + " bytes but shape " + java.util.Arrays.toString(shape)
                    + " of " + dtypeName + " needs " + expectedBytes);
            return null;
        }
        return new TensorEntry(name, dtype, shape, begin, end);
    }

    private static String readDtype(String file, String where, JsonParser p, Problems problems) throws IOException {
        if (p.currentToken() != JsonToken.VALUE_STRING) {
            problems.add(where + " has a dtype that is not a string");
            skipValue(file, p);
            return null;
        }
        String text = p.getText();
        requireWholeCharacters(file, text);
        return text;
    }

    /** A list of non-negative integers that fit a signed 64-bit value (stricter than usize, on purpose). */
    private static long[] readIntegers(String file, String where, String field, JsonParser p, Problems problems)
            throws IOException {
        if (p.currentToken() != JsonToken.START_ARRAY) {
            problems.add(where + " has " + field + " that is not a list of non-negative integers");
            skipValue(file, p);
            return null;
        }
        long[] values = new long[4];
        int n = 0;
        boolean ok = true;
        JsonToken t;
        while ((t = p.nextToken()) != JsonToken.END_ARRAY) {
            if (t == JsonToken.VALUE_NUMBER_INT && p.getNumberType() != JsonParser.NumberType.BIG_INTEGER
                    && p.getLongValue() >= 0) {
                if (n == values.length) {
                    values = java.util.Arrays.copyOf(values, n * 2);
                }
                values[n++] = p.getLongValue();
            } else {
                ok = false;
                skipValue(file, p);
            }
        }
        if (!ok) {
            problems.add(where + " has " + field + " that is not a list of non-negative integers below 2^63");
            return null;
        }
        return java.util.Arrays.copyOf(values, n);
    }

    /** The complete header block (length prefix, JSON padded with spaces to a multiple of 8). */
    public static byte[] encode(List<TensorEntry> tensors, Map<String, String> metadata) {
        ObjectNode root = JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = root.putObject("__metadata__");
            metadata.forEach(meta::put);
        }
        for (TensorEntry t : tensors) {
            ObjectNode node = root.putObject(t.name());
            node.put("dtype", t.dtype().safetensorsName());
            ArrayNode shape = node.putArray("shape");
            for (long d : t.shape()) {
                shape.add(d);
            }
            node.putArray("data_offsets").add(t.begin()).add(t.end());
        }
        byte[] json;
        try {
            json = JSON.writeValueAsBytes(root);
        } catch (Exception e) {
            throw new IllegalStateException("cannot encode a safetensors header", e);
        }
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer out = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(padded);
        out.put(json);
        while (out.hasRemaining()) {
            out.put((byte) ' ');
        }
        return out.array();
    }

    private static FormatException invalid(String file, String problem) {
        return new FormatException(List.of(file + ": " + problem));
    }
}
