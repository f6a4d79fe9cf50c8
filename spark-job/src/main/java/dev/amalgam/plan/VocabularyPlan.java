package dev.amalgam.plan;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.amalgam.config.MergeConfig;
import dev.amalgam.config.TokenizerSpec;
import dev.amalgam.format.Checkpoint;
import dev.amalgam.format.CheckpointReader;
import dev.amalgam.format.FloatBytes;
import dev.amalgam.format.FormatException;
import dev.amalgam.format.OutputTokenizer;
import dev.amalgam.format.PromptTokenizer;
import dev.amalgam.format.RangeReader;
import dev.amalgam.format.RowMap;
import dev.amalgam.format.StoredTensor;
import dev.amalgam.format.Vocabulary;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The output vocabulary of a merge with {@code tokenizer_source} or a {@code tokenizer:} section,
 * and each model's embedding and output head remapped to it, as the widely used tool does:
 *
 * <ol>
 *   <li>The vocabulary: the base's ({@code base}; the first model's without a base), a model's
 *       (its path), or {@code union}: the base's, then every token of the other models it lacks,
 *       model by model in config order and by id within a model, each a new added token; then the
 *       {@code tokens} the config names that are still missing. {@code pad_to_multiple_of} rounds the
 *       rows up.</li>
 *   <li>Each model's row for a token is its own row for that token. Where it has none (or the
 *       config {@code force}s the token), the row is the token's default: the config's source for it
 *       (a model's row for the same token, a model's row for a given token or id, or zeros); else
 *       the row of the one model that has the token; zeros where none has it; the base's row where
 *       the base has it; else the average of the rows of the models that have it.</li>
 *   <li>Padding rows are the mean of the model's remapped rows.</li>
 * </ol>
 * Remapped tensors are read through a {@link RowMap}, so nothing is materialized; a model whose
 * vocabulary already matches keeps its tensor as stored.
 */
final class VocabularyPlan {
    private static final Pattern EMBEDDING =
            Pattern.compile("(^|\\.)(embed_tokens|wte|word_embeddings|embed_out|lm_head)\\.weight$");

    /**
     * What the commit writes for the vocabulary.
     *
     * @param rows      the output's embedding rows when they change (config.json's vocab_size), else 0
     * @param tokenizer the output tokenizer
     * @param added     how many tokens the output vocabulary adds to its source's
     */
    public record Output(long rows, OutputTokenizer tokenizer, int added, int remappedModels) {
        /** "45 tokens (5 added to base's), 48 rows, embeddings of 3 models remapped". */
        public String describe(String source) {
            return (rows == 0 ? "unchanged" : rows + " embedding rows") + ", " + added + " token"
                    + (added == 1 ? "" : "s") + " added to " + tokenizer.sourceDirectory() + "'s, "
                    + remappedModels + " model" + (remappedModels == 1 ? "'s" : "s'") + " embeddings remapped ("
                    + source + (tokenizer.chatTemplate() == null ? "" : ", chat template set") + ")";
        }

        /** The vocabulary as the run report states it. */
        public void report(com.fasterxml.jackson.databind.node.ObjectNode into, String source) {
            into.put("source", source);
            into.put("tokenizer_from", tokenizer.sourceDirectory());
            into.put("added_tokens", added);
            into.put("embedding_rows", rows);
            into.put("remapped_models", remappedModels);
            into.put("chat_template", tokenizer.chatTemplate() != null);
        }
    }

    /** The remapped inputs (by directory) and the output; null when the config asks for nothing. */
    record Result(Map<String, Checkpoint> remapped, Output output) {
        Checkpoint apply(Checkpoint c) {
            return c == null ? null : remapped.getOrDefault(c.directory(), c);
        }
    }

    private VocabularyPlan() {
    }

    static boolean embedding(StoredTensor t) {
        return t.shape().length == 2 && EMBEDDING.matcher(t.name()).find();
    }

