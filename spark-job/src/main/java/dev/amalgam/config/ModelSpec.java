package dev.amalgam.config;

import java.util.Map;

/**
 * One input of a merge: an entry of the config's {@code models} list or one source of a slice.
 *
 * @param layerRange the layers taken from the model, or null for all of them
 * @param companions checkpoints of per-parameter quantities beside the model's weights, by kind
 *                   ({@value #FISHER}, {@value #SECOND_MOMENT}): tensors of the same names and shapes
 */
public record ModelSpec(String model, Map<String, ParameterValue> parameters, LayerRange layerRange,
                        Map<String, String> companions) {

    /** A diagonal Fisher information checkpoint (Fisher merging). */
    public static final String FISHER = "fisher";
    /** An optimizer's second-moment (Adam {@code exp_avg_sq}) checkpoint (OTA merging). */
    public static final String SECOND_MOMENT = "second_moment";
    /** Every kind of companion checkpoint a model entry may name. */
    public static final java.util.List<String> COMPANION_KINDS = java.util.List.of(FISHER, SECOND_MOMENT);

    public ModelSpec {
        companions = companions == null ? Map.of() : Map.copyOf(companions);
    }

    public ModelSpec(String model, Map<String, ParameterValue> parameters) {
        this(model, parameters, null, null);
    }

    public ModelSpec(String model, Map<String, ParameterValue> parameters, LayerRange layerRange) {
        this(model, parameters, layerRange, null);
    }
}
