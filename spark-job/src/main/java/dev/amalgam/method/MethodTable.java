package dev.amalgam.method;

import java.util.ArrayList;
import java.util.List;

/**
 * The README's method table, rendered from the methods' declarations ({@code amalgam methods}
 * prints it; a test keeps the README's copy equal to it), so the documented parameters are the
 * accepted ones.
 */
public final class MethodTable {
    private MethodTable() {
    }

    public static String markdown() {
        StringBuilder s = new StringBuilder();
        s.append("| method | paper | inputs | global parameters (default) | per-model parameters (default) "
                + "| reads of the inputs |\n");
        s.append("|---|---|---|---|---|---|\n");
        for (MergeMethod m : MergeMethods.all()) {
            MergeMethods.Origin origin = MergeMethods.origin(m.name());
            String inputs = m.inputs().describe() + (m.companions().isEmpty() ? ""
                    : ", each with a " + String.join(" and a ", m.companions()) + " checkpoint");
            s.append("| `").append(m.name()).append("` | ").append(origin.paper()).append(" | ").append(inputs)
                    .append(" | ").append(list(m, Parameter.Scope.GLOBAL)).append(" | ")
                    .append(list(m, Parameter.Scope.MODEL)).append(" | ").append(origin.passes()).append(" |\n");
        }
        return s.toString();
    }

    private static String list(MergeMethod method, Parameter.Scope scope) {
        List<String> parts = new ArrayList<>();
        for (Parameter p : method.parameters()) {
            if (p.scope() != scope) {
                continue;
            }
            StringBuilder b = new StringBuilder(p.name()).append(" (").append(p.defaultText());
            if (p.type() == Parameter.Type.CHOICE) {
                b.append(", one of ").append(String.join(", ", p.choices()));
            } else if (!p.range().unbounded() && p.type() != Parameter.Type.BOOLEAN) {
                b.append(", ").append(p.range());
            }
            if (p.varies()) {
                b.append(", may vary");
            }
            parts.add(b.append(')').toString());
        }
        return parts.isEmpty() ? "-" : String.join(", ", parts);
    }
}
