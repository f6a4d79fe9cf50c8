package dev.amalgam.commit;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The report's per-tensor figures gathered per layer, as the HTML report and model card chart them. */
class LayerFiguresTest {
    private static JsonNode report(String tensors) throws Exception {
        return new ObjectMapper().readTree("{\"models\": [\"a\", \"b\", \"c\"], \"tensors\": [" + tensors + "]}");
    }

    private static String tensor(String name, int elements, String models) {
        return "{\"name\": \"" + name + "\", \"shape\": [" + elements + "], \"sign_conflict_fraction\": 0.5, \"models\": ["
                + models + "]}";
    }

    @Test
    void aLayersCosineIsThatOfItsTensorsDeltasJoinedEndToEnd() throws Exception {
        // Layer 0: tensor p has deltas (3, 0), (0, 4), (3, 4); tensor q has (1), (1), (-1).
        JsonNode r = report(String.join(",",
                tensor("model.layers.0.p", 2, "{\"kept_density\": 1, \"delta_l2_norm\": 3, \"delta_cosine\": [1, 0, 0.6]},"
                        + "{\"kept_density\": 1, \"delta_l2_norm\": 4, \"delta_cosine\": [0, 1, 0.8]},"
                        + "{\"kept_density\": 1, \"delta_l2_norm\": 5, \"delta_cosine\": [0.6, 0.8, 1]}"),
                tensor("model.layers.0.q", 1, "{\"kept_density\": 1, \"delta_l2_norm\": 1, \"delta_cosine\": [1, 1, -1]},"
                        + "{\"kept_density\": 1, \"delta_l2_norm\": 1, \"delta_cosine\": [1, 1, -1]},"
                        + "{\"kept_density\": 1, \"delta_l2_norm\": 1, \"delta_cosine\": [-1, -1, 1]}")));
        List<LayerFigures.Row> rows = LayerFigures.of(r).rows();
        assertEquals(1, rows.size());
        // Joined deltas: (3, 0, 1), (0, 4, 1), (3, 4, -1).
        double[] cosine = rows.get(0).cosine();
        assertEquals(1 / (Math.sqrt(10) * Math.sqrt(17)), cosine[0], 1e-12, "models 1 and 2");
        assertEquals(8 / (Math.sqrt(10) * Math.sqrt(26)), cosine[1], 1e-12, "models 1 and 3");
        assertEquals(15 / (Math.sqrt(17) * Math.sqrt(26)), cosine[2], 1e-12, "models 2 and 3");
        assertEquals(Math.sqrt(10), rows.get(0).deltaNorm()[0], 1e-12);
    }

    @Test
    void aLayerWhereAModelChangedNothingHasNoCosineForIt() throws Exception {
        JsonNode r = report(tensor("model.layers.2.p", 4,
                "{\"kept_density\": 1, \"delta_l2_norm\": 0, \"delta_cosine\": [null, null, null]},"
                        + "{\"kept_density\": 1, \"delta_l2_norm\": 2, \"delta_cosine\": [null, 1, 0.5]},"
                        + "{\"kept_density\": 1, \"delta_l2_norm\": 2, \"delta_cosine\": [null, 0.5, 1]}"));
        double[] cosine = LayerFigures.of(r).rows().get(0).cosine();
        assertTrue(Double.isNaN(cosine[0]) && Double.isNaN(cosine[1]), "no direction, no cosine");
        assertEquals(0.5, cosine[2], 1e-12);
    }
}