    /**
     * @param all    the base first (when the method takes one), then the models, in config order
     * @param owners how messages name each of {@code all}
     */
    static Result of(String file, MergeConfig config, boolean hasBase, List<Checkpoint> all, List<String> owners,
                     CheckpointReader reader, List<String> problems) {
        Checkpoint first = all.get(0);
        List<String> names = first.tensors().stream().filter(VocabularyPlan::embedding).map(StoredTensor::name).toList();
        long[] rows = new long[all.size()];
        for (int k = 0; k < all.size(); k++) {
            StoredTensor t = names.isEmpty() ? null : all.get(k).byName().get(names.get(0));
            rows[k] = t == null ? -1 : t.shape()[0];
        }
        boolean differ = Arrays.stream(rows).distinct().count() > 1;
        if (!config.remapsVocabulary()) {
            if (differ) {
                StringBuilder sizes = new StringBuilder();
                for (int k = 0; k < all.size(); k++) {
                    sizes.append(k == 0 ? "" : ", ").append(owners.get(k)).append(": ").append(rows[k]);
                }
                problems.add(file + ": the models' vocabularies differ (rows of " + names.get(0) + ": " + sizes
                        + "); add tokenizer_source: union (every model's tokens), base, or one model's path, and "
                        + "their embeddings are remapped to it");
            }
            return null;
        }
        String source = config.tokenizerSource() == null ? "base" : config.tokenizerSource();
        TokenizerSpec spec = config.tokenizer();
        boolean rebuilds = source.equals("union") || !spec.tokens().isEmpty() || spec.padToMultipleOf() != null;
        String chat = chatTemplate(file, spec.chatTemplate(), all, reader, problems);
        List<Vocabulary> vocabularies = new ArrayList<>();
        List<String> missing = new ArrayList<>();
        for (int k = 0; k < all.size(); k++) {
            try {
                vocabularies.add(Vocabulary.read(reader.hadoop(), all.get(k).sideFileDirectory(),
                        rows[k] < 0 ? null : (int) rows[k]));
            } catch (FormatException e) {
                missing.addAll(e.problems());
                vocabularies.add(null);
            }
        }
        String sourceDirectory = source.equals("union") || source.equals("base") ? first.sideFileDirectory() : source;
        if (names.isEmpty() && !rebuilds) {
            return new Result(Map.of(), new Output(0, new OutputTokenizer(sourceDirectory, List.of(), chat), 0, 0));
        }
        if (!missing.isEmpty()) {
            if (differ || rebuilds) {
                problems.addAll(missing);
                return null;
            }
            // Every model has the same rows and nothing is added: the source's tokenizer files, as they are.
            return new Result(Map.of(), new Output(0, new OutputTokenizer(sourceDirectory, List.of(), chat), 0, 0));
        }
        Vocabulary out;
        if (source.equals("union") || source.equals("base")) {
            out = vocabularies.get(0);
        } else if (indexOf(all, source) >= 0) {
            out = vocabularies.get(indexOf(all, source));
        } else {
            try {
                out = Vocabulary.read(reader.hadoop(), source, null);
            } catch (FormatException e) {
                if (differ || rebuilds) {
                    problems.addAll(e.problems());
                    return null;
                }
                return new Result(Map.of(), new Output(0, new OutputTokenizer(sourceDirectory, List.of(), chat), 0, 0));
            }
        }
        Map<String, Integer> outIds = new LinkedHashMap<>(out.ids());
        List<ObjectNode> added = addTokens(outIds, source.equals("union") ? vocabularies : List.of(),
                spec.tokens().keySet());
        int vocab = outIds.values().stream().mapToInt(Integer::intValue).max().orElse(-1) + 1;
        long padded = spec.padToMultipleOf() == null ? vocab
                : (vocab + spec.padToMultipleOf() - 1L) / spec.padToMultipleOf() * spec.padToMultipleOf();
        OutputTokenizer tokenizer = new OutputTokenizer(out.directory(), added, chat);
        if (!added.isEmpty()) {
            // The tokenizers library must read what will be written, and give each added token its id.
            String failure = PromptTokenizer.check(tokenizer.tokenizerJson(out.tokenizer()), added);
            if (failure != null) {
                problems.add(file + ": the output tokenizer (" + out.directory() + "/tokenizer.json with "
                        + added.size() + " added tokens) " + failure);
                return null;
            }
        }

        // Token by new id, and each model's row for it (-1: none).
        String[] tokens = new String[vocab];
        outIds.forEach((t, id) -> tokens[id] = t);
        int[][] p = new int[all.size()][vocab];
        for (int k = 0; k < all.size(); k++) {
            for (int id = 0; id < vocab; id++) {
                Integer own = tokens[id] == null ? null : vocabularies.get(k).id(tokens[id]);
                p[k][id] = own == null ? -1 : own;
            }
        }
        int before = problems.size();
        Map<Integer, Row> defaults = defaults(file, spec, hasBase, all, owners, vocabularies, tokens, outIds, p, problems);
        if (problems.size() > before) {
            return null;
        }
        Map<String, Checkpoint> remapped = new HashMap<>();
        try (RangeReader rangeReader = new RangeReader(reader.hadoop())) {
            for (int m = 0; m < all.size(); m++) {
                if (!identity(p[m], rows[m], padded, spec, tokens)) {
                    Checkpoint c = remap(m, all, names, p, defaults, tokens, spec, vocab, padded, rangeReader, problems);
                    remapped.put(c.directory(), c);
                }
            }
        }
        boolean changesRows = !remapped.isEmpty() || Arrays.stream(rows).anyMatch(r -> r != padded);
        return new Result(remapped, new Output(changesRows ? padded : 0, tokenizer, added.size(), remapped.size()));
    }

