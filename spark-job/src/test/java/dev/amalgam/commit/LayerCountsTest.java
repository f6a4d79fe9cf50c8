package dev.amalgam.commit;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** config.json of an output whose layers slices renumbered describes the layers it holds. */
class LayerCountsTest {
    private static ObjectNode config(String json) throws Exception {
        return (ObjectNode) new ObjectMapper().readTree(json);
    }

    @Test
    void everyLayerCountKeyTheConfigHasIsSet() throws Exception {
        ObjectNode c = config("{\"num_hidden_layers\": 4, \"n_layer\": 4, \"hidden_size\": 8}");
        LayerCounts.patch(c, new int[]{0, 1, 2, 1, 2, 3});
        assertEquals(6, c.path("num_hidden_layers").asInt());
        assertEquals(6, c.path("n_layer").asInt());
        assertEquals(8, c.path("hidden_size").asInt());
    }

    @Test
    void perLayerListsFollowTheLayersTaken() throws Exception {
        ObjectNode c = config("{\"num_hidden_layers\": 4, \"layer_types\": [\"sliding_attention\", \"full_attention\", "
                + "\"sliding_attention\", \"full_attention\"], \"no_rope_layers\": [1, 1, 1, 0]}");
        // Output layers from source layers 3, 3, 0, 1 (a slice repeating layer 3, then layers 0-1).
        LayerCounts.patch(c, new int[]{3, 3, 0, 1});
        assertEquals("[\"full_attention\",\"full_attention\",\"sliding_attention\",\"full_attention\"]",
                c.path("layer_types").toString());
        assertEquals("[0,0,1,1]", c.path("no_rope_layers").toString());
    }

    @Test
    void aConfigWithoutACountGetsNumHiddenLayers() throws Exception {
        ObjectNode c = config("{\"model_type\": \"custom\"}");
        LayerCounts.patch(c, new int[]{0, 1, 2});
        assertEquals(3, c.path("num_hidden_layers").asInt());
    }
}
