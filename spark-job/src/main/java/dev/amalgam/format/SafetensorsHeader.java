package dev.amalgam.format;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.amalgam.kernels.Dtype;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
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

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

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

    /** Parses and validates the JSON header of a file of {@code fileLength} bytes. */
    public static Parsed parse(String file, byte[] headerJson, long fileLength) {
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(headerJson)).toString();
        } catch (CharacterCodingException e) {
            throw invalid(file, "the header is not valid UTF-8");
        }
        JsonNode root;
        try {
            root = JSON.readTree(text);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw invalid(file, "the header is not valid JSON: " + e.getOriginalMessage());
        }
        if (root == null || !root.isObject()) {
            throw invalid(file, "the header is not a JSON object");
        }
        long dataStart = 8L + headerJson.length;
        long dataLength = fileLength - dataStart;
        List<String> problems = new ArrayList<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        List<TensorEntry> tensors = new ArrayList<>();
        Iterator<Map.Entry<String, JsonNode>> fields = root.fields();
        while (fields.hasNext()) {
            Map.Entry<String, JsonNode> field = fields.next();
            String name = field.getKey();
            JsonNode value = field.getValue();
            if (name.equals("__metadata__")) {
                readMetadata(file, value, metadata, problems);
                continue;
            }
            TensorEntry entry = readEntry(file, name, value, problems);
            if (entry != null) {
                tensors.add(entry);
            }
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
        if (!problems.isEmpty()) {
            throw new FormatException(problems);
        }
        return new Parsed(List.copyOf(tensors), Map.copyOf(metadata), dataStart);
    }

    private static void readMetadata(String file, JsonNode value, Map<String, String> metadata, List<String> problems) {
        if (!value.isObject()) {
            problems.add(file + ": __metadata__ must be an object of strings");
            return;
        }
        value.fields().forEachRemaining(e -> {
            if (!e.getValue().isTextual()) {
                problems.add(file + ": __metadata__ entry '" + e.getKey() + "' is not a string");
            } else {
                metadata.put(e.getKey(), e.getValue().asText());
            }
        });
    }

    private static TensorEntry readEntry(String file, String name, JsonNode value, List<String> problems) {
        String where = file + ": tensor '" + name + "'";
        if (!value.isObject()) {
            problems.add(where + " is not an object with dtype, shape and data_offsets");
            return null;
        }
        JsonNode dtypeNode = value.get("dtype");
        JsonNode shapeNode = value.get("shape");
        JsonNode offsetsNode = value.get("data_offsets");
        if (dtypeNode == null || shapeNode == null || offsetsNode == null) {
            problems.add(where + " lacks " + (dtypeNode == null ? "dtype" : shapeNode == null ? "shape" : "data_offsets"));
            return null;
        }
        String dtypeName = dtypeNode.asText();
        Dtype dtype = Dtype.fromSafetensors(dtypeName).orElse(null);
        if (dtype == null) {
            problems.add(where + " has dtype " + dtypeName + (KNOWN_UNSUPPORTED.contains(dtypeName)
                    ? ", which Amalgam cannot merge yet (supported: F32, F16, BF16; F8_E4M3 and F8_E5M2 with their "
                    + "scales; U8 as MXFP4 blocks)"
                    : ", which is not a safetensors dtype"));
            return null;
        }
        if (!shapeNode.isArray() || !allNonNegativeIntegers((ArrayNode) shapeNode)) {
            problems.add(where + " has shape " + shapeNode + "; expected a list of non-negative integers");
            return null;
        }
        if (!offsetsNode.isArray() || offsetsNode.size() != 2 || !allNonNegativeIntegers((ArrayNode) offsetsNode)) {
            problems.add(where + " has data_offsets " + offsetsNode + "; expected [begin, end]");
            return null;
        }
        long[] shape = new long[shapeNode.size()];
        for (int i = 0; i < shape.length; i++) {
            shape[i] = shapeNode.get(i).asLong();
        }
        long begin = offsetsNode.get(0).asLong();
        long end = offsetsNode.get(1).asLong();
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
            problems.add(where + " occupies " + (end - begin) + " bytes but shape " + shapeNode + " of "
                    + dtypeName + " needs " + expectedBytes);
            return null;
        }
        return new TensorEntry(name, dtype, shape, begin, end);
    }

    private static boolean allNonNegativeIntegers(ArrayNode array) {
        for (JsonNode n : array) {
            if (!n.canConvertToLong() || !n.isIntegralNumber() || n.asLong() < 0) {
                return false;
            }
        }
        return true;
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
