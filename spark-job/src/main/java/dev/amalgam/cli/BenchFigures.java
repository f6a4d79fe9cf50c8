package dev.amalgam.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Optional;

/**
 * What {@code bench} measured on this machine, per method, kept for {@code plan}'s time
 * estimate: a JSON file at {@code -Damalgam.bench.figures} or {@code $AMALGAM_BENCH_FIGURES}, else
 * {@code ~/.amalgam/bench-figures.json}.
 */
final class BenchFigures {
    /**
     * One method's throughput, warm (the median of the runs after the first: a long merge) and
     * cold (the first run of a fresh JVM, JIT compilation included: a short merge), and where it
     * was measured. A cold figure of 0 means none was recorded.
     */
    record Figure(String method, double inputGbPerSecond, double coldInputGbPerSecond, String master, double inputGb,
                  String measured) {
    }

    private BenchFigures() {
    }

    static Path file() {
        String property = System.getProperty("amalgam.bench.figures");
        if (property != null && !property.isBlank()) {
            return Path.of(property);
        }
        String env = System.getenv("AMALGAM_BENCH_FIGURES");
        return env != null && !env.isBlank() ? Path.of(env)
                : Path.of(System.getProperty("user.home"), ".amalgam", "bench-figures.json");
    }

    static void record(Figure f) throws IOException {
        Path file = file();
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = Files.isRegularFile(file) && json.readTree(file.toFile()) instanceof ObjectNode o
                ? o : json.createObjectNode();
        ObjectNode entry = root.putObject(f.method());
        entry.put("input_gb_per_s", f.inputGbPerSecond());
        entry.put("cold_input_gb_per_s", f.coldInputGbPerSecond());
        entry.put("master", f.master());
        entry.put("input_gb", f.inputGb());
        entry.put("measured", f.measured() != null ? f.measured() : Instant.now().toString());
        Files.createDirectories(file.toAbsolutePath().getParent());
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.write(tmp, json.writerWithDefaultPrettyPrinter().writeValueAsBytes(root));
        Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }

    /** The figure for {@code method}; empty when bench never measured it here or the file is unreadable. */
    static Optional<Figure> of(String method) {
        Path file = file();
        try {
            if (!Files.isRegularFile(file)) {
                return Optional.empty();
            }
            JsonNode e = new ObjectMapper().readTree(file.toFile()).path(method);
            if (!e.path("input_gb_per_s").isNumber() || e.path("input_gb_per_s").asDouble() <= 0) {
                return Optional.empty();
            }
            return Optional.of(new Figure(method, e.path("input_gb_per_s").asDouble(),
                    e.path("cold_input_gb_per_s").asDouble(0), e.path("master").asText("?"),
                    e.path("input_gb").asDouble(), e.path("measured").asText("?")));
        } catch (IOException e) {
            return Optional.empty();
        }
    }
}
