package dev.amalgam.commit;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.List;

/**
 * A config.json made to describe an output whose layers slices renumbered: the layer counts the
 * architectures use set to the output's, and the lists with one entry per layer rebuilt from the
 * layers the output takes, so {@code transformers} builds the model the weights describe.
 */
final class LayerCounts {
    /** The keys different architectures keep their layer count under. */
    static final List<String> COUNT_KEYS = List.of("num_hidden_layers", "n_layer", "n_layers", "num_layers");
    /** Lists with one entry per layer (attention kind, RoPE use, block kind). */
    static final List<String> PER_LAYER_KEYS = List.of("layer_types", "no_rope_layers", "layers_block_type");

    private LayerCounts() {
    }

    /** Sets the counts to {@code origins.length}; entry {@code l} of a per-layer list becomes entry {@code origins[l]}. */
    static void patch(ObjectNode config, int[] origins) {
        boolean counted = false;
        for (String key : COUNT_KEYS) {
            if (config.has(key)) {
                config.put(key, origins.length);
                counted = true;
            }
        }
        if (!counted) {
            config.put("num_hidden_layers", origins.length);
        }
        for (String key : PER_LAYER_KEYS) {
            JsonNode list = config.get(key);
            if (list instanceof ArrayNode old) {
                ArrayNode rebuilt = config.arrayNode();
                for (int origin : origins) {
                    rebuilt.add(origin < old.size() ? old.get(origin) : old.get(old.size() - 1));
                }
                config.set(key, rebuilt);
            }
        }
    }
}