    /**
     * Adds to {@code outIds} every token of {@code others} it lacks (model by model, by id within a
     * model; an added token keeps its entry's settings), then each of {@code named} still missing,
     * numbered from one past the highest id; returns their tokenizer.json entries.
     */
    private static List<ObjectNode> addTokens(Map<String, Integer> outIds, List<Vocabulary> others,
                                              java.util.Collection<String> named) {
        int next = outIds.values().stream().mapToInt(Integer::intValue).max().orElse(-1) + 1;
        List<ObjectNode> added = new ArrayList<>();
        for (Vocabulary v : others) {
            for (String token : v.ids().keySet()) {
                if (!outIds.containsKey(token)) {
                    ObjectNode entry = v.added().containsKey(token) ? v.added().get(token).deepCopy()
                            : OutputTokenizer.newToken(next, token);
                    entry.put("id", next);
                    added.add(entry);
                    outIds.put(token, next++);
                }
            }
        }
        for (String token : named) {
            if (!outIds.containsKey(token)) {
                added.add(OutputTokenizer.newToken(next, token));
                outIds.put(token, next++);
            }
        }
        return added;
    }

    private static int indexOf(List<Checkpoint> all, String path) {
        for (int k = 0; k < all.size(); k++) {
            if (OutputLayout.strip(all.get(k).directory()).equals(OutputLayout.strip(path))) {
                return k;
            }
        }
        return -1;
    }

