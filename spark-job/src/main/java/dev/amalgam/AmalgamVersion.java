package dev.amalgam;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Properties;

/** The build's version, from the resource Maven fills in; part of every merge fingerprint. */
public final class AmalgamVersion {
    public static final String VERSION = load();

    private AmalgamVersion() {
    }

    private static String load() {
        try (InputStream in = AmalgamVersion.class.getResourceAsStream("version.properties")) {
            if (in == null) {
                throw new IllegalStateException("dev/amalgam/version.properties is missing from the build");
            }
            Properties p = new Properties();
            p.load(in);
            return p.getProperty("version");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
