package dev.amalgam.merge;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.amalgam.AmalgamException;
import dev.amalgam.format.CheckpointWriter;
import dev.amalgam.format.StoredTensor;
import dev.amalgam.job.MergeJob;
import dev.amalgam.job.MergeRequest;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.sample.SampleCheckpoints;
import dev.amalgam.testing.TestSpark;
import dev.amalgam.testing.Tensors;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Vocabularies: {@code tokenizer_source} (union, base, a model), the {@code tokenizer:} section and
 * {@code chat_template}. Each model's embedding and head are remapped in the test, whole, by the
 * rule the README states (own row; else the configured source; else the one model that has the
 * token, zeros where none has it, the base's row where it has it, the average of the others';
 * padding rows the mean), written as checkpoints, and merged without any tokenizer setting: the
 * merge with the setting must give the same bytes.
 */
class VocabularyTest {
    private static final int HIDDEN = 16;
    private static final String[] EMBEDDINGS = {"model.embed_tokens.weight", "lm_head.weight"};

    @TempDir
    Path temp;

    /** base: 40 sample tokens; one: those and x0..x3; two: the words reversed but french, then x2 and y0. */
    private record Inputs(String base, String one, String two, Map<String, List<String>> vocab) {
    }

    private Inputs inputs(Dtype dtype) throws Exception {
        Configuration hadoop = new Configuration();
        List<String> a = new ArrayList<>(List.of("<s>", "</s>", "<unk>"));
        a.addAll(SampleCheckpoints_words(37));
        List<String> one = new ArrayList<>(a);
        one.addAll(List.of("x0", "x1", "x2", "x3"));
        List<String> words = new ArrayList<>(a.subList(3, a.size()));
        Collections.reverse(words);
        words.remove("french"); // in the base and one only: its default is the base's row, not an average
        List<String> two = new ArrayList<>(List.of("<s>", "</s>", "<unk>"));
        two.addAll(words);
        two.addAll(List.of("x2", "y0"));
        Map<String, List<String>> vocab = new LinkedHashMap<>();
        String[] names = {"b", "o", "t"};
        List<List<String>> lists = List.of(a, one, two);
        for (int i = 0; i < 3; i++) {
            String root = temp.resolve(dtype.name()).resolve(names[i]).toString();
            SampleCheckpoints.write(hadoop, root, new SampleCheckpoints.Shape(2, HIDDEN, 24, lists.get(i).size()), dtype,
                    0, 5 + i, 1 << 20);
            SampleCheckpoints.writeTokenizer(hadoop, root + "/base", lists.get(i));
            vocab.put(root + "/base", lists.get(i));
        }
        List<String> dirs = new ArrayList<>(vocab.keySet());
        return new Inputs(dirs.get(0), dirs.get(1), dirs.get(2), vocab);
    }

    private static List<String> SampleCheckpoints_words(int n) {
        List<String> out = new ArrayList<>();
        for (String w : List.of("the", "a", "of", "and", "to", "is", "in", "solve", "equation", "integral", "prove",
                "number", "sum", "math", "algebra", "function", "code", "python", "java", "class", "write", "bug",
                "compile", "loop", "story", "poem", "essay", "chat", "hello", "friend", "tell", "me", "about",
                "history", "science", "translate", "french")) {
            if (out.size() < n) {
                out.add(w);
            }
        }
        return out;
    }

    private String merge(Inputs in, String name, String tokenizerYaml, int chunk) {
        String config = write(name + ".yml", "merge_method: task_arithmetic\nbase_model: " + in.base + "\nmodels:\n"
                + "  - model: " + in.one + "\n    parameters: {weight: 0.7}\n"
                + "  - model: " + in.two + "\n    parameters: {weight: -0.4}\n" + tokenizerYaml);
        String out = temp.resolve(name).toString();
        new MergeJob(TestSpark.context()).run(MergeRequest.of(config, out).withChunkElements(chunk).withPartitions(3));
        return out;
    }

