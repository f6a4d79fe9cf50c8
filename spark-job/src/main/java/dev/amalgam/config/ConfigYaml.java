package dev.amalgam.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.amalgam.AmalgamException;
import org.yaml.snakeyaml.DumperOptions;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;
import org.yaml.snakeyaml.error.YAMLException;
import org.yaml.snakeyaml.representer.Representer;

import java.math.BigInteger;
import java.util.Date;
import java.util.List;
import java.util.Map;

/**
 * Loads a merge config's YAML as the widely used tool does (PyYAML's safe loader: YAML 1.1
 * scalars, anchors, aliases and {@code <<} merge keys) into a JSON tree, within limits that keep
 * a hostile file from exhausting the driver: size, nesting, aliases, no recursion.
 */
final class ConfigYaml {
    /** Largest config accepted; the largest real configs (hundreds of slices) are tens of KB. */
    static final int MAX_CHARACTERS = 1 << 20;
    /** Deepest nesting accepted; real configs nest six levels. */
    static final int MAX_DEPTH = 32;
    /** Most aliases of lists and mappings; bounds the "billion laughs" expansion. */
    static final int MAX_COLLECTION_ALIASES = 100;

    private ConfigYaml() {
    }

    static JsonNode load(String file, String yaml) {
        if (yaml.length() > MAX_CHARACTERS) {
            throw tooLarge(file, yaml.length());
        }
        LoaderOptions options = new LoaderOptions();
        options.setCodePointLimit(MAX_CHARACTERS);
        options.setNestingDepthLimit(MAX_DEPTH);
        options.setMaxAliasesForCollections(MAX_COLLECTION_ALIASES);
        options.setAllowDuplicateKeys(false);
        options.setAllowRecursiveKeys(false);
        DumperOptions dumper = new DumperOptions();
        Yaml loader = new Yaml(new SafeConstructor(options), new Representer(dumper), dumper, options);
        Object document;
        try {
            document = loader.load(yaml);
        } catch (YAMLException e) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, file + ": " + explain(e.getMessage()));
        } catch (StackOverflowError e) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, file + ": nests too deeply (limit "
                    + MAX_DEPTH + " levels)");
        }
        return toJson(file, document, 0);
    }

    static AmalgamException tooLarge(String file, long characters) {
        return new AmalgamException(AmalgamException.Kind.CONFIG, file + ": is " + characters
                + " characters, over the limit of " + MAX_CHARACTERS + " for a merge config");
    }

    private static String explain(String message) {
        if (message.contains("Nesting Depth exceeded")) {
            return "nests deeper than " + MAX_DEPTH + " levels, the limit for a merge config";
        }
        if (message.contains("Number of aliases for non-scalar nodes exceeds")) {
            return "uses more than " + MAX_COLLECTION_ALIASES + " aliases of lists or mappings, the limit for a merge "
                    + "config (a larger count expands exponentially)";
        }
        if (message.contains("exceeds the limit")) {
            return "is over the limit of " + MAX_CHARACTERS + " characters for a merge config";
        }
        return "not valid YAML: " + message;
    }

    /** Converts what SnakeYAML built; an alias of an enclosing node would recurse forever, so depth is bounded. */
    private static JsonNode toJson(String file, Object value, int depth) {
        if (depth > MAX_DEPTH) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, file + ": nests deeper than " + MAX_DEPTH
                    + " levels once its aliases are resolved (an alias inside the node it names?)");
        }
        JsonNodeFactory nodes = JsonNodeFactory.instance;
        if (value == null) {
            return nodes.nullNode();
        } else if (value instanceof Map<?, ?> map) {
            ObjectNode object = nodes.objectNode();
            for (Map.Entry<?, ?> e : map.entrySet()) {
                if (!(e.getKey() instanceof String) && !(e.getKey() instanceof Number) && !(e.getKey() instanceof Boolean)) {
                    throw new AmalgamException(AmalgamException.Kind.CONFIG, file + ": has a key that is a "
                            + (e.getKey() == null ? "null" : e.getKey() instanceof List ? "list" : "mapping")
                            + "; keys must be names");
                }
                object.set(String.valueOf(e.getKey()), toJson(file, e.getValue(), depth + 1));
            }
            return object;
        } else if (value instanceof List<?> list) {
            ArrayNode array = nodes.arrayNode();
            for (Object item : list) {
                array.add(toJson(file, item, depth + 1));
            }
            return array;
        } else if (value instanceof String s) {
            return nodes.textNode(s);
        } else if (value instanceof Boolean b) {
            return nodes.booleanNode(b);
        } else if (value instanceof Integer i) {
            return nodes.numberNode(i);
        } else if (value instanceof Long l) {
            return nodes.numberNode(l);
        } else if (value instanceof BigInteger b) {
            return nodes.numberNode(b);
        } else if (value instanceof Double d) {
            return nodes.numberNode(d);
        } else if (value instanceof Date) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, file + ": holds an unquoted date (" + value
                    + "); quote it if it is a name");
        }
        throw new AmalgamException(AmalgamException.Kind.CONFIG, file + ": holds a " + value.getClass().getSimpleName()
                + " value (binary, set or ordered map), which no merge config key takes");
    }
}
