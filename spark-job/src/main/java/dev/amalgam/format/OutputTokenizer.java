package dev.amalgam.format;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;


/**
 * The output's tokenizer: the files of {@code sourceDirectory} with {@code added} tokens appended
 * (to tokenizer.json's {@code added_tokens}, and to tokenizer_config.json's
 * {@code added_tokens_decoder} where it has one) and {@code chatTemplate} set in
 * tokenizer_config.json, as {@code transformers} saves a tokenizer after {@code add_tokens}.
 *
 * @param added        the new tokens' tokenizer.json entries (with their ids), in id order
 * @param chatTemplate the Jinja template text, or null to keep the source's
 */
public record OutputTokenizer(String sourceDirectory, List<ObjectNode> added, String chatTemplate) {
    private static final ObjectMapper JSON = new ObjectMapper();
    public static final List<String> BUILT_IN_TEMPLATES = List.of("alpaca", "chatml", "llama3", "mistral");

    /** Whether the source's files are written unchanged. */
    public boolean unchanged() {
        return added.isEmpty() && chatTemplate == null;
    }

    /** A new non-special token's entry, as {@code add_tokens} writes it. */
    public static ObjectNode newToken(int id, String content) {
        return addedToken(id, content, false);
    }

    /** An {@code added_tokens} entry of tokenizer.json; special tokens are not normalized. */
    public static ObjectNode addedToken(int id, String content, boolean special) {
        ObjectNode t = JSON.createObjectNode();
        t.put("id", id);
        t.put("content", content);
        t.put("single_word", false);
        t.put("lstrip", false);
        t.put("rstrip", false);
        t.put("normalized", !special);
        t.put("special", special);
        return t;
    }

    /** tokenizer.json with the added tokens. */
    public byte[] tokenizerJson(JsonNode source) {
        ObjectNode root = source.deepCopy();
        ArrayNode list = root.has("added_tokens") && root.get("added_tokens").isArray()
                ? (ArrayNode) root.get("added_tokens") : root.putArray("added_tokens");
        added.forEach(list::add);
        return write(root);
    }

    /** tokenizer_config.json ({@code source} may be null) with the added tokens and the chat template. */
    public byte[] tokenizerConfig(JsonNode source) {
        ObjectNode root = source instanceof ObjectNode o ? o.deepCopy() : JSON.createObjectNode();
        if (root.get("added_tokens_decoder") instanceof ObjectNode decoder) {
            for (ObjectNode t : added) {
                ObjectNode entry = t.deepCopy();
                entry.remove("id");
                decoder.set(String.valueOf(t.get("id").asInt()), entry);
            }
        }
        if (chatTemplate != null) {
            root.put("chat_template", chatTemplate);
        }
        return write(root);
    }

    private static byte[] write(JsonNode node) {
        try {
            return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(node).getBytes(StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * A config's {@code chat_template}: a built-in template's name, or a Jinja template (at least 20
     * characters with a '{'); {@code auto} is resolved by the caller from the inputs' templates.
     * Returns null with a problem added when it is neither.
     */
    public static String template(String file, String value, List<String> problems) {
        if (BUILT_IN_TEMPLATES.contains(value)) {
            try (InputStream in = OutputTokenizer.class.getResourceAsStream("/chat-templates/" + value + ".jinja")) {
                return new String(in.readAllBytes(), StandardCharsets.UTF_8).strip();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        if (value.length() < 20 || !value.contains("{")) {
            problems.add(file + ": chat_template '" + value + "' is neither a built-in template ("
                    + String.join(", ", BUILT_IN_TEMPLATES) + ", or auto: the one most inputs have) nor a Jinja "
                    + "template");
            return null;
        }
        return value;
    }

    /** The chat template in a tokenizer_config.json, or null (a dict of templates gives its "default"). */
    public static String templateOf(JsonNode tokenizerConfig) {
        JsonNode t = tokenizerConfig == null ? null : tokenizerConfig.get("chat_template");
        if (t == null || t.isNull()) {
            return null;
        }
        if (t.isTextual()) {
            return t.asText().strip();
        }
        if (t.isArray()) {
            for (JsonNode entry : t) {
                if ("default".equals(entry.path("name").asText())) {
                    return entry.path("template").asText().strip();
                }
            }
        }
        return t.isObject() && t.has("default") ? t.get("default").asText().strip() : null;
    }

}
