package dev.amalgam.method;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Where each declared parameter's value is stored: globals and per-model parameters are each
 * numbered in declaration order. Built once per method.
 */
public final class ParameterTable {
    private static final Map<String, ParameterTable> BY_METHOD = new ConcurrentHashMap<>();

    private final Map<String, Integer> index = new HashMap<>();
    private final List<Parameter> globals;
    private final List<Parameter> perModel;

    private ParameterTable(List<Parameter> parameters) {
        globals = parameters.stream().filter(p -> p.scope() == Parameter.Scope.GLOBAL).toList();
        perModel = parameters.stream().filter(p -> p.scope() == Parameter.Scope.MODEL).toList();
        for (int i = 0; i < globals.size(); i++) {
            index.put(globals.get(i).name(), i);
        }
        for (int i = 0; i < perModel.size(); i++) {
            index.put(perModel.get(i).name(), i);
        }
    }

    public static ParameterTable of(MergeMethod method) {
        return BY_METHOD.computeIfAbsent(method.name(), n -> new ParameterTable(method.parameters()));
    }

    public List<Parameter> globals() {
        return globals;
    }

    public List<Parameter> perModel() {
        return perModel;
    }

    public Parameter find(String name) {
        for (Parameter p : globals) {
            if (p.name().equals(name)) {
                return p;
            }
        }
        for (Parameter p : perModel) {
            if (p.name().equals(name)) {
                return p;
            }
        }
        return null;
    }

    int index(String name) {
        Integer i = index.get(name);
        if (i == null) {
            throw new IllegalArgumentException("parameter '" + name + "' is not declared");
        }
        return i;
    }
}
