package dev.amalgam.format;

import java.util.ArrayList;
import java.util.List;

/**
 * The problems found in one file, bounded: a header with 100,000 overlapping tensors must not
 * print 100,000 lines. The first {@link #SHOWN} are kept in full, the rest only counted.
 */
final class Problems {
    static final int SHOWN = 20;

    private final String file;
    private final List<String> shown = new ArrayList<>();
    private long more;

    Problems(String file) {
        this.file = file;
    }

    void add(String problem) {
        if (shown.size() < SHOWN) {
            shown.add(problem);
        } else {
            more++;
        }
    }

    boolean isEmpty() {
        return shown.isEmpty();
    }

    /** The problems to report: those kept, then one line counting the rest. */
    List<String> lines() {
        if (more == 0) {
            return List.copyOf(shown);
        }
        List<String> lines = new ArrayList<>(shown);
        lines.add(file + ": ... and " + more + " more problems of the same kinds (the first " + SHOWN + " are shown)");
        return lines;
    }

    void throwIfAny() {
        if (!isEmpty()) {
            throw new FormatException(lines());
        }
    }
}
