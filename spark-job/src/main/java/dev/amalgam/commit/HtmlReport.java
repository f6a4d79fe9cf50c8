package dev.amalgam.commit;

import com.fasterxml.jackson.databind.JsonNode;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.data.category.DefaultCategoryDataset;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * The run report as one self-contained HTML page ({@value #FILE}): per-layer charts of kept
 * density, sign conflicts, delta norms and the cosine similarity between the models' deltas, time per stage, bytes read against the input, the
 * kernels' backends and the config. Charts are drawn by JFreeChart into SVG on the driver and
 * inlined, so the page has no script and loads nothing: it opens from disk, offline, anywhere.
 */
public final class HtmlReport {
    public static final String FILE = "amalgam-report.html";

    private HtmlReport() {
    }

    public static String render(JsonNode report, String config) {
        StringBuilder html = new StringBuilder();
        html.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
                .append("<title>Amalgam merge report: ").append(Charts.escape(report.path("merge_method").asText()))
                .append("</title><style>body{font-family:sans-serif;margin:2em;max-width:")
                .append(Charts.WIDTH + 40).append("px}table{border-collapse:collapse}td,th{border:1px solid #ccc;")
                .append("padding:2px 8px;text-align:left}pre{background:#f4f4f4;padding:1em;overflow:auto}")
                .append("figure{margin:1.5em 0}</style></head><body>\n");
        html.append("<h1>").append(Charts.escape(report.path("merge_method").asText())).append(" merge</h1>\n<table>");
        row(html, "destination", report.path("destination").asText());
        row(html, "models", join(report.path("models")));
        if (report.has("base_model")) {
            row(html, "base model", report.path("base_model").asText());
        }
        row(html, "finished", report.path("finished_at").asText());
        row(html, "Spark", report.path("spark_master").asText() + " (" + report.path("spark_application_id").asText() + ")");
        row(html, "chunks", report.path("chunks").asText() + " (" + report.path("chunks_merged").asText() + " merged, "
                + report.path("chunks_reused").asText() + " reused from an earlier run)");
        html.append("</table>\n");

        LayerFigures layers = LayerFigures.of(report);
        if (!layers.isEmpty()) {
            html.append("<h2>Per layer</h2>\n");
            List<LayerFigures.Row> rows = layers.rows();
            List<String> models = new java.util.ArrayList<>();
            List<String> pairs = new java.util.ArrayList<>();
            for (int i = 0; i < layers.models(); i++) {
                models.add("model " + (i + 1));
                for (int j = i + 1; j < layers.models(); j++) {
                    pairs.add("models " + (i + 1) + " and " + (j + 1));
                }
            }
            html.append(Charts.figure("kept-density", perLayer("Kept density per layer", "kept fraction", rows, models,
                    r -> r.kept())));
            html.append(Charts.figure("sign-conflicts", perLayer("Sign-conflict fraction per layer", "fraction", rows,
                    List.of("sign conflicts"), r -> new double[]{r.signConflicts()})));
            html.append(Charts.figure("delta-norms", perLayer("Delta L2 norm per layer", "L2 norm", rows, models,
                    r -> r.deltaNorm())));
            if (!pairs.isEmpty()) {
                html.append(Charts.figure("delta-cosines", perLayer("Cosine similarity between the models' deltas per layer",
                        "cosine", rows, pairs, r -> r.cosine())));
            }
        } else {
            html.append("<p>No per-layer figures: this method has no base model, so there are no deltas.</p>\n");
        }

        html.append("<h2>Run</h2>\n");
        DefaultCategoryDataset time = new DefaultCategoryDataset();
        for (Iterator<Map.Entry<String, JsonNode>> it = report.path("timings_seconds").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            time.addValue(e.getValue().asDouble(), "seconds", e.getKey());
        }
        html.append(Charts.figure("timings", Charts.styled(ChartFactory.createBarChart("Time per stage", "stage", "seconds", time,
                PlotOrientation.HORIZONTAL, false, false, false))));
        double input = report.path("input_bytes").asDouble();
        double unit = input >= 1e9 ? 1e9 : input >= 1e6 ? 1e6 : 1e3;
        String unitName = unit == 1e9 ? "GB" : unit == 1e6 ? "MB" : "kB";
        DefaultCategoryDataset bytes = new DefaultCategoryDataset();
        for (String key : new String[]{"input_bytes", "bytes_read_merge", "bytes_read_statistics", "bytes_written"}) {
            bytes.addValue(report.path(key).asDouble() / unit, unitName, key.replace('_', ' '));
        }
        html.append(Charts.figure("bytes", Charts.styled(ChartFactory.createBarChart("Bytes read against the input size", "",
                unitName, bytes, PlotOrientation.HORIZONTAL, false, false, false))));
        DefaultCategoryDataset kernels = new DefaultCategoryDataset();
        for (Iterator<Map.Entry<String, JsonNode>> it = report.path("kernels").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            kernels.addValue(e.getValue().asDouble(), "chunks", e.getKey());
        }
        html.append(Charts.figure("backends", Charts.styled(ChartFactory.createBarChart("Chunks per kernel backend", "backend",
                "chunks", kernels, PlotOrientation.HORIZONTAL, false, false, false))));

        html.append("<h2>Config</h2>\n<pre>").append(Charts.escape(config.strip())).append("</pre>\n");
        html.append("<p>The figures of every tensor are in <a href=\"amalgam-report.json\">amalgam-report.json</a> ")
                .append("and <code>amalgam-tensors.parquet</code>.</p>\n</body></html>\n");
        return html.toString();
    }

    private interface Values {
        double[] of(LayerFigures.Row row);
    }

    private static JFreeChart perLayer(String title, String axis, List<LayerFigures.Row> rows, List<String> series,
                                       Values values) {
        XYSeriesCollection data = new XYSeriesCollection();
        for (int s = 0; s < series.size(); s++) {
            XYSeries line = new XYSeries(series.get(s));
            for (LayerFigures.Row r : rows) {
                double v = values.of(r)[s];
                // A gap where the figure is undefined (a layer whose deltas are all zero).
                line.add(r.firstLayer(), Double.isNaN(v) ? null : v);
            }
            data.addSeries(line);
        }
        JFreeChart chart = ChartFactory.createXYLineChart(title, "layer", axis, data, PlotOrientation.VERTICAL,
                series.size() > 1, false, false);
        XYPlot plot = chart.getXYPlot();
        plot.getDomainAxis().setStandardTickUnits(NumberAxis.createIntegerTickUnits());
        if (plot.getRenderer() instanceof XYLineAndShapeRenderer lines) {
            lines.setDefaultShapesVisible(rows.size() <= 40);
        }
        return Charts.styled(chart);
    }



    private static void row(StringBuilder html, String key, String value) {
        html.append("<tr><th>").append(Charts.escape(key)).append("</th><td>").append(Charts.escape(value)).append("</td></tr>");
    }

    private static String join(JsonNode array) {
        StringBuilder b = new StringBuilder();
        for (JsonNode n : array) {
            b.append(b.length() == 0 ? "" : ", ").append(n.asText());
        }
        return b.toString();
    }

}
