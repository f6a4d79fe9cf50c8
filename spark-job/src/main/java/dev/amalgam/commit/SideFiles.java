package dev.amalgam.commit;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.amalgam.format.OutputTokenizer;
import dev.amalgam.kernels.Dtype;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/** The files beside the weights that make the output load as a model: config.json and the tokenizer. */
public final class SideFiles {
    public static final List<String> TOKENIZER_FILES = List.of("tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json", "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json",
            "chat_template.jinja");

    private SideFiles() {
    }

    /**
     * Copies config.json from {@code reference}, with torch_dtype set to the output dtype when
     * there is one, and without {@code quantization_config} when the inputs were dequantized (the
     * output holds plain floats, and a loader that saw the setting would look for scales), and
     * with the layer counts of the output when slices renumbered its layers ({@code layerOrigins}).
     */
    public static boolean writeConfig(OutputCommitter committer, Configuration hadoop, String reference, Dtype outDtype,
                                      boolean dequantized, int[] layerOrigins) throws IOException {
        return writeConfig(committer, hadoop, reference, outDtype, dequantized, layerOrigins, null);
    }

    /** As above, then {@code edits} (an assembled MoE's architecture) applied; null for none. */
    public static boolean writeConfig(OutputCommitter committer, Configuration hadoop, String reference, Dtype outDtype,
                                      boolean dequantized, int[] layerOrigins,
                                      java.util.function.Consumer<ObjectNode> edits) throws IOException {
        Path source = new Path(reference, "config.json");
        FileSystem fs = source.getFileSystem(hadoop);
        if (!fs.exists(source)) {
            return false;
        }
        ObjectMapper json = new ObjectMapper();
        JsonNode root;
        try (FSDataInputStream in = fs.open(source)) {
            root = json.readTree(in);
        }
        if (root instanceof ObjectNode object && outDtype != null) {
            object.put("torch_dtype", outDtype.torchName());
        }
        if (root instanceof ObjectNode object && dequantized) {
            object.remove("quantization_config");
        }
        if (root instanceof ObjectNode object && layerOrigins != null) {
            LayerCounts.patch(object, layerOrigins);
        }
        if (root instanceof ObjectNode object && edits != null) {
            edits.accept(object);
        }
        committer.writeFile("config.json", json.writerWithDefaultPrettyPrinter().writeValueAsBytes(root));
        return true;
    }

    /**
     * Writes the output tokenizer: its source's tokenizer files, with tokenizer.json and
     * tokenizer_config.json rewritten where it adds tokens or sets a chat template; returns their names.
     */
    public static List<String> writeTokenizer(OutputCommitter committer, Configuration hadoop, OutputTokenizer tokenizer)
            throws IOException {
        if (tokenizer.unchanged()) {
            return copyTokenizer(committer, tokenizer.sourceDirectory());
        }
        List<String> written = new ArrayList<>();
        for (String name : TOKENIZER_FILES) {
            Path path = new Path(tokenizer.sourceDirectory(), name);
            FileSystem fs = path.getFileSystem(hadoop);
            boolean exists = fs.exists(path);
            if (name.equals("tokenizer.json") && exists && !tokenizer.added().isEmpty()) {
                committer.writeFile(name, tokenizer.tokenizerJson(readJson(fs, path)));
            } else if (name.equals("tokenizer_config.json")) {
                committer.writeFile(name, tokenizer.tokenizerConfig(exists ? readJson(fs, path) : null));
            } else if (!exists || !committer.copyFrom(tokenizer.sourceDirectory(), name)) {
                continue;
            }
            written.add(name);
        }
        if (committer.copyFrom(tokenizer.sourceDirectory(), "generation_config.json")) {
            written.add("generation_config.json");
        }
        return written;
    }

    private static JsonNode readJson(FileSystem fs, Path path) throws IOException {
        try (FSDataInputStream in = fs.open(path)) {
            return new ObjectMapper().readTree(in);
        }
    }

    /** Copies the tokenizer files found in {@code source}; returns their names. */
    public static List<String> copyTokenizer(OutputCommitter committer, String source) throws IOException {
        List<String> copied = new ArrayList<>();
        for (String name : TOKENIZER_FILES) {
            if (committer.copyFrom(source, name)) {
                copied.add(name);
            }
        }
        if (committer.copyFrom(source, "generation_config.json")) {
            copied.add("generation_config.json");
        }
        return copied;
    }
}
