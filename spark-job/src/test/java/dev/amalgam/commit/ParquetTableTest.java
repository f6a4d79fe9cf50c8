package dev.amalgam.commit;

import dev.amalgam.commit.ParquetTable.Column;
import dev.amalgam.commit.ParquetTable.Kind;
import dev.amalgam.testing.TestSpark;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** Report tables written by Parquet's own writer read back through Spark SQL as Spark's own tables do. */
class ParquetTableTest {
    private static final ParquetTable TABLE = new ParquetTable("t", List.of(
            Column.required("name", Kind.STRING),
            Column.optional("layer", Kind.INT),
            Column.required("elements", Kind.LONG),
            Column.optional("norm", Kind.DOUBLE),
            Column.optional("cosines", Kind.DOUBLE_LIST)));

    @TempDir
    Path temp;

    @Test
    void sparkSqlReadsTheSchemaAndEveryValueNullsIncluded() throws Exception {
        Path dir = temp.resolve("t.parquet");
        TABLE.write(new Configuration(), new org.apache.hadoop.fs.Path(dir.toUri()), List.of(
                new Object[]{"a", 3, 6L, 0.25, Arrays.asList(1.0, null, -0.5)},
                new Object[]{"b", null, 5_000_000_000L, null, null},
                new Object[]{"c", 0, 1L, Double.NaN, List.of()}));

        SparkSession spark = SparkSession.builder().config(TestSpark.context().getConf()).getOrCreate();
        Dataset<Row> table = spark.read().parquet(dir.toString());
        assertEquals(new StructType()
                .add("name", DataTypes.StringType, false)
                .add("layer", DataTypes.IntegerType, true)
                .add("elements", DataTypes.LongType, false)
                .add("norm", DataTypes.DoubleType, true)
                .add("cosines", DataTypes.createArrayType(DataTypes.DoubleType, true), true).simpleString(),
                table.schema().simpleString());
        List<Row> rows = table.orderBy("name").collectAsList();
        assertEquals("a", rows.get(0).getString(0));
        assertEquals(3, rows.get(0).getInt(1));
        assertEquals(Arrays.asList(1.0, null, -0.5), rows.get(0).getList(4));
        assertThat(rows.get(1).isNullAt(1)).isTrue();
        assertEquals(5_000_000_000L, rows.get(1).getLong(2));
        assertThat(rows.get(1).isNullAt(3)).isTrue();
        assertThat(rows.get(1).isNullAt(4)).isTrue();
        assertThat(rows.get(2).getDouble(3)).isNaN();
        assertThat(rows.get(2).getList(4)).isEmpty();
    }

    @Test
    void writingReplacesTheTableAsOneDataFileBesideASuccessMarker() throws Exception {
        Path dir = temp.resolve("t.parquet");
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("part-00007-old.snappy.parquet"), "stale");
        TABLE.write(new Configuration(), new org.apache.hadoop.fs.Path(dir.toUri()),
                List.<Object[]>of(new Object[]{"a", null, 1L, null, null}));
        try (var files = Files.list(dir)) {
            assertThat(files.map(p -> p.getFileName().toString()).filter(n -> !n.startsWith(".")))
                    .containsExactlyInAnyOrder(ParquetTable.PART, "_SUCCESS");
        }
    }

    @Test
    void aNullInARequiredColumnIsRefused() {
        assertThatThrownBy(() -> TABLE.write(new Configuration(),
                new org.apache.hadoop.fs.Path(temp.resolve("t.parquet").toUri()),
                List.<Object[]>of(new Object[]{null, null, 1L, null, null})))
                .hasMessageContaining("column name is required");
    }
}
