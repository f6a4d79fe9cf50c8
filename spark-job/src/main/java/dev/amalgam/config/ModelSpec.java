package dev.amalgam.config;

import java.util.Map;

/**
 * One input of a merge: an entry of the config's {@code models} list or one source of a slice.
 *
 * @param layerRange the layers taken from the model, or null for all of them
 */
public record ModelSpec(String model, Map<String, ParameterValue> parameters, LayerRange layerRange) {

    public ModelSpec(String model, Map<String, ParameterValue> parameters) {
        this(model, parameters, null);
    }
}
