package dev.amalgam.layout;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Packages follow the data flow, and no stage reaches forward: each package imports only
 * packages before it in {@link #ORDER} (and the kernels module and the root package), so there
 * are no cycles and a newcomer can read the code in the order the data moves.
 */
class PackageLayoutTest {
    static final List<String> ORDER = List.of("config", "format", "sample", "method", "plan", "staging", "executor",
            "stats", "merge", "commit", "job", "cli");
    private static final Pattern IMPORT = Pattern.compile("^import (?:static )?dev\\.amalgam\\.([a-z]+)\\.", Pattern.MULTILINE);

    @Test
    void everyPackageImportsOnlyEarlierStages() throws IOException {
        Path root = Path.of("src/main/java/dev/amalgam");
        List<String> violations = new ArrayList<>();
        List<String> packages = new ArrayList<>();
        try (Stream<Path> dirs = Files.list(root)) {
            dirs.filter(Files::isDirectory).forEach(d -> packages.add(d.getFileName().toString()));
        }
        assertThat(ORDER).as("every package has a place in the order").containsAll(packages);
        for (String pkg : packages) {
            int rank = ORDER.indexOf(pkg);
            try (Stream<Path> files = Files.list(root.resolve(pkg))) {
                for (Path file : files.filter(f -> f.toString().endsWith(".java")).toList()) {
                    Matcher m = IMPORT.matcher(Files.readString(file));
                    while (m.find()) {
                        String target = m.group(1);
                        if (target.equals("kernels") || target.equals(pkg)) {
                            continue;
                        }
                        if (ORDER.indexOf(target) < 0 || ORDER.indexOf(target) > rank) {
                            violations.add(pkg + "/" + file.getFileName() + " imports " + target);
                        }
                    }
                }
            }
        }
        assertThat(violations).isEmpty();
    }
}
