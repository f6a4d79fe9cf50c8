package dev.amalgam.config;

import java.util.List;
import java.util.Map;

/**
 * One entry of the config's {@code slices}: consecutive output layers merged from the same
 * number of layers of each source, with the slice's own parameters (between the sources' and
 * the global ones in precedence).
 */
public record SliceSpec(List<ModelSpec> sources, Map<String, ParameterValue> parameters) {
}