    private String write(String name, String text) {
        try {
            Path p = temp.resolve(name);
            Files.writeString(p, text);
            return p.toString();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    /** A token's row for one model: the rule, whole, on the decoded tensors. */
    private static float[] rowFor(String token, int model, List<String> dirs, Map<String, List<String>> vocab,
                                  Map<String, float[]> tensors, Map<String, Integer> forcedFrom, Dtype dtype) {
        List<String> own = vocab.get(dirs.get(model));
        if (own.contains(token) && !forcedFrom.containsKey(token)) {
            return row(tensors.get(dirs.get(model)), own.indexOf(token));
        }
        if (forcedFrom.containsKey(token)) {
            int k = forcedFrom.get(token);
            return k < 0 ? new float[HIDDEN] : row(tensors.get(dirs.get(k)), vocab.get(dirs.get(k)).indexOf(token));
        }
        List<Integer> present = new ArrayList<>();
        for (int k = 0; k < dirs.size(); k++) {
            if (vocab.get(dirs.get(k)).contains(token)) {
                present.add(k);
            }
        }
        if (present.size() == 1) {
            int k = present.get(0);
            return row(tensors.get(dirs.get(k)), vocab.get(dirs.get(k)).indexOf(token));
        }
        if (present.isEmpty()) {
            return new float[HIDDEN];
        }
        if (present.contains(0)) {
            return row(tensors.get(dirs.get(0)), vocab.get(dirs.get(0)).indexOf(token));
        }
        float[] sum = new float[HIDDEN];
        for (int k : present) {
            float[] r = row(tensors.get(dirs.get(k)), vocab.get(dirs.get(k)).indexOf(token));
            for (int c = 0; c < HIDDEN; c++) {
                sum[c] += r[c];
            }
        }
        for (int c = 0; c < HIDDEN; c++) {
            sum[c] /= present.size();
        }
        return Tensors.decode(Tensors.encode(sum, dtype), dtype);
    }

    private static float[] row(float[] tensor, int r) {
        float[] out = new float[HIDDEN];
        System.arraycopy(tensor, r * HIDDEN, out, 0, HIDDEN);
        return out;
    }

    /**
     * Writes each input with its embeddings remapped to {@code outVocab} (padded to {@code rows})
     * under {@code name}; returns the new directories (base, one, two).
     */
    private List<String> materialize(Inputs in, String name, List<String> outVocab, int rows,
                                     Map<String, Integer> forcedFrom, Dtype dtype) throws Exception {
        List<String> dirs = List.of(in.base, in.one, in.two);
        List<String> written = new ArrayList<>();
        for (int m = 0; m < 3; m++) {
            Map<String, byte[]> bytes = new HashMap<>();
            List<CheckpointWriter.Spec> specs = new ArrayList<>();
            for (StoredTensor t : Tensors.open(dirs.get(m)).tensors()) {
                if (List.of(EMBEDDINGS).contains(t.name())) {
                    Map<String, float[]> whole = new HashMap<>();
                    for (String d : dirs) {
                        whole.put(d, Tensors.floats(Tensors.open(d).byName().get(t.name())));
                    }
                    float[] out = new float[rows * HIDDEN];
                    double[] sum = new double[HIDDEN];
                    for (int id = 0; id < outVocab.size(); id++) {
                        float[] r = rowFor(outVocab.get(id), m, dirs, in.vocab, whole, forcedFrom, dtype);
                        System.arraycopy(r, 0, out, id * HIDDEN, HIDDEN);
                        for (int c = 0; c < HIDDEN; c++) {
                            sum[c] += r[c];
                        }
                    }
                    for (int id = outVocab.size(); id < rows; id++) {
                        for (int c = 0; c < HIDDEN; c++) {
                            out[id * HIDDEN + c] = (float) (sum[c] / outVocab.size());
                        }
                    }
                    bytes.put(t.name(), Tensors.encode(out, dtype));
                    specs.add(new CheckpointWriter.Spec(t.name(), dtype, new long[]{rows, HIDDEN}));
                } else {
                    bytes.put(t.name(), Tensors.bytes(t));
                    specs.add(new CheckpointWriter.Spec(t.name(), t.dtype(), t.shape()));
                }
            }
            String dir = temp.resolve(name + "-" + m).toString();
            CheckpointWriter.write(new Configuration(), dir, specs, 1 << 20,
                    spec -> ByteBuffer.wrap(bytes.get(spec.name())).order(ByteOrder.LITTLE_ENDIAN));
            Files.copy(Path.of(dirs.get(m), "config.json"), Path.of(dir, "config.json"));
            written.add(dir);
        }
        return written;
    }

    private String mergeMaterialized(List<String> dirs, String name) {
        return merge(new Inputs(dirs.get(0), dirs.get(1), dirs.get(2), Map.of()), name, "", 1 << 20);
    }

    private static List<String> union(Inputs in) {
        List<String> out = new ArrayList<>(in.vocab.get(in.base));
        for (String d : List.of(in.one, in.two)) {
            for (String t : in.vocab.get(d)) {
                if (!out.contains(t)) {
                    out.add(t);
                }
            }
        }
        return out;
    }

    @ParameterizedTest
    @EnumSource(value = Dtype.class, names = {"BF16", "F16", "F32"})
    void unionRemapsEveryModelsRowsToTheBaseVocabularyAndTheTokensOthersAdd(Dtype dtype) throws Exception {
        Inputs in = inputs(dtype);
        String out = merge(in, "union", "tokenizer_source: union\n", 1 << 20);
        List<String> vocab = union(in);
        assertEquals(45, vocab.size());
        String expected = mergeMaterialized(materialize(in, "union-ref", vocab, 45, Map.of(), dtype), "union-ref-out");
        assertEquals(Tensors.shardDigests(expected), Tensors.shardDigests(out));
        // Rows cut anywhere by chunks give the same bytes.
        assertEquals(Tensors.shardDigests(out), Tensors.shardDigests(merge(in, "union-cut", "tokenizer_source: union\n", 7)));

        JsonNode config = new ObjectMapper().readTree(Path.of(out, "config.json").toFile());
        assertEquals(45, config.get("vocab_size").asInt());
        JsonNode report = new ObjectMapper().readTree(Path.of(out, "amalgam-report.json").toFile()).get("vocabulary");
        assertEquals("union", report.get("source").asText());
        assertEquals(5, report.get("added_tokens").asInt());
        assertEquals(45, report.get("embedding_rows").asInt());
        assertEquals(3, report.get("remapped_models").asInt());
        try (HuggingFaceTokenizer tokenizer = HuggingFaceTokenizer.newInstance(Path.of(out, "tokenizer.json"))) {
            assertArrayEquals(new long[]{3, 40, 42, 44}, tokenizer.encode("the x0 x2 y0", false, false).getIds());
        }
    }

    @Test
    void paddingRowsAreTheMeanOfTheRemappedRows() throws Exception {
        Inputs in = inputs(Dtype.BF16);
        String out = merge(in, "padded", "tokenizer:\n  source: union\n  pad_to_multiple_of: 16\n", 1 << 20);
        String expected = mergeMaterialized(materialize(in, "padded-ref", union(in), 48, Map.of(), Dtype.BF16),
                "padded-ref-out");
        assertEquals(Tensors.shardDigests(expected), Tensors.shardDigests(out));
        assertArrayEquals(new long[]{48, HIDDEN}, Tensors.open(out).byName().get("lm_head.weight").shape());
    }

    @Test
    void configuredTokensTakeTheirRowsFromWhereTheConfigSays() throws Exception {
        Inputs in = inputs(Dtype.F32);
        String yaml = "tokenizer:\n  source: base\n  tokens:\n"
                + "    the:\n      source: " + in.two + "\n      force: true\n"
                + "    z_new:\n      source: {kind: zero}\n"
                + "    x1:\n      source: {kind: model_token, model: " + in.one + ", token: x0}\n";
        String out = merge(in, "tokens", yaml, 1 << 20);
        // The base's 40 tokens, then z_new and x1 added in config order; 'the' forced to two's row everywhere.
        List<String> vocab = new ArrayList<>(in.vocab.get(in.base));
        vocab.add("z_new");
        vocab.add("x1");
        Map<String, Integer> forced = Map.of("the", 2, "z_new", -1);
        List<String> materialized = materialize(in, "tokens-ref", vocab, 42, forced, Dtype.F32);
        // x1 comes from one's row of x0 for the models that lack it (base and two); one keeps its own x1.
        for (int m : new int[]{0, 2}) {
            overwriteRow(materialized.get(m), 41, in.one, in.vocab.get(in.one).indexOf("x0"));
        }
        assertEquals(Tensors.shardDigests(mergeMaterialized(materialized, "tokens-ref-out")), Tensors.shardDigests(out));
    }

    private static void overwriteRow(String dir, int row, String from, int fromRow) throws Exception {
        for (String name : EMBEDDINGS) {
            StoredTensor target = Tensors.open(dir).byName().get(name);
            float[] source = Tensors.floats(Tensors.open(from).byName().get(name));
            byte[] bytes = Tensors.encode(row(source, fromRow), target.dtype());
            String file = target.file().startsWith("file:") ? Path.of(java.net.URI.create(target.file())).toString()
                    : target.file();
            try (java.io.RandomAccessFile raf = new java.io.RandomAccessFile(file, "rw")) {
                raf.seek(target.offset() + (long) row * HIDDEN * target.dtype().byteSize());
                raf.write(bytes);
            }
        }
    }

    @Test
    void aModelsVocabularyOrdersTheOthersRows() throws Exception {
        Inputs in = inputs(Dtype.BF16);
        String out = merge(in, "by-two", "tokenizer_source: " + in.two + "\n", 1 << 20);
        String expected = mergeMaterialized(materialize(in, "by-two-ref", in.vocab.get(in.two), 41, Map.of(),
                Dtype.BF16), "by-two-ref-out");
        assertEquals(Tensors.shardDigests(expected), Tensors.shardDigests(out));
        assertEquals(Files.readString(Path.of(in.two, "tokenizer.json")), Files.readString(Path.of(out, "tokenizer.json")));
    }

    @Test
    void differentVocabulariesWithoutATokenizerSettingAreRefusedNamingTheSetting() throws Exception {
        Inputs in = inputs(Dtype.BF16);
        AmalgamException e = assertThrows(AmalgamException.class, () -> merge(in, "refused", "", 1 << 20));
        assertEquals(AmalgamException.Kind.CONFIG, e.kind());
        assertThat(e.getMessage()).contains("vocabularies differ").contains("base_model (" + in.base + "): 40")
                .contains("models[0] (" + in.one + "): 44").contains("tokenizer_source: union");
    }

    @Test
    void tokenSourcesThatAreNotMergedModelsOrLackTheTokenAreRefused() throws Exception {
        Inputs in = inputs(Dtype.BF16);
        AmalgamException e = assertThrows(AmalgamException.class, () -> merge(in, "bad-tokens", "tokenizer:\n"
                + "  tokens:\n    x9: {source: /nowhere}\n    y0: {source: " + in.one + "}\n"
                + "    x0: {source: {kind: model_token, model: " + in.two + ", token_id: 99}}\n", 1 << 20));
        assertThat(e.getMessage()).contains("tokenizer.tokens['x9'].source: /nowhere is not one of the merged models")
                .contains("tokenizer.tokens['y0'].source: models[0] (" + in.one + ") has no token 'y0'")
                .contains("tokenizer.tokens['x0'].source: models[1] (" + in.two + ") has no row 99 (it has 41)");
        assertThat(temp.resolve("bad-tokens")).doesNotExist();
    }

    @Test
    void aModelWithoutTokenizerJsonIsRefusedWhenVocabulariesMustBeRemapped() throws Exception {
        Inputs in = inputs(Dtype.BF16);
        Files.delete(Path.of(in.two, "tokenizer.json"));
        AmalgamException e = assertThrows(AmalgamException.class,
                () -> merge(in, "no-tokenizer", "tokenizer_source: union\n", 1 << 20));
        assertEquals(AmalgamException.Kind.INPUT, e.kind());
        assertThat(e.getMessage()).contains(in.two + "/tokenizer.json: not found");
    }

    @Test
    void chatTemplatesAreWrittenIntoTheTokenizerConfig() throws Exception {
        Inputs in = inputs(Dtype.BF16);
        String out = merge(in, "chatml", "tokenizer_source: union\nchat_template: chatml\n", 1 << 20);
        JsonNode config = new ObjectMapper().readTree(Path.of(out, "tokenizer_config.json").toFile());
        assertThat(config.get("chat_template").asText()).startsWith("{% for message in messages %}")
                .contains("<|im_start|>");
        String jinja = "{% for m in messages %}{{ m['content'] }}{% endfor %}";
        String custom = merge(in, "custom", "tokenizer_source: union\nchat_template: \"" + jinja + "\"\n", 1 << 20);
        assertEquals(jinja, new ObjectMapper().readTree(Path.of(custom, "tokenizer_config.json").toFile())
                .get("chat_template").asText());
        AmalgamException e = assertThrows(AmalgamException.class,
                () -> merge(in, "bad-template", "tokenizer_source: union\nchat_template: chatmlx\n", 1 << 20));
        assertThat(e.getMessage()).contains("chat_template 'chatmlx'").contains("chatml");
    }
}
