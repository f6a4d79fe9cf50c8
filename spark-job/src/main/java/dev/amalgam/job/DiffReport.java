package dev.amalgam.job;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.amalgam.commit.Charts;
import dev.amalgam.commit.ParquetTable;
import dev.amalgam.commit.ParquetTable.Column;
import dev.amalgam.commit.ParquetTable.Kind;
import dev.amalgam.staging.Renames;
import dev.amalgam.config.ParameterResolver;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.api.java.JavaSparkContext;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;

/** A checkpoint diff written out: a summary for the terminal, and diff.json, diff.parquet and diff.html in a directory. */
public final class DiffReport {
    public static final String JSON = "diff.json";
    public static final String PARQUET = "diff.parquet";
    public static final String HTML = "diff.html";

    static final ParquetTable TABLE = new ParquetTable("amalgam_diff", List.of(
            Column.required("tensor", Kind.STRING),
            Column.optional("layer", Kind.INT),
            Column.required("dtype_a", Kind.STRING),
            Column.required("dtype_b", Kind.STRING),
            Column.required("elements", Kind.LONG),
            Column.required("relative_l2", Kind.DOUBLE),
            Column.required("max_abs_difference", Kind.DOUBLE),
            Column.required("cosine", Kind.DOUBLE),
            Column.required("differing", Kind.LONG)));

    private DiffReport() {
    }

    public static String summary(CheckpointDiff.Result r) {
        StringBuilder s = new StringBuilder();
        long elements = r.tensors().stream().mapToLong(CheckpointDiff.TensorDiff::elements).sum();
        long differing = r.tensors().stream().mapToLong(CheckpointDiff.TensorDiff::differing).sum();
        s.append(String.format(Locale.ROOT, "compared %d %s (%,d values) of A = %s and B = %s%s%n",
                r.tensors().size(), r.tensors().size() == 1 ? "tensor" : "tensors", elements, r.a(), r.b(),
                r.base() == null ? "" : ", deltas from " + r.base()));
        s.append(String.format(Locale.ROOT, "  %d %s, %,d values (%.4f%%)%n", r.differingTensors(),
                r.differingTensors() == 1 ? "tensor differs" : "tensors differ", differing,
                elements == 0 ? 0.0 : 100.0 * differing / elements));
        r.tensors().stream().filter(t -> t.differing() > 0)
                .sorted(Comparator.comparingDouble(CheckpointDiff.TensorDiff::relativeL2).reversed()).limit(5)
                .forEach(t -> s.append(String.format(Locale.ROOT,
                        "  %-48s relative L2 %.3e  max |A-B| %.3e  cosine %.6f  %,d differ%n", t.name(), t.relativeL2(),
                        t.maxAbsDifference(), t.cosine(), t.differing())));
        list(s, "only in A", r.onlyInA());
        list(s, "only in B", r.onlyInB());
        list(s, "not compared", r.notCompared());
        return s.toString();
    }

    private static void list(StringBuilder s, String what, List<String> names) {
        if (names.isEmpty()) {
            return;
        }
        s.append("  ").append(what).append(" (").append(names.size()).append("): ");
        s.append(String.join(", ", names.subList(0, Math.min(10, names.size()))));
        s.append(names.size() > 10 ? ", ... and " + (names.size() - 10) + " more" : "").append('\n');
    }

