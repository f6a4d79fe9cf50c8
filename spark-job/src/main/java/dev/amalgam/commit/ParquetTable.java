package dev.amalgam.commit;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.SimpleGroupFactory;
import org.apache.parquet.hadoop.ParquetFileWriter;
import org.apache.parquet.hadoop.ParquetWriter;
import org.apache.parquet.hadoop.example.ExampleParquetWriter;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;
import org.apache.parquet.hadoop.util.HadoopOutputFile;
import org.apache.parquet.schema.LogicalTypeAnnotation;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.PrimitiveType.PrimitiveTypeName;
import org.apache.parquet.schema.Type;
import org.apache.parquet.schema.Types;

import java.io.IOException;
import java.util.List;

/**
 * A small table of report figures written as Parquet with Parquet's own writer, laid out as Spark
 * writes a table (a directory holding one snappy part file and {@code _SUCCESS}), so Spark SQL,
 * pandas and DuckDB read it as before. The tables hold a few rows per tensor; Spark SQL's session
 * start-up and code generation cost about 2 s of a short merge for them, this writer milliseconds.
 */
public final class ParquetTable {
    /** The name of the one data file inside the table's directory. */
    public static final String PART = "part-00000.snappy.parquet";

    /** What a column holds; lists are lists of nullable doubles, as Spark writes {@code array<double>}. */
    public enum Kind { STRING, INT, LONG, DOUBLE, DOUBLE_LIST }

    /** One column: its name, its kind and whether a row may leave it null. */
    public record Column(String name, Kind kind, boolean nullable) {
        public static Column required(String name, Kind kind) {
            return new Column(name, kind, false);
        }

        public static Column optional(String name, Kind kind) {
            return new Column(name, kind, true);
        }
    }

    private final String name;
    private final List<Column> columns;
    private final MessageType schema;

    public ParquetTable(String name, List<Column> columns) {
        this.name = name;
        this.columns = List.copyOf(columns);
        this.schema = schema(name, this.columns);
    }

    public List<Column> columns() {
        return columns;
    }

    MessageType schema() {
        return schema;
    }

    /**
     * Replaces the table at {@code directory} with {@code rows}, each an array in column order
     * (Integer, Long, Double, String or {@code List<Double>}, null where the column allows it).
     */
    public void write(Configuration hadoop, Path directory, List<Object[]> rows) throws IOException {
        FileSystem fs = directory.getFileSystem(hadoop);
        fs.delete(directory, true);
        fs.mkdirs(directory);
        SimpleGroupFactory groups = new SimpleGroupFactory(schema);
        try (ParquetWriter<Group> writer = ExampleParquetWriter.builder(
                        HadoopOutputFile.fromPath(new Path(directory, PART), hadoop))
                .withType(schema)
                .withConf(hadoop)
                .withCompressionCodec(CompressionCodecName.SNAPPY)
                .withWriteMode(ParquetFileWriter.Mode.OVERWRITE)
                .build()) {
            for (Object[] row : rows) {
                writer.write(group(groups, row));
            }
        }
        fs.create(new Path(directory, "_SUCCESS"), true).close();
    }

    private Group group(SimpleGroupFactory groups, Object[] row) {
        if (row.length != columns.size()) {
            throw new IllegalArgumentException(name + ": a row of " + row.length + " values for "
                    + columns.size() + " columns");
        }
        Group g = groups.newGroup();
        for (int i = 0; i < row.length; i++) {
            Column c = columns.get(i);
            Object v = row[i];
            if (v == null) {
                if (!c.nullable()) {
                    throw new IllegalArgumentException(name + ": column " + c.name() + " is required");
                }
                continue;
            }
            switch (c.kind()) {
                case STRING -> g.append(c.name(), (String) v);
                case INT -> g.append(c.name(), (Integer) v);
                case LONG -> g.append(c.name(), (Long) v);
                case DOUBLE -> g.append(c.name(), (Double) v);
                case DOUBLE_LIST -> {
                    Group list = g.addGroup(c.name());
                    for (Object e : (List<?>) v) {
                        Group element = list.addGroup("list");
                        if (e != null) {
                            element.append("element", (Double) e);
                        }
                    }
                }
            }
        }
        return g;
    }

    /** The schema Spark itself writes for these types (strings as UTF-8, lists in three levels). */
    private static MessageType schema(String name, List<Column> columns) {
        Types.MessageTypeBuilder message = Types.buildMessage();
        for (Column c : columns) {
            Type.Repetition repetition = c.nullable() ? Type.Repetition.OPTIONAL : Type.Repetition.REQUIRED;
            switch (c.kind()) {
                case STRING -> message.primitive(PrimitiveTypeName.BINARY, repetition)
                        .as(LogicalTypeAnnotation.stringType()).named(c.name());
                case INT -> message.primitive(PrimitiveTypeName.INT32, repetition).named(c.name());
                case LONG -> message.primitive(PrimitiveTypeName.INT64, repetition).named(c.name());
                case DOUBLE -> message.primitive(PrimitiveTypeName.DOUBLE, repetition).named(c.name());
                case DOUBLE_LIST -> message.list(repetition).optionalElement(PrimitiveTypeName.DOUBLE).named(c.name());
            }
        }
        return message.named(name);
    }
}
