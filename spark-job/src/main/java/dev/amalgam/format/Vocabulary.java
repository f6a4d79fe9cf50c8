package dev.amalgam.format;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A model's vocabulary as {@code transformers} sees it ({@code get_vocab()}): the tokenizer
 * model's tokens (a map for BPE, WordPiece and WordLevel, a list for Unigram) and the added tokens,
 * each with its id, minus ids at or past the model's {@code vocab_size} (tokens the embeddings have
 * no row for).
 *
 * @param directory where tokenizer.json was read
 * @param ids       token to id, in id order
 * @param added     the added tokens' entries of tokenizer.json, by content
 * @param tokenizer tokenizer.json as read
 * @param rows      the embedding's rows ({@code vocab_size} of config.json, else one past the highest id)
 */
public record Vocabulary(String directory, Map<String, Integer> ids, Map<String, ObjectNode> added, JsonNode tokenizer,
                         int rows) {

    /** The vocabulary in {@code directory}; {@code vocabSize} from config.json, or null. */
    public static Vocabulary read(Configuration hadoop, String directory, Integer vocabSize) {
        Path file = new Path(directory, "tokenizer.json");
        JsonNode root;
        try {
            FileSystem fs = file.getFileSystem(hadoop);
            if (!fs.exists(file)) {
                throw new FormatException(List.of(file + ": not found; a merge that remaps vocabularies reads every "
                        + "model's tokenizer.json (a fast tokenizer)"));
            }
            try (InputStream in = fs.open(file)) {
                root = new ObjectMapper().readTree(in);
            }
        } catch (IOException e) {
            throw new FormatException(List.of(file + ": cannot be read as JSON: " + e.getMessage()));
        }
        JsonNode model = root == null ? null : root.get("model");
        JsonNode vocab = model == null ? null : model.get("vocab");
        if (vocab == null || !(vocab.isObject() || vocab.isArray())) {
            throw new FormatException(List.of(file + ": has no model.vocab; a merge that remaps vocabularies needs a "
                    + "tokenizer.json with its vocabulary (BPE, WordPiece, WordLevel or Unigram)"));
        }
        TreeMap<Integer, String> byId = new TreeMap<>();
        if (vocab.isObject()) {
            Iterator<Map.Entry<String, JsonNode>> it = vocab.fields();
            while (it.hasNext()) {
                Map.Entry<String, JsonNode> e = it.next();
                byId.put(e.getValue().asInt(), e.getKey());
            }
        } else {
            for (int i = 0; i < vocab.size(); i++) {
                byId.put(i, vocab.get(i).get(0).asText());
            }
        }
        Map<String, ObjectNode> added = new LinkedHashMap<>();
        for (JsonNode a : root.path("added_tokens")) {
            byId.put(a.path("id").asInt(), a.path("content").asText());
            added.put(a.path("content").asText(), (ObjectNode) a);
        }
        int rows = vocabSize != null ? vocabSize : byId.isEmpty() ? 0 : byId.lastKey() + 1;
        Map<String, Integer> ids = new LinkedHashMap<>();
        byId.forEach((id, token) -> {
            if (id < rows) {
                ids.putIfAbsent(token, id);
            }
        });
        added.keySet().removeIf(t -> !ids.containsKey(t));
        return new Vocabulary(directory, Collections.unmodifiableMap(ids), added, root, rows);
    }

    /** The token's id, or null when the model has no row for it. */
    public Integer id(String token) {
        return ids.get(token);
    }

    public List<String> tokens() {
        return new ArrayList<>(ids.keySet());
    }
}
