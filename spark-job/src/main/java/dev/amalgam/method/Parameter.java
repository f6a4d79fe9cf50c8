package dev.amalgam.method;

import java.util.Locale;

/**
 * One parameter a merge method declares: everything the config parser, validation, the README's
 * method table and the model card need to know about it. A method's parameters are data; nothing
 * outside the method names them.
 *
 * @param scope        global (top-level {@code parameters}) or per model (a model's own
 *                     {@code parameters}, with a global value as every model's default)
 * @param defaultValue null when the parameter is required
 * @param varies       whether layer gradients and {@code {filter, value}} lists are allowed
 * @param example      a typical value of a required parameter, for generated configs (bench) and docs
 * @param choices      for a {@link Type#CHOICE}, the words a config may give; the value is the
 *                     word's index. Null for other types.
 */
public record Parameter(String name, Scope scope, Type type, Double defaultValue, Range range, boolean varies,
                        String meaning, Double example, java.util.List<String> choices) {

    public enum Scope { GLOBAL, MODEL }

    /**
     * NUMBER, BOOLEAN and INTEGER are what they say; CHOICE is one of a few words. A NUMBER may
     * default to NaN, meaning "computed when not given" (its {@link #meaning} says how).
     */
    public enum Type { NUMBER, BOOLEAN, INTEGER, CHOICE }

    public Parameter(String name, Scope scope, Type type, Double defaultValue, Range range, boolean varies,
                     String meaning, Double example) {
        this(name, scope, type, defaultValue, range, varies, meaning, example, null);
    }

    /** Allowed values: an interval whose ends may be open, or unbounded. */
    public record Range(double min, boolean minOpen, double max, boolean maxOpen) {
        public static final Range ANY = new Range(Double.NEGATIVE_INFINITY, true, Double.POSITIVE_INFINITY, true);

        public static Range closed(double min, double max) {
            return new Range(min, false, max, false);
        }

        public static Range atLeast(double min) {
            return new Range(min, false, Double.POSITIVE_INFINITY, true);
        }

        public static Range above(double min) {
            return new Range(min, true, Double.POSITIVE_INFINITY, true);
        }

        public static Range openClosed(double min, double max) {
            return new Range(min, true, max, false);
        }

        public static Range closedOpen(double min, double max) {
            return new Range(min, false, max, true);
        }

        public boolean contains(double v) {
            boolean low = minOpen ? v > min : v >= min;
            boolean high = maxOpen ? v < max : v <= max;
            return low && high;
        }

        public boolean unbounded() {
            return equals(ANY);
        }

        @Override
        public String toString() {
            if (unbounded()) {
                return "any number";
            }
            return (minOpen ? "(" : "[") + (Double.isInfinite(min) ? "-inf" : compact(min)) + ", "
                    + (Double.isInfinite(max) ? "inf" : compact(max)) + (maxOpen ? ")" : "]");
        }
    }

    public static Parameter number(String name, Scope scope, Double defaultValue, Range range, boolean varies,
                                   String meaning) {
        return new Parameter(name, scope, Type.NUMBER, defaultValue, range, varies, meaning, null);
    }

    public static Parameter flag(String name, boolean defaultValue, String meaning) {
        return new Parameter(name, Scope.GLOBAL, Type.BOOLEAN, defaultValue ? 1.0 : 0.0, Range.closed(0, 1), false,
                meaning, null);
    }

    public static Parameter integer(String name, Double defaultValue, Range range, String meaning) {
        return new Parameter(name, Scope.GLOBAL, Type.INTEGER, defaultValue, range, false, meaning, null);
    }

    /** A global choice among {@code choices}, the first being the default. */
    public static Parameter choice(String name, java.util.List<String> choices, String meaning) {
        return new Parameter(name, Scope.GLOBAL, Type.CHOICE, 0.0, Range.closed(0, choices.size() - 1), false,
                meaning, null, java.util.List.copyOf(choices));
    }

    /** The same parameter with a typical value for generated configs. */
    public Parameter withExample(double value) {
        return new Parameter(name, scope, type, defaultValue, range, varies, meaning, value, choices);
    }

    /** Whether an unset value is computed rather than a fixed default (a NaN default). */
    public boolean computed() {
        return defaultValue != null && Double.isNaN(defaultValue);
    }

    /** A CHOICE's value for {@code word}, or -1 when it is not one of its choices. */
    public int choiceIndex(String word) {
        return choices == null ? -1 : choices.indexOf(word);
    }

    /** A value to put in a generated config: the example, else the default. */
    public double sampleValue() {
        return example != null ? example : defaultValue != null ? defaultValue : 0.5;
    }

    public boolean required() {
        return defaultValue == null;
    }

    /** The default as a config would write it ("true", "0.01", "required"). */
    public String defaultText() {
        if (defaultValue == null) {
            return "required";
        }
        if (computed()) {
            return "not set";
        }
        return format(defaultValue);
    }

    /** A value for the model card and messages. */
    public String format(double value) {
        return switch (type) {
            case BOOLEAN -> value != 0 ? "true" : "false";
            case INTEGER -> Long.toString((long) value);
            case NUMBER -> Double.isNaN(value) ? "not set" : number(value);
            case CHOICE -> choices.get((int) value);
        };
    }

    static String compact(double v) {
        return v == Math.rint(v) && Math.abs(v) < 1e15 ? Long.toString((long) v) : Double.toString(v);
    }

    static String number(double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e15) {
            return String.format(Locale.ROOT, "%.1f", v);
        }
        return Double.toString(v);
    }
}
