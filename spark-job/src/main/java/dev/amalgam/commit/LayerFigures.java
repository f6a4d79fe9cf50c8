package dev.amalgam.commit;

import com.fasterxml.jackson.databind.JsonNode;
import dev.amalgam.config.ParameterResolver;
import dev.amalgam.kernels.ChunkMetrics;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The run report's per-tensor figures summed per decoder layer: each model's kept density and
 * delta L2 norm and the sign-conflict fraction, weighted by elements, norms added in quadrature,
 * and the cosine similarity of each pair of models' deltas over the layer's tensors together
 * (their dot products summed, divided by the layer's norms).
 * Tensors outside the layer stack and reports without deltas (no base) give no rows.
 */
final class LayerFigures {
    /** One layer, or a group of consecutive layers. */
    record Row(int firstLayer, int lastLayer, double signConflicts, double[] kept, double[] deltaNorm,
               double[] cosine) {
    }

    private final int models;
    /** Per layer: [elements, conflicts, kept_0.., squares_0.., dots of the pairs..]. */
    private final TreeMap<Integer, double[]> sums = new TreeMap<>();

    private LayerFigures(int models) {
        this.models = models;
    }

    static LayerFigures of(JsonNode report) {
        int widest = 0;
        for (JsonNode t : report.path("tensors")) {
            widest = Math.max(widest, t.path("models").size());
        }
        int models = widest;
        LayerFigures f = new LayerFigures(models);
        for (JsonNode t : report.path("tensors")) {
            int layer = ParameterResolver.layerOf(t.path("name").asText());
            JsonNode per = t.path("models");
            if (layer < 0 || per.size() != models || models == 0 || !t.has("sign_conflict_fraction")) {
                continue;
            }
            double elements = 1;
            for (JsonNode d : t.path("shape")) {
                elements *= d.asDouble();
            }
            double[] s = f.sums.computeIfAbsent(layer, l -> new double[2 + 2 * models + ChunkMetrics.pairs(models)]);
            s[0] += elements;
            s[1] += t.path("sign_conflict_fraction").asDouble() * elements;
            for (int i = 0; i < models; i++) {
                s[2 + i] += per.get(i).path("kept_density").asDouble() * elements;
                double norm = per.get(i).path("delta_l2_norm").asDouble();
                s[2 + models + i] += norm * norm;
                JsonNode cosines = per.get(i).path("delta_cosine");
                for (int j = i + 1; j < models; j++) {
                    // The tensor's dot product again; a zero delta (null cosine) adds nothing.
                    double dot = cosines.path(j).asDouble(0.0) * norm * per.get(j).path("delta_l2_norm").asDouble();
                    s[2 + 2 * models + ChunkMetrics.pair(i, j, models)] += dot;
                }
            }
        }
        return f;
    }

    int models() {
        return models;
    }

    boolean isEmpty() {
        return sums.isEmpty();
    }

    /** Every layer on its own. */
    List<Row> rows() {
        return rows(Integer.MAX_VALUE);
    }

    /** At most {@code maxRows} rows: consecutive layers grouped evenly when there are more. */
    List<Row> rows(int maxRows) {
        List<Row> rows = new ArrayList<>();
        if (sums.isEmpty()) {
            return rows;
        }
        int last = sums.lastKey();
        int group = maxRows == Integer.MAX_VALUE ? 1 : (last + maxRows) / maxRows;
        TreeMap<Integer, double[]> grouped = new TreeMap<>();
        for (Map.Entry<Integer, double[]> e : sums.entrySet()) {
            double[] g = grouped.computeIfAbsent(e.getKey() / group, k -> new double[e.getValue().length]);
            for (int i = 0; i < g.length; i++) {
                g[i] += e.getValue()[i];
            }
        }
        for (Map.Entry<Integer, double[]> e : grouped.entrySet()) {
            double[] s = e.getValue();
            double[] kept = new double[models];
            double[] norm = new double[models];
            for (int i = 0; i < models; i++) {
                kept[i] = s[2 + i] / s[0];
                norm[i] = Math.sqrt(s[2 + models + i]);
            }
            double[] cosine = new double[ChunkMetrics.pairs(models)];
            for (int i = 0; i < models; i++) {
                for (int j = i + 1; j < models; j++) {
                    int p = ChunkMetrics.pair(i, j, models);
                    double scale = norm[i] * norm[j];
                    cosine[p] = scale > 0 ? Math.max(-1.0, Math.min(1.0, s[2 + 2 * models + p] / scale)) : Double.NaN;
                }
            }
            int first = e.getKey() * group;
            rows.add(new Row(first, Math.min(last, first + group - 1), s[1] / s[0], kept, norm, cosine));
        }
        return rows;
    }
}
