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
 */
public record Parameter(String name, Scope scope, Type type, Double defaultValue, Range range, boolean varies,
                        String meaning, Double example) {

    public enum Scope { GLOBAL, MODEL }

    public enum Type { NUMBER, BOOLEAN, INTEGER }

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

    /** The same parameter with a typical value for generated configs. */
    public Parameter withExample(double value) {
        return new Parameter(name, scope, type, defaultValue, range, varies, meaning, value);
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
        return switch (type) {
            case BOOLEAN -> defaultValue != 0 ? "true" : "false";
            case INTEGER -> Long.toString((long) (double) defaultValue);
            case NUMBER -> number(defaultValue);
        };
    }

    /** A value for the model card and messages. */
    public String format(double value) {
        return switch (type) {
            case BOOLEAN -> value != 0 ? "true" : "false";
            case INTEGER -> Long.toString((long) value);
            case NUMBER -> number(value);
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
