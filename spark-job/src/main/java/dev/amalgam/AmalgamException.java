package dev.amalgam;

import java.util.List;

/**
 * Every failure a user can cause or meet. It carries all problems found at once (validation
 * reports everything before refusing) and the kind, which fixes the process exit code.
 */
public final class AmalgamException extends RuntimeException {

    /** What went wrong, and the exit code the CLI returns for it. */
    public enum Kind {
        /** The merge config or the command line is wrong. */
        CONFIG(2),
        /** An input checkpoint is unreadable, malformed or inconsistent with the others. */
        INPUT(3),
        /** The destination cannot be written (exists, not empty, not writable). */
        OUTPUT(4),
        /** The job failed while running; nothing was published. */
        EXECUTION(5),
        /** Another run holds the destination's lock; nothing was done. */
        BUSY(6);

        private final int exitCode;

        Kind(int exitCode) {
            this.exitCode = exitCode;
        }

        public int exitCode() {
            return exitCode;
        }
    }

    private final Kind kind;
    private final List<String> problems;

    public AmalgamException(Kind kind, List<String> problems) {
        super(String.join("\n", problems));
        this.kind = kind;
        this.problems = List.copyOf(problems);
    }

    public AmalgamException(Kind kind, String problem) {
        this(kind, List.of(problem));
    }

    public AmalgamException(Kind kind, List<String> problems, Throwable cause) {
        super(String.join("\n", problems), cause);
        this.kind = kind;
        this.problems = List.copyOf(problems);
    }

    public AmalgamException(Kind kind, String problem, Throwable cause) {
        super(problem, cause);
        this.kind = kind;
        this.problems = List.of(problem);
    }

    public Kind kind() {
        return kind;
    }

    public List<String> problems() {
        return problems;
    }
}
