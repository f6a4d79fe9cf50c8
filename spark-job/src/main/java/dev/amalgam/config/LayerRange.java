package dev.amalgam.config;

/** Layers {@code [from, to)} of a model, as a config's {@code layer_range: [from, to]} gives them. */
public record LayerRange(int from, int to) {

    public int length() {
        return to - from;
    }

    @Override
    public String toString() {
        return "[" + from + ", " + to + "]";
    }
}
