package dev.amalgam.format;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Map;

/** {@code model.safetensors.index.json}: total tensor bytes and which shard holds each tensor. */
public final class ShardIndex {
    private ShardIndex() {
    }

    /**
     * Why a weight_map value cannot name a shard, or null when it can: a shard is a file inside the
     * model directory, so the value must be a non-empty relative path, without a scheme, a drive
     * or root, without {@code .} or {@code ..} segments, and without control characters. Anything
     * else would open a file outside the model (or on another file system).
     */
    public static String checkEntry(JsonNode value) {
        if (value == null || !value.isTextual()) {
            return "the shard must be a file name string, got " + (value == null ? "nothing" : value.getNodeType()
                    .toString().toLowerCase(java.util.Locale.ROOT)) + "; fix the index";
        }
        String shard = value.asText();
        String fix = "; a shard is named by a file name inside the model directory (model-00001-of-00002.safetensors)";
        if (shard.isEmpty()) {
            return "the shard name is empty" + fix;
        }
        if (shard.chars().anyMatch(c -> c < 0x20 || c == 0x7f)) {
            return "the shard name holds control characters" + fix;
        }
        if (shard.startsWith("/") || shard.contains("\\") || shard.contains(":")) {
            return "'" + shard + "' is an absolute path, a URI or has a drive or scheme" + fix;
        }
        for (String segment : shard.split("/", -1)) {
            if (segment.isEmpty() || segment.equals(".") || segment.equals("..")) {
                return "'" + shard + "' has an empty, '.' or '..' segment, which could lead outside the model" + fix;
            }
        }
        return null;
    }

    public static byte[] encode(Map<String, String> weightMap, long totalSize) {
        ObjectMapper json = new ObjectMapper();
        ObjectNode index = json.createObjectNode();
        index.putObject("metadata").put("total_size", totalSize);
        ObjectNode map = index.putObject("weight_map");
        weightMap.forEach(map::put);
        try {
            return json.writerWithDefaultPrettyPrinter().writeValueAsBytes(index);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
