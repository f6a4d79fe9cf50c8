package dev.amalgam.format;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.List;
import java.util.Map;

/**
 * A model's tokenizer ({@code tokenizer.json}, run by Hugging Face's tokenizers library) as the
 * widely used tool applies it to router prompts: the beginning-of-sequence token of
 * {@code tokenizer_config.json} written before the prompt, no other special tokens added.
 */
public final class PromptTokenizer implements AutoCloseable {
    private final HuggingFaceTokenizer tokenizer;
    private final String bos;

    private PromptTokenizer(HuggingFaceTokenizer tokenizer, String bos) {
        this.tokenizer = tokenizer;
        this.bos = bos;
    }

    /** The tokenizer in {@code directory}; a missing or unreadable tokenizer.json is a problem naming it. */
    public static PromptTokenizer open(Configuration hadoop, String directory) {
        Path file = new Path(directory, "tokenizer.json");
        try {
            FileSystem fs = file.getFileSystem(hadoop);
            if (!fs.exists(file)) {
                throw new FormatException(List.of(file + ": not found; the prompts are tokenized with the base model's "
                        + "tokenizer, so its directory must hold tokenizer.json (or use gate_mode: random)"));
            }
            HuggingFaceTokenizer t;
            try (InputStream in = fs.open(file)) {
                t = HuggingFaceTokenizer.newInstance(in, Map.of("addSpecialTokens", "false", "truncation", "false",
                        "padding", "false"));
            } catch (RuntimeException e) {
                throw new FormatException(List.of(file + ": is not a tokenizer the tokenizers library reads: "
                        + e.getMessage()));
            }
            return new PromptTokenizer(t, bosToken(fs, new Path(directory, "tokenizer_config.json")));
        } catch (IOException e) {
            throw new FormatException(List.of(file + ": cannot be read: " + e.getMessage()));
        }
    }

    private static String bosToken(FileSystem fs, Path config) throws IOException {
        if (!fs.exists(config)) {
            return "";
        }
        JsonNode root;
        try (InputStream in = fs.open(config)) {
            root = new ObjectMapper().readTree(in);
        } catch (IOException e) {
            throw new FormatException(List.of(config + ": is not valid JSON: " + e.getMessage()));
        }
        JsonNode bos = root == null ? null : root.get("bos_token");
        if (bos == null || bos.isNull()) {
            return "";
        }
        return bos.isObject() ? bos.path("content").asText("") : bos.asText("");
    }

    /** The token ids of one prompt, after the beginning-of-sequence token. */
    public long[] ids(String prompt) {
        Encoding e = tokenizer.encode(bos + prompt, false, false);
        return e.getIds();
    }

    /**
     * Null when the tokenizers library reads {@code tokenizerJson} and encodes each of {@code added}
     * (tokenizer.json entries) alone as its id; else what went wrong, as a sentence's end.
     */
    public static String check(byte[] tokenizerJson, List<ObjectNode> added) {
        try (HuggingFaceTokenizer t = HuggingFaceTokenizer.newInstance(new ByteArrayInputStream(tokenizerJson),
                Map.of("addSpecialTokens", "false", "truncation", "false", "padding", "false"))) {
            for (ObjectNode entry : added) {
                long[] ids = t.encode(entry.get("content").asText(), false, false).getIds();
                if (ids.length != 1 || ids[0] != entry.get("id").asLong()) {
                    return "encodes the added token '" + entry.get("content").asText() + "' as "
                            + java.util.Arrays.toString(ids) + ", not as its id " + entry.get("id").asLong();
                }
            }
            return null;
        } catch (IOException | RuntimeException e) {
            return "is not read by the tokenizers library: " + e.getMessage();
        }
    }

    @Override
    public void close() {
        tokenizer.close();
    }
}
