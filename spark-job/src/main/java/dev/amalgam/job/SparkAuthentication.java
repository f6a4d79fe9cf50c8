package dev.amalgam.job;

import dev.amalgam.AmalgamException;
import org.apache.spark.SparkConf;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Spark's shared-secret authentication for the driver. YARN, Kubernetes and local mode make a
 * secret per application themselves; a standalone cluster's master, workers and applications
 * share one, which Spark accepts only as {@code spark.authenticate.secret} in the driver's
 * configuration. Putting it there from the command line would show it to every user of the
 * machine ({@code ps}), so the driver reads it here from a file only its owner can read, or
 * from an environment variable, and sets it before Spark starts.
 */
public final class SparkAuthentication {
    public static final String SECRET_FILE_ENV = "AMALGAM_SPARK_SECRET_FILE";
    public static final String SECRET_ENV = "AMALGAM_SPARK_SECRET";
    static final String SECRET_KEY = "spark.authenticate.secret";
    /** What survives a Java properties file and a process environment unchanged. */
    private static final Pattern PLAIN = Pattern.compile("[A-Za-z0-9+/=._~-]{16,4096}");

    private SparkAuthentication() {
    }

    /** Sets the shared secret where authentication is on and the environment provides one. */
    public static void apply(SparkConf conf, Map<String, String> environment) {
        if (!conf.getBoolean("spark.authenticate", false)) {
            return;
        }
        String file = environment.get(SECRET_FILE_ENV);
        String value = environment.get(SECRET_ENV);
        if (file != null && !file.isBlank()) {
            conf.set(SECRET_KEY, fromFile(Path.of(file)));
        } else if (value != null && !value.isBlank()) {
            conf.set(SECRET_KEY, checked(value.strip(), SECRET_ENV));
        } else if (conf.get("spark.master", "").startsWith("spark://") && !conf.contains(SECRET_KEY)) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, "spark.authenticate is on and "
                    + conf.get("spark.master") + " is a standalone cluster, which needs the secret its master and "
                    + "workers were started with: put it in a file only you can read (chmod 600) and set "
                    + SECRET_FILE_ENV + " to its path, or set " + SECRET_ENV + "; never pass it with --conf. "
                    + "For a cluster that runs without authentication, set spark.authenticate false.");
        }
    }

    private static String fromFile(Path file) {
        try {
            if (!Files.isRegularFile(file)) {
                throw new AmalgamException(AmalgamException.Kind.CONFIG, SECRET_FILE_ENV + "=" + file
                        + ": not a regular file; name the file that holds the cluster's shared secret");
            }
            if (Files.getFileStore(file).supportsFileAttributeView("posix")) {
                Set<PosixFilePermission> permissions = Files.getPosixFilePermissions(file, LinkOption.NOFOLLOW_LINKS);
                if (permissions.stream().anyMatch(p -> p.name().startsWith("GROUP") || p.name().startsWith("OTHERS"))) {
                    throw new AmalgamException(AmalgamException.Kind.CONFIG, SECRET_FILE_ENV + "=" + file
                            + ": other users can read or change it (" + java.nio.file.attribute.PosixFilePermissions
                            .toString(permissions) + "); run chmod 600 " + file);
                }
            }
            return checked(Files.readString(file, StandardCharsets.UTF_8).strip(), SECRET_FILE_ENV + "=" + file);
        } catch (IOException e) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, SECRET_FILE_ENV + "=" + file + ": cannot read it ("
                    + e.getMessage() + ")");
        }
    }

    private static String checked(String secret, String source) {
        if (!PLAIN.matcher(secret).matches()) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, source + ": the secret must be 16 to 4096 "
                    + "characters of letters, digits and + / = . _ ~ - (one line; make one with openssl rand -hex 32)");
        }
        return secret;
    }
}