    /** Model {@code m}'s checkpoint with its embedding and head read through row maps. */
    private static Checkpoint remap(int m, List<Checkpoint> all, List<String> names, int[][] p,
                                    Map<Integer, Row> defaults, String[] tokens, TokenizerSpec spec, int vocab,
                                    long padded, RangeReader reader, List<String> problems) {
        Checkpoint c = all.get(m);
        List<StoredTensor> tensors = new ArrayList<>();
        for (StoredTensor t : c.tensors()) {
            if (!names.contains(t.name())) {
                tensors.add(t);
            } else if (t.quantization() != null || t.lowRank() != null || !t.dtype().writable()) {
                problems.add(t.file() + ": " + t.name() + " is " + t.dtype().torchName() + (t.lowRank() != null
                        ? " with a LoRA adapter" : "") + "; remapping its rows to the output vocabulary needs "
                        + "plain float rows: give this model with bf16, f16 or f32 embeddings (an adapter merged in), "
                        + "or merge models of one vocabulary without a tokenizer setting");
            } else {
                StoredTensor[] sources = new StoredTensor[all.size()];
                for (int k = 0; k < all.size(); k++) {
                    sources[k] = all.get(k).byName().get(t.name());
                }
                tensors.add(t.remapped(padded, rowMap(m, t, sources, p, defaults, tokens, spec, vocab, padded, reader)));
            }
        }
        return new Checkpoint(c.directory(), c.shardFiles(), tensors, c.sideFiles(), c.sideFileDirectory());
    }

    /** Whether model {@code m}'s rows are the output's already: same ids, same row count, nothing forced. */
    private static boolean identity(int[] p, long rows, long padded, TokenizerSpec spec, String[] tokens) {
        if (rows != padded || p.length != padded) {
            return false;
        }
        for (int id = 0; id < p.length; id++) {
            if (p[id] != id || (tokens[id] != null && spec.tokens().containsKey(tokens[id])
                    && spec.tokens().get(tokens[id]).force())) {
                return false;
            }
        }
        return true;
    }

    /** A token's default row: one model's row, or the average of several (none: zeros). */
    private record Row(int[] models, int[] rows) {
        static final Row ZERO = new Row(new int[0], new int[0]);
    }

    private static Map<Integer, Row> defaults(String file, TokenizerSpec spec, boolean hasBase, List<Checkpoint> all,
                                              List<String> owners, List<Vocabulary> vocabularies, String[] tokens,
                                              Map<String, Integer> outIds, int[][] p, List<String> problems) {
        Map<Integer, Row> defaults = new HashMap<>();
        for (int id = 0; id < tokens.length; id++) {
            String token = tokens[id];
            TokenizerSpec.TokenSpec ts = token == null ? null : spec.tokens().get(token);
            if (ts != null && ts.source() != null) {
                String key = file + ": tokenizer.tokens['" + token + "'].source";
                if (ts.source() instanceof TokenizerSpec.TokenSource.Zero) {
                    defaults.put(id, Row.ZERO);
                } else if (ts.source() instanceof TokenizerSpec.TokenSource.Model model) {
                    int k = indexOf(all, model.model());
                    if (k < 0) {
                        problems.add(key + ": " + model.model() + " is not one of the merged models");
                    } else if (p[k][id] < 0) {
                        problems.add(key + ": " + owners.get(k) + " has no token '" + token + "'; use "
                                + "{kind: model_token, model: ..., token: ...} to take another token's row");
                    } else {
                        defaults.put(id, new Row(new int[]{k}, new int[]{p[k][id]}));
                    }
                } else if (ts.source() instanceof TokenizerSpec.TokenSource.ModelToken mt) {
                    int k = indexOf(all, mt.model());
                    Integer row = k < 0 ? null : mt.tokenId() != null ? mt.tokenId() : vocabularies.get(k).id(mt.token());
                    if (k < 0) {
                        problems.add(key + ": " + mt.model() + " is not one of the merged models");
                    } else if (row == null || row < 0 || row >= vocabularies.get(k).rows()) {
                        problems.add(key + ": " + owners.get(k) + " has no " + (mt.tokenId() != null
                                ? "row " + mt.tokenId() + " (it has " + vocabularies.get(k).rows() + ")"
                                : "token '" + mt.token() + "'"));
                    } else {
                        defaults.put(id, new Row(new int[]{k}, new int[]{row}));
                    }
                }
                continue;
            }
            List<Integer> present = new ArrayList<>();
            for (int k = 0; k < all.size(); k++) {
                if (p[k][id] >= 0) {
                    present.add(k);
                }
            }
            if (present.size() == all.size() && (ts == null || !ts.force())) {
                continue; // every model has it: no default needed
            }
            if (present.size() == 1) {
                int k = present.get(0);
                defaults.put(id, new Row(new int[]{k}, new int[]{p[k][id]}));
            } else if (present.isEmpty()) {
                defaults.put(id, Row.ZERO);
            } else if (hasBase && p[0][id] >= 0) {
                defaults.put(id, new Row(new int[]{0}, new int[]{p[0][id]}));
            } else {
                int[] models = present.stream().mapToInt(Integer::intValue).toArray();
                int[] rows = new int[models.length];
                for (int i = 0; i < models.length; i++) {
                    rows[i] = p[models[i]][id];
                }
                defaults.put(id, new Row(models, rows));
            }
        }
        return defaults;
    }

