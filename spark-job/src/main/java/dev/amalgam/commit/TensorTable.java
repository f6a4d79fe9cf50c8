package dev.amalgam.commit;

import com.fasterxml.jackson.databind.JsonNode;
import dev.amalgam.commit.ParquetTable.Column;
import dev.amalgam.commit.ParquetTable.Kind;
import dev.amalgam.config.ParameterResolver;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * The run report's per-tensor and per-model figures as a Parquet table beside the checkpoint
 * ({@value #DIR}), so Spark SQL, pandas or DuckDB can query them: one row per tensor and model (one
 * per tensor, with no model, for methods without a base).
 */
public final class TensorTable {
    public static final String DIR = "amalgam-tensors.parquet";

    static final ParquetTable TABLE = new ParquetTable("amalgam_tensors", List.of(
            Column.required("tensor", Kind.STRING),
            Column.optional("layer", Kind.INT),
            Column.required("elements", Kind.LONG),
            Column.required("dtype", Kind.STRING),
            Column.required("shard", Kind.STRING),
            Column.optional("model_index", Kind.INT),
            Column.optional("model", Kind.STRING),
            Column.optional("kept_density", Kind.DOUBLE),
            Column.optional("delta_l2_norm", Kind.DOUBLE),
            Column.optional("delta_cosine", Kind.DOUBLE_LIST),
            Column.optional("sign_conflict_fraction", Kind.DOUBLE)));

    private TensorTable() {
    }

    /** Writes the table into {@code directory} (the staging directory, published with the shards). */
    public static void write(Configuration hadoop, JsonNode report, String directory) throws IOException {
        TABLE.write(hadoop, new Path(directory, DIR), rows(report));
    }

    static List<Object[]> rows(JsonNode report) {
        List<Object[]> rows = new ArrayList<>();
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

    private static Object[] row(Object[] tensor, Integer index, String model, Double kept, Double norm,
                                List<Double> cosines, Double conflicts) {
        return new Object[]{tensor[0], tensor[1], tensor[2], tensor[3], tensor[4], index, model, kept, norm, cosines,
                conflicts};
    }
}