    /**
     * Writes diff.json, diff.parquet (commit.ParquetTable) and diff.html into {@code dir}, replacing
     * them. They are written in a hidden directory inside it and moved into place one by one, so a
     * failure leaves each of them whole: the new one, or the old one.
     */
    public static void write(JavaSparkContext sc, CheckpointDiff.Result r, String dir) throws IOException {
        Path out = new Path(dir);
        FileSystem fs = out.getFileSystem(sc.hadoopConfiguration());
        Path staged = new Path(out, ".amalgam-diff-" + java.util.UUID.randomUUID());
        fs.mkdirs(staged);
        try {
            write(fs, new Path(staged, JSON), new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsBytes(json(r)));
            write(fs, new Path(staged, HTML), html(r).getBytes(StandardCharsets.UTF_8));
            List<Object[]> rows = new ArrayList<>();
            for (CheckpointDiff.TensorDiff t : r.tensors()) {
                int layer = ParameterResolver.layerOf(t.name());
                rows.add(new Object[]{t.name(), layer < 0 ? null : layer, t.dtypeA(), t.dtypeB(), t.elements(),
                        t.relativeL2(), t.maxAbsDifference(), t.cosine(), t.differing()});
            }
            TABLE.write(sc.hadoopConfiguration(), new Path(staged, PARQUET), rows);
            for (String name : new String[]{JSON, HTML, PARQUET}) {
                fs.delete(new Path(out, name), true);
                Renames.move(fs, new Path(staged, name), new Path(out, name));
            }
        } finally {
            fs.delete(staged, true);
        }
    }

    private static void write(FileSystem fs, Path file, byte[] bytes) throws IOException {
        try (FSDataOutputStream o = fs.create(file, true)) {
            o.write(bytes);
        }
    }

    static ObjectNode json(CheckpointDiff.Result r) {
        ObjectNode root = new ObjectMapper().createObjectNode();
        root.put("a", r.a());
        root.put("b", r.b());
        if (r.base() != null) {
            root.put("base", r.base());
        }
        root.put("tensors_compared", r.tensors().size());
        root.put("tensors_differing", r.differingTensors());
        ArrayNode tensors = root.putArray("tensors");
        for (CheckpointDiff.TensorDiff t : r.tensors()) {
            ObjectNode n = tensors.addObject();
            n.put("name", t.name());
            n.put("dtype_a", t.dtypeA());
            n.put("dtype_b", t.dtypeB());
            n.put("elements", t.elements());
            n.put("relative_l2", t.relativeL2());
            n.put("max_abs_difference", t.maxAbsDifference());
            n.put("cosine", t.cosine());
            n.put("differing", t.differing());
        }
        r.onlyInA().forEach(root.putArray("only_in_a")::add);
        r.onlyInB().forEach(root.putArray("only_in_b")::add);
        r.notCompared().forEach(root.putArray("not_compared")::add);
        return root;
    }

    static String html(CheckpointDiff.Result r) {
        StringBuilder html = new StringBuilder("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                + "<title>Amalgam checkpoint diff</title><style>body{font-family:sans-serif;margin:2em;max-width:"
                + (Charts.WIDTH + 40) + "px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;"
                + "text-align:left}pre{background:#f4f4f4;padding:1em;overflow:auto}</style></head><body>\n");
        html.append("<h1>Checkpoint diff</h1>\n<pre>").append(Charts.escape(summary(r))).append("</pre>\n");
        XYSeries rel = new XYSeries("relative L2 difference");
        XYSeries cos = new XYSeries(r.base() == null ? "cosine of the values" : "cosine of the deltas");
        for (int i = 0; i < r.tensors().size(); i++) {
            rel.add(i, r.tensors().get(i).relativeL2());
            cos.add(i, r.tensors().get(i).cosine());
        }
        html.append(Charts.figure("relative-l2", Charts.styled(ChartFactory.createXYLineChart(
                "Relative L2 difference |A - B| / |A| per tensor", "tensor (in A's order)", "relative L2",
                new XYSeriesCollection(rel), PlotOrientation.VERTICAL, false, false, false))));
        html.append(Charts.figure("cosine", Charts.styled(ChartFactory.createXYLineChart(
                r.base() == null ? "Cosine similarity per tensor" : "Cosine similarity of the deltas per tensor",
                "tensor (in A's order)", "cosine", new XYSeriesCollection(cos), PlotOrientation.VERTICAL, false, false,
                false))));
        html.append("<p>Every tensor's figures are in <a href=\"").append(JSON).append("\">").append(JSON)
                .append("</a> and <code>").append(PARQUET).append("</code>.</p>\n</body></html>\n");
        return html.toString();
    }
}
