package dev.amalgam.commit;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.amalgam.job.MergeJob;
import dev.amalgam.job.MergeRequest;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.testing.MergeFixture;
import dev.amalgam.testing.TestSpark;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.yaml.snakeyaml.Yaml;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/** The merged checkpoint's README.md is a model card hubs read: front matter, per-layer figures, config. */
class ModelCardTest {
    @TempDir
    Path temp;

    @Test
    void aMergesCardHasHubFrontMatterAPerLayerTableALinkToTheReportAndTheConfig() throws Exception {
        MergeFixture f = MergeFixture.create(temp, Dtype.BF16, 2, Long.MAX_VALUE);
        String yaml = "merge_method: ties\nbase_model: " + f.base + "\nmodels:\n"
                + "  - model: " + f.models.get(0) + "\n    parameters: {weight: 1.0, density: 0.5}\n"
                + "  - model: " + f.models.get(1) + "\n    parameters: {weight: 0.5, density: 0.7}\n";
        String out = f.out("merged");
        new MergeJob(TestSpark.context()).run(MergeRequest.of(f.config("ties.yml", yaml), out));
        String card = Files.readString(Path.of(out, "README.md"));

        assertThat(card).startsWith("---\n");
        Map<String, Object> front = new Yaml().load(card.substring(4, card.indexOf("\n---\n", 4)));
        assertThat(front.get("base_model")).isEqualTo(List.of(f.base, f.models.get(0), f.models.get(1)));
        assertThat(front.get("library_name")).isEqualTo("transformers");
        assertThat(front.get("tags")).asInstanceOf(org.assertj.core.api.InstanceOfAssertFactories.list(String.class)).contains("merge", "ties");
        assertThat(card).contains("[amalgam-report.json](amalgam-report.json)").contains("## Per layer")
                .contains("| layers | sign conflicts | model 1 kept | model 1 delta L2 | model 2 kept |")
                .contains("```yaml\n" + yaml.strip() + "\n```");
        // One row per layer of this small model, each figure as the report's tensors give it.
        JsonNode report = new ObjectMapper().readTree(Path.of(out, "amalgam-report.json").toFile());
        assertThat(card).contains(ModelCard.layerTable(report));
        assertThat(card.lines().filter(l -> l.matches("\\| \\d+ \\|.*"))).isNotEmpty();
    }

    @Test
    void pathsThatAreNotPlainYamlScalarsAreQuotedInTheFrontMatter() {
        var config = new dev.amalgam.config.MergeConfig("linear", null, List.of(
                new dev.amalgam.config.ModelSpec("hdfs://nn:8020/models/a: b", Map.of()),
                new dev.amalgam.config.ModelSpec("#not-a-comment", Map.of())), List.of(), Map.of(), null, null, null, null, "");
        String front = ModelCard.frontMatter(config, dev.amalgam.method.MergeMethods.byName("linear").orElseThrow());
        Map<String, Object> parsed = new Yaml().load(front);
        assertThat(parsed.get("base_model")).isEqualTo(List.of("hdfs://nn:8020/models/a: b", "#not-a-comment"));
    }

    @Test
    void layerFiguresAreWeightedByElementsAndNormsAddInQuadrature() throws Exception {
        JsonNode report = new ObjectMapper().readTree("""
                {"tensors": [
                  {"name": "model.layers.0.a.weight", "shape": [1, 3], "sign_conflict_fraction": 0.0,
                   "models": [{"kept_density": 1.0, "delta_l2_norm": 3.0}]},
                  {"name": "model.layers.0.b.weight", "shape": [1], "sign_conflict_fraction": 1.0,
                   "models": [{"kept_density": 0.0, "delta_l2_norm": 4.0}]},
                  {"name": "model.norm.weight", "shape": [4], "sign_conflict_fraction": 1.0,
                   "models": [{"kept_density": 0.0, "delta_l2_norm": 100.0}]}
                ]}""");
        // Layer 0: 3 + 1 elements; conflicts 1/4, kept 3/4, norm sqrt(9 + 16); the norm tensor is in no layer.
        assertThat(ModelCard.layerTable(report)).contains("| 0 | 0.250 | 0.750 | 5.000 |");
    }

    @Test
    void deepModelsAreGroupedIntoAShortTable() throws Exception {
        StringBuilder json = new StringBuilder("{\"tensors\": [");
        for (int l = 0; l < 80; l++) {
            json.append(l == 0 ? "" : ",").append("{\"name\": \"model.layers.").append(l)
                    .append(".w\", \"shape\": [2], \"sign_conflict_fraction\": 0.5, \"models\": [{\"kept_density\": 0.5,"
                            + " \"delta_l2_norm\": 1.0}]}");
        }
        String table = ModelCard.layerTable(new ObjectMapper().readTree(json.append("]}").toString()));
        assertThat(table.lines().filter(l -> l.matches("\\| \\d+-\\d+ \\|.*")).count()).isLessThanOrEqualTo(ModelCard.MAX_ROWS);
        assertThat(table).contains("| 0-4 | 0.500 | 0.500 | 2.236 |").contains("| 75-79 |");
    }
}
