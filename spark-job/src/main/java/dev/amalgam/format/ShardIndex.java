package dev.amalgam.format;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Map;

/** {@code model.safetensors.index.json}: total tensor bytes and which shard holds each tensor. */
public final class ShardIndex {
    private ShardIndex() {
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
