package dev.amalgam.job;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.amalgam.AmalgamException;
import dev.amalgam.commit.DestinationLock;
import dev.amalgam.commit.LatestPointer;
import dev.amalgam.format.LocalFiles;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.api.java.JavaSparkContext;

import java.io.IOException;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * A scheduled merge into a root directory that keeps a history: {@code ROOT/<time>-<fingerprint>}
 * per merge and {@code ROOT/latest} pointing at the newest. A run whose fingerprint equals the
 * latest merge's does nothing; a run killed part-way is resumed by the next one (same
 * fingerprint, same directory name); only the newest {@code keep} merges are kept.
 */
public final class NightlyRun {
    private static final Pattern MERGE_DIR = Pattern.compile("\\d{8}T\\d{6}Z-[0-9a-f]{12}");
    private static final String STAGING_PREFIX = ".amalgam-staging-";
    private static final DateTimeFormatter STAMP = DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'");

    /** What a nightly run did: merged into {@code destination}, or skipped because nothing changed. */
    public record Outcome(boolean merged, String destination, String fingerprint, List<String> removed,
                          MergeJob.Result result) {
    }

    private final JavaSparkContext sc;

    public NightlyRun(JavaSparkContext sc) {
        this.sc = sc;
    }

    /** @param request the merge to run; its destination is ignored (the nightly run names it) */
    public Outcome run(MergeRequest request, String rootDir, int keep) {
        if (keep < 1) {
            throw new AmalgamException(AmalgamException.Kind.CONFIG, "--keep must be at least 1, got " + keep);
        }
        Configuration hadoop = sc.hadoopConfiguration();
        MergeJob job = new MergeJob(sc);
        MergeJob.Inspection inspection = job.inspect(request);
        String fingerprint = inspection.fingerprint();
        String shortPrint = fingerprint.substring(0, 12);
        try {
            Path root = new Path(rootDir);
            FileSystem fs = LocalFiles.withoutChecksums(root.getFileSystem(hadoop));
            root = fs.makeQualified(root);
            fs.mkdirs(root);
            try (DestinationLock ignored = DestinationLock.acquire(hadoop, new Path(root, ".nightly").toString(),
                    "nightly " + request.configFile())) {
                LatestPointer latest = new LatestPointer(hadoop, root);
                Optional<String> current = latest.read();
                if (current.isPresent() && fingerprint.equals(fingerprintOf(fs, new Path(root, current.get())))) {
                    System.err.println("amalgam nightly: nothing changed since " + current.get() + " (fingerprint "
                            + shortPrint + "); nothing to do");
                    return new Outcome(false, new Path(root, current.get()).toString(), fingerprint, List.of(), null);
                }
                String name = unfinished(fs, root, shortPrint)
                        .orElse(ZonedDateTime.now(ZoneOffset.UTC).format(STAMP) + "-" + shortPrint);
                discardOtherUnfinished(fs, root, name);
                String destination = new Path(root, name).toString();
                MergeJob.Result result = job.run(request.withDestination(destination).withOverwrite(false), inspection);
                latest.moveTo(name);
                List<String> removed = prune(fs, root, keep, name);
                return new Outcome(true, destination, fingerprint, removed, result);
            }
        } catch (IOException e) {
            throw new AmalgamException(AmalgamException.Kind.OUTPUT, rootDir + ": " + e.getMessage());
        }
    }

    /** The name of a killed run's merge with this fingerprint, so its chunks are reused. */
    private static Optional<String> unfinished(FileSystem fs, Path root, String shortPrint) throws IOException {
        for (FileStatus s : fs.listStatus(root)) {
            String name = s.getPath().getName();
            if (name.startsWith(STAGING_PREFIX) && name.endsWith("-" + shortPrint)
                    && MERGE_DIR.matcher(name.substring(STAGING_PREFIX.length())).matches()) {
                return Optional.of(name.substring(STAGING_PREFIX.length()));
            }
        }
        return Optional.empty();
    }

    /** Unfinished merges of other fingerprints can never be resumed: their inputs or config changed. */
    private static void discardOtherUnfinished(FileSystem fs, Path root, String keepName) throws IOException {
        for (FileStatus s : fs.listStatus(root)) {
            String name = s.getPath().getName();
            if (name.startsWith(STAGING_PREFIX) && !name.equals(STAGING_PREFIX + keepName)
                    && MERGE_DIR.matcher(name.substring(STAGING_PREFIX.length())).matches()) {
                System.err.println("amalgam nightly: removing the unfinished merge " + s.getPath()
                        + " (its config or inputs have changed since)");
                fs.delete(s.getPath(), true);
            }
        }
    }

    private static List<String> prune(FileSystem fs, Path root, int keep, String newest) throws IOException {
        List<String> merges = new ArrayList<>();
        for (FileStatus s : fs.listStatus(root)) {
            if (s.isDirectory() && MERGE_DIR.matcher(s.getPath().getName()).matches()) {
                merges.add(s.getPath().getName());
            }
        }
        merges.sort(Comparator.reverseOrder());
        List<String> removed = new ArrayList<>();
        for (String name : merges.subList(Math.min(keep, merges.size()), merges.size())) {
            if (!name.equals(newest)) {
                fs.delete(new Path(root, name), true);
                removed.add(name);
            }
        }
        return removed;
    }

    private static String fingerprintOf(FileSystem fs, Path merge) {
        try (FSDataInputStream in = fs.open(new Path(merge, "amalgam-report.json"))) {
            JsonNode report = new ObjectMapper().readTree(in);
            return report.path("fingerprint").asText(null);
        } catch (IOException e) {
            return null;
        }
    }
}
