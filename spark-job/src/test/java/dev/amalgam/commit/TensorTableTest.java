package dev.amalgam.commit;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.amalgam.job.MergeJob;
import dev.amalgam.job.MergeRequest;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.testing.MergeFixture;
import dev.amalgam.testing.TestSpark;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The per-tensor figures beside a merged checkpoint, as a Parquet table Spark SQL can query. */
class TensorTableTest {
    @TempDir
    Path temp;

    @Test
    void aMergeWritesOneRowPerTensorAndModelWithTheReportsFigures() throws Exception {
        MergeFixture f = MergeFixture.create(temp, Dtype.BF16, 2, Long.MAX_VALUE);
        String out = f.out("merged");
        new MergeJob(TestSpark.context()).run(MergeRequest.of(f.config("ties.yml", "merge_method: ties\nbase_model: "
                + f.base + "\nmodels:\n  - model: " + f.models.get(0) + "\n    parameters: {weight: 1.0, density: 0.5}\n"
                + "  - model: " + f.models.get(1) + "\n    parameters: {weight: 0.5, density: 0.7}\n"), out));
        JsonNode report = new ObjectMapper().readTree(Path.of(out, "amalgam-report.json").toFile());

        SparkSession spark = SparkSession.builder().config(TestSpark.context().getConf()).getOrCreate();
        Dataset<Row> table = spark.read().parquet(out + "/" + TensorTable.DIR);
        assertEquals(2L * report.get("tensors").size(), table.count());
        table.createOrReplaceTempView("tensors");
        // The README's query: where the models disagree most, per layer.
        List<Row> byLayer = spark.sql("SELECT layer, avg(sign_conflict_fraction) AS conflicts FROM tensors "
                + "WHERE layer IS NOT NULL GROUP BY layer ORDER BY conflicts DESC").collectAsList();
        assertThat(byLayer).isNotEmpty();
        JsonNode first = report.get("tensors").get(0);
        Row row = spark.sql("SELECT * FROM tensors WHERE tensor = '" + first.get("name").asText()
                + "' AND model_index = 1").first();
        assertEquals(first.get("models").get(1).get("kept_density").asDouble(), row.<Double>getAs("kept_density"));
        assertEquals(first.get("models").get(1).get("delta_l2_norm").asDouble(), row.<Double>getAs("delta_l2_norm"));
        List<Double> cosines = row.getList(row.fieldIndex("delta_cosine"));
        assertEquals(first.get("models").get(1).get("delta_cosine").get(0).asDouble(), cosines.get(0));
        assertEquals(1.0, cosines.get(1));
        assertEquals(f.models.get(1), row.<String>getAs("model"));
        assertEquals(first.get("shard").asText(), row.<String>getAs("shard"));
    }

    @Test
    void aMethodWithoutABaseHasOneRowPerTensorAndNoModelFigures() throws Exception {
        JsonNode report = new ObjectMapper().readTree("""
                {"models": ["a", "b"], "tensors": [
                  {"name": "model.layers.3.w", "shape": [2, 3], "dtype": "BF16", "shard": "model.safetensors"}]}""");
        List<Object[]> rows = TensorTable.rows(report);
        assertEquals(1, rows.size());
        assertThat(rows.get(0)).containsExactly("model.layers.3.w", 3, 6L, "BF16", "model.safetensors",
                null, null, null, null, null, null);
    }
}
