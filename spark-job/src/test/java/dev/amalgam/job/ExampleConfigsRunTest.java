package dev.amalgam.job;

import dev.amalgam.cli.ExampleConfigs;
import dev.amalgam.config.MergeConfigParser;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.sample.SampleCheckpoints;
import dev.amalgam.testing.TestSpark;
import dev.amalgam.testing.Tensors;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Every config in {@code conf/examples/} runs end to end on generated checkpoints (32 small
 * layers, so the slices' ranges fit), its model paths replaced by generated ones: a path ending
 * in {@code base} by the base, the others by fine-tunes in order of appearance, an adapter after
 * {@code +} by a generated LoRA adapter; in a config that sets a tokenizer, the fine-tunes have vocabularies
 * of their own. Mixture-of-experts configs run as {@code amalgam moe} does.
 */
class ExampleConfigsRunTest {
    @TempDir
    static Path temp;
    static List<String> fineTunes;
    /** Fine-tunes with vocabularies of their own (more tokens; another order), for configs that remap them. */
    static List<String> otherVocabularies;

    @BeforeAll
    static void generate() throws Exception {
        SampleCheckpoints.Shape shape = new SampleCheckpoints.Shape(32, 16, 24, 40);
        fineTunes = SampleCheckpoints.write(new Configuration(), temp.toString(), shape, Dtype.BF16, 3, 21, 40_000);
        for (int i = 0; i < fineTunes.size(); i++) {
            for (String kind : dev.amalgam.config.ModelSpec.COMPANION_KINDS) {
                SampleCheckpoints.writeCompanion(new Configuration(), ExampleConfigs.companion(fineTunes.get(i), kind),
                        shape, Dtype.BF16, kind, i + 1, 21);
            }
        }
        SampleCheckpoints.writeAdapter(new Configuration(), temp + "/adapter", shape, Dtype.BF16, 4, 8.0, false,
                List.of("q_proj", "v_proj"), 2);
        List<String> base = Tensors.vocabulary(temp + "/base");
        List<String> more = new java.util.ArrayList<>(base);
        more.addAll(List.of("<|im_start|>", "<|im_end|>"));
        List<String> reordered = new java.util.ArrayList<>(base.subList(0, 3));
        List<String> words = new java.util.ArrayList<>(base.subList(3, base.size()));
        java.util.Collections.reverse(words);
        reordered.addAll(words);
        reordered.add("gut");
        otherVocabularies = new java.util.ArrayList<>();
        for (List<String> tokens : List.of(more, reordered)) {
            String root = temp + "/vocab-" + tokens.size();
            SampleCheckpoints.write(new Configuration(), root, new SampleCheckpoints.Shape(32, 16, 24, tokens.size()),
                    Dtype.BF16, 0, tokens.size(), 40_000);
            SampleCheckpoints.writeTokenizer(new Configuration(), root + "/base", tokens);
            otherVocabularies.add(root + "/base");
        }
    }

    static Stream<Path> examples() throws Exception {
        return Files.list(Path.of("../conf/examples")).filter(p -> p.toString().endsWith(".yml")).sorted();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("examples")
    void runsOnGeneratedCheckpoints(Path example) throws Exception {
        String yaml = Files.readString(example);
        // A config that sets a tokenizer merges models whose vocabularies differ from the base's.
        List<String> models = yaml.contains("tokenizer") ? otherVocabularies : fineTunes;
        String out = ExampleConfigs.onCheckpoints(yaml, temp + "/base", models, temp + "/adapter");
        Path config = temp.resolve(example.getFileName());
        Files.writeString(config, out);
        String destination = temp.resolve("out-" + example.getFileName()).toString();
        new MergeJob(TestSpark.context()).run(MergeRequest.of(config.toString(), destination));
        boolean moe = MergeConfigParser.parse(config.toString(), out).moe() != null;
        Map<String, ?> tensors = Tensors.open(destination).byName();
        assertThat(tensors).as(example.toString())
                .containsKeys("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight");
        assertThat(tensors.keySet()).as(example.toString()).contains(moe ? routerOf(tensors.keySet())
                : "model.layers.0.mlp.down_proj.weight");
        if (yaml.contains("source: union")) {
            // 40 base tokens, two chat tokens and one word from the others: 43, padded to 64.
            assertThat(((dev.amalgam.format.StoredTensor) tensors.get("lm_head.weight")).shape()[0]).isEqualTo(64);
        }
    }

    /** Layer 0's router, by the name its architecture gives it. */
    private static String routerOf(java.util.Set<String> names) {
        return names.contains("model.layers.0.mlp.gate.weight") ? "model.layers.0.mlp.gate.weight"
                : "model.layers.0.block_sparse_moe.gate.weight";
    }

}
