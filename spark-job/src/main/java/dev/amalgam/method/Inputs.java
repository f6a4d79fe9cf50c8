package dev.amalgam.method;

import java.util.ArrayList;
import java.util.List;

/**
 * Which inputs a method takes: whether {@code base_model} is required, optional or not an input,
 * and how many models besides the base (the config's {@code models} without the base).
 *
 * @param baseListed when the base is required, whether configs conventionally list it under
 *                   {@code models} too (slerp, nearswap); the message then counts it
 * @param text       what to tell users instead of the generated description (null: generated)
 */
public record Inputs(Base base, int minModels, int maxModels, boolean baseListed, String text) {

    public enum Base { REQUIRED, OPTIONAL, NONE }

    public static Inputs base(int minModels, int maxModels) {
        return new Inputs(Base.REQUIRED, minModels, maxModels, false, null);
    }

    public static Inputs optionalBase(int minModels, int maxModels) {
        return new Inputs(Base.OPTIONAL, minModels, maxModels, false, null);
    }

    public static Inputs noBase(int minModels) {
        return new Inputs(Base.NONE, minModels, Integer.MAX_VALUE, false, null);
    }

    /** Base plus exactly {@code models} others, where configs list the base among the models. */
    public static Inputs baseAmong(int models) {
        return new Inputs(Base.REQUIRED, models, models, true, null);
    }

    /** The same inputs described in the method's own words. */
    public Inputs describedAs(String description) {
        return new Inputs(base, minModels, maxModels, baseListed, description);
    }

    /**
     * Problems with the inputs a config names, each with the fix; {@code key} is where the config
     * lists them ({@code models}, or a slice's {@code sources}).
     */
    public List<String> check(String file, String method, boolean hasBase, int models, String key) {
        List<String> problems = new ArrayList<>();
        if (base == Base.REQUIRED && !hasBase) {
            problems.add(file + ": merge_method " + method + " needs base_model (the model the others were "
                    + "fine-tuned from); set base_model");
        }
        if (models < minModels || models > maxModels) {
            String wanted = describe();
            problems.add(file + ": merge_method " + method + " takes " + wanted + ", but " + (key.equals("models") ? "the config" : key) + " gives " + models
                    + " model" + (models == 1 ? "" : "s") + (base == Base.NONE ? "" : " besides the base")
                    + "; change '" + key + "'");
        }
        return problems;
    }

    /** "base_model plus exactly 1 model", for messages and the README. */
    public String describe() {
        if (text != null) {
            return text;
        }
        String models = minModels == maxModels ? "exactly " + minModels + (minModels == 1 ? " model" : " models")
                : maxModels == Integer.MAX_VALUE ? (minModels == 1 ? "one or more models" : minModels + " or more models")
                : minModels + " to " + maxModels + " models";
        return switch (base) {
            case REQUIRED -> baseListed ? "exactly " + (minModels + 1) + " models, one of them base_model"
                    : "base_model plus " + models;
            case OPTIONAL -> models + ", and optionally base_model (not one of them)";
            case NONE -> models;
        };
    }
}
