package dev.amalgam.cli;

import dev.amalgam.AmalgamException;
import dev.amalgam.staging.WriteMode;

final class WriteModes {
    private WriteModes() {
    }

    static WriteMode parse(String text) {
        try {
            return WriteMode.valueOf(text.toUpperCase());
        } catch (IllegalArgumentException e) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, "--write-mode '" + text
                    + "' is unknown; use auto, positioned or parts");
        }
    }
}
