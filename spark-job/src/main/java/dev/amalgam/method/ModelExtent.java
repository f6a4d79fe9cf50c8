package dev.amalgam.method;

import java.util.regex.Pattern;

/**
 * The whole merge as one tensor sees it: how many elements every merged tensor of one model
 * holds together ({@code N} of the whole-model methods), how many decoder layers the output
 * has, and the config's tensor groups. Whole-model statistics count positions against
 * {@code elements}; LiNeS scales by layer; group statistics reduce over a group's tensors.
 *
 * @param groups the config's {@code groups:} patterns, in the order given (a tensor belongs to
 *               the first whose regex it contains); an array so that it crosses the wire as the
 *               plan's other records do
 */
public record ModelExtent(long elements, int layers, String[] groups) {

    /** Before the planner has seen every tensor (and for tensors of no merge). */
    public static final ModelExtent UNKNOWN = new ModelExtent(0, 0);

    public ModelExtent {
        groups = groups == null ? new String[0] : groups.clone();
    }

    public ModelExtent(long elements, int layers) {
        this(elements, layers, null);
    }

    /** How many groups the config gives. */
    public int groupCount() {
        return groups.length;
    }

    /** Compiled patterns, shared by every tensor's extent in this JVM (a plan has a handful). */
    private static final java.util.Map<String, Pattern> COMPILED = new java.util.concurrent.ConcurrentHashMap<>();

    /** The number of the first group whose pattern {@code tensor} contains, or -1. */
    public int groupOf(String tensor) {
        for (int g = 0; g < groups.length; g++) {
            if (COMPILED.computeIfAbsent(groups[g], Pattern::compile).matcher(tensor).find()) {
                return g;
            }
        }
        return -1;
    }
}
