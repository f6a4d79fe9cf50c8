package dev.amalgam.format;

import java.util.List;

/** A file that is not a valid safetensors checkpoint; each problem names the file and tensor. */
public final class FormatException extends RuntimeException {
    private final List<String> problems;

    public FormatException(List<String> problems) {
        super(String.join("\n", problems));
        this.problems = List.copyOf(problems);
    }

    public List<String> problems() {
        return problems;
    }
}