    private static RowMap rowMap(int m, StoredTensor t, StoredTensor[] sources, int[][] p, Map<Integer, Row> defaults,
                                 String[] tokens, TokenizerSpec spec, int vocab, long padded, RangeReader reader) {
        int cols = (int) t.shape()[1];
        int[] source = new int[vocab];
        int[] row = new int[vocab];
        List<RowMap.Mix> mixes = new ArrayList<>();
        Map<Row, Integer> mixIndex = new HashMap<>();
        for (int id = 0; id < vocab; id++) {
            boolean forced = tokens[id] != null && spec.tokens().containsKey(tokens[id])
                    && spec.tokens().get(tokens[id]).force();
            Row d = defaults.get(id);
            if (p[m][id] >= 0 && !forced) {
                source[id] = m;
                row[id] = p[m][id];
            } else if (d != null && d.models().length == 1) {
                source[id] = d.models()[0];
                row[id] = d.rows()[0];
            } else {
                Row mix = d == null ? Row.ZERO : d;
                int index = mixIndex.computeIfAbsent(mix, x -> {
                    mixes.add(new RowMap.Mix(x.models(), x.rows()));
                    return mixes.size() - 1;
                });
                source[id] = -1 - index;
            }
        }
        RowMap map = new RowMap(cols, vocab, sources, source, row, mixes.toArray(RowMap.Mix[]::new), null);
        if (padded == vocab) {
            return map;
        }
        // Padding rows: the mean of the rows the view holds (rounded to its dtype), summed in double,
        // read in blocks of rows so runs of consecutive source rows are one read each.
        double[] sum = new double[cols];
        int block = Math.max(1, (8 << 20) / (cols * t.dtype().byteSize()));
        for (int r = 0; r < vocab; r += block) {
            int rows = Math.min(block, vocab - r);
            float[] v = FloatBytes.decode(map.bytes((long) r * cols, rows * cols, t.dtype(), reader::readBytes),
                    t.dtype());
            for (int i = 0; i < v.length; i++) {
                sum[i % cols] += v[i];
            }
        }
        float[] pad = new float[cols];
        for (int c = 0; c < cols; c++) {
            pad[c] = (float) (sum[c] / vocab);
        }
        return new RowMap(cols, vocab, sources, source, row, map.mixes(), pad);
    }

    /** {@code chat_template}'s text: a built-in's, the inputs' most common ({@code auto}), or as given. */
    private static String chatTemplate(String file, String value, List<Checkpoint> all, CheckpointReader reader,
                                       List<String> problems) {
        if (value == null) {
            return null;
        }
        if (!value.equals("auto")) {
            return OutputTokenizer.template(file, value, problems);
        }
        Map<String, Integer> counts = new LinkedHashMap<>();
        for (Checkpoint c : all) {
            String t = OutputTokenizer.templateOf(reader.sideFile(c, "tokenizer_config.json"));
            if (t != null) {
                counts.merge(t, 1, Integer::sum);
            }
        }
        return counts.entrySet().stream().max(Map.Entry.comparingByValue()).map(Map.Entry::getKey).orElse(null);
    }

}
