package dev.amalgam.method;

/**
 * The whole merge as one tensor sees it: how many elements every merged tensor of one model
 * holds together ({@code N} of the whole-model methods), and how many decoder layers the output
 * has. Whole-model statistics count positions against {@code elements}; LiNeS scales by layer.
 */
public record ModelExtent(long elements, int layers) {

    /** Before the planner has seen every tensor (and for tensors of no merge). */
    public static final ModelExtent UNKNOWN = new ModelExtent(0, 0);
}
