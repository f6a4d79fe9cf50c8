package dev.amalgam.config;

import java.util.Map;

/** One entry of the config's {@code models} list. */
public record ModelSpec(String model, Map<String, ParameterValue> parameters) {
}
