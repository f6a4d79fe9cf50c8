package dev.amalgam.commit;

import com.fasterxml.jackson.databind.JsonNode;
import dev.amalgam.config.ParameterResolver;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

import java.util.ArrayList;
import java.util.List;

/**
 * The run report's per-tensor and per-model figures as a Parquet table beside the checkpoint
 * ({@value #DIR}), written through Spark SQL, so Spark SQL, pandas or DuckDB can query them: one
 * row per tensor and model (one per tensor, with no model, for methods without a base).
 */
public final class TensorTable {
    public static final String DIR = "amalgam-tensors.parquet";

    static final StructType SCHEMA = new StructType()
            .add("tensor", DataTypes.StringType, false)
            .add("layer", DataTypes.IntegerType, true)
            .add("elements", DataTypes.LongType, false)
            .add("dtype", DataTypes.StringType, false)
            .add("shard", DataTypes.StringType, false)
            .add("model_index", DataTypes.IntegerType, true)
            .add("model", DataTypes.StringType, true)
            .add("kept_density", DataTypes.DoubleType, true)
            .add("delta_l2_norm", DataTypes.DoubleType, true)
            .add("delta_cosine", DataTypes.createArrayType(DataTypes.DoubleType, true), true)
            .add("sign_conflict_fraction", DataTypes.DoubleType, true);

    private TensorTable() {
    }

    /** Writes the table into {@code directory} (the staging directory, published with the shards). */
    public static void write(JavaSparkContext sc, JsonNode report, String directory) {
        List<Row> rows = rows(report);
        writeParquet(sc, rows, SCHEMA, directory + "/" + DIR,
                "tensor table", rows.size() + " rows of " + report.path("tensors").size() + " tensors to " + DIR);
    }

    /** Rows as one Parquet file under {@code path} (replaced), written by a named Spark SQL job. */
    public static void writeParquet(JavaSparkContext sc, List<Row> rows, StructType schema, String path, String step,
                                    String range) {
        SparkSession spark = SparkSession.builder().config(sc.getConf()).getOrCreate();
        try (var named = dev.amalgam.executor.SparkWorkNames.start(sc, step, range)) {
            spark.createDataFrame(rows, schema).coalesce(1).write().mode(SaveMode.Overwrite).parquet(path);
        }
    }

    static List<Row> rows(JsonNode report) {
        List<Row> rows = new ArrayList<>();
        JsonNode models = report.path("models");
        for (JsonNode t : report.path("tensors")) {
            String name = t.path("name").asText();
            int layer = ParameterResolver.layerOf(name);
            long elements = 1;
            for (JsonNode d : t.path("shape")) {
                elements *= d.asLong();
            }
            Object[] tensor = {name, layer < 0 ? null : layer, elements, t.path("dtype").asText(), t.path("shard").asText()};
            JsonNode per = t.path("models");
            if (!per.isArray() || per.isEmpty()) {
                rows.add(row(tensor, null, null, null, null, null, null));
                continue;
            }
            Double conflicts = t.path("sign_conflict_fraction").isNumber() ? t.path("sign_conflict_fraction").asDouble() : null;
            for (int i = 0; i < per.size(); i++) {
                List<Double> cosines = new ArrayList<>();
                for (JsonNode c : per.get(i).path("delta_cosine")) {
                    cosines.add(c.isNumber() ? c.asDouble() : null);
                }
                rows.add(row(tensor, i, models.path(i).asText(null), per.get(i).path("kept_density").asDouble(),
                        per.get(i).path("delta_l2_norm").asDouble(), cosines, conflicts));
            }
        }
        return rows;
    }

    private static Row row(Object[] tensor, Integer index, String model, Double kept, Double norm, List<Double> cosines,
                           Double conflicts) {
        return RowFactory.create(tensor[0], tensor[1], tensor[2], tensor[3], tensor[4], index, model, kept, norm,
                cosines == null ? null : scala.jdk.javaapi.CollectionConverters.asScala(cosines).toSeq(), conflicts);
    }
}
