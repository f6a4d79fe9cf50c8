package dev.amalgam.plan;

import dev.amalgam.AmalgamException;
import dev.amalgam.AmalgamVersion;
import dev.amalgam.format.Checkpoint;
import dev.amalgam.format.StoredTensor;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileChecksum;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashSet;
import java.util.Set;

/**
 * What a merge's result depends on, as one SHA-256: the config text, the random seed, the
 * output shard size, and every input file (path, size, modification time, and each tensor's
 * header entry; with {@code contentChecksums} also the file's content checksum). Chunking,
 * partitioning and the cluster do not change the result and are left out. Equal fingerprints
 * mean a nightly run has nothing new to merge, and that a killed run's chunks can be reused.
 */
public final class MergeFingerprint {
    private static final String FORMAT = "amalgam-merge-fingerprint-v1";

    private MergeFingerprint() {
    }

    /**
     * @param sideFileSources directories whose side files (config.json, tokenizer) are copied into the output
     */
    public static String of(Configuration hadoop, String configSource, MergePlan plan, Planner.Planned planned,
                            PlanOptions options, Set<String> sideFileSources, boolean contentChecksums) {
        return of(hadoop, configSource, plan, planned, options, sideFileSources, contentChecksums, AmalgamVersion.VERSION);
    }

    /** As above, for the Amalgam version {@code version}: a resume after an upgrade never mixes chunks of two versions. */
    static String of(Configuration hadoop, String configSource, MergePlan plan, Planner.Planned planned,
                     PlanOptions options, Set<String> sideFileSources, boolean contentChecksums, String version) {
        MessageDigest digest = sha256();
        line(digest, FORMAT);
        line(digest, "amalgam " + version);
        line(digest, "config " + configSource.length());
        line(digest, configSource);
        line(digest, "seed " + plan.settings().seed());
        line(digest, "shard-bytes " + options.shardBytes());
        // Values the plan made (routers from prompts or a gate vectors file) are inputs too.
        for (TensorPlan t : plan.tensors()) {
            for (StoredTensor s : t.models()) {
                if (s.isGenerated()) {
                    line(digest, "generated " + t.name() + " " + HexFormat.of().formatHex(sha256().digest(s.values())));
                }
            }
        }
        Set<String> seen = new LinkedHashSet<>();
        try {
            for (Checkpoint checkpoint : checkpoints(planned)) {
                if (!seen.add(checkpoint.directory())) {
                    continue;
                }
                line(digest, "checkpoint " + checkpoint.directory());
                for (String file : checkpoint.shardFiles()) {
                    file(digest, hadoop, new Path(file), contentChecksums);
                }
                for (StoredTensor t : checkpoint.tensors()) {
                    line(digest, "tensor " + t.name() + " " + t.dtype() + " " + Arrays.toString(t.shape()) + " "
                            + t.file() + "@" + t.offset() + (t.quantization() == null ? "" : " " + quantization(t))
                            + (t.lowRank() == null ? "" : " lora " + t.lowRank().a().file() + "@" + t.lowRank().a().offset()
                            + " " + t.lowRank().b().offset() + " x" + t.lowRank().scale()
                            + (t.lowRank().fanInFanOut() ? " transposed" : "")));
                }
                for (String side : checkpoint.sideFiles()) {
                    file(digest, hadoop, new Path(checkpoint.sideFileDirectory(), side), contentChecksums);
                }
            }
            for (String directory : sideFileSources) {
                if (seen.add(directory)) {
                    Path dir = new Path(directory);
                    FileSystem fs = dir.getFileSystem(hadoop);
                    for (FileStatus status : fs.listStatus(dir)) {
                        if (status.isFile()) {
                            file(digest, hadoop, status.getPath(), contentChecksums);
                        }
                    }
                }
            }
        } catch (IOException e) {
            throw new AmalgamException(AmalgamException.Kind.INPUT, "cannot fingerprint the inputs: " + e.getMessage());
        }
        return HexFormat.of().formatHex(digest.digest());
    }

    private static Iterable<Checkpoint> checkpoints(Planner.Planned planned) {
        Set<Checkpoint> all = new LinkedHashSet<>();
        all.add(planned.reference());
        all.addAll(planned.inputs());
        return all;
    }

    private static void file(MessageDigest digest, Configuration hadoop, Path path, boolean content) throws IOException {
        FileSystem fs = path.getFileSystem(hadoop);
        FileStatus status = fs.getFileStatus(path);
        line(digest, "file " + fs.makeQualified(path) + " " + status.getLen() + " " + status.getModificationTime());
        if (content) {
            FileChecksum checksum = fs.getFileChecksum(path);
            if (checksum != null) {
                // HDFS computes this on its DataNodes from the block checksums it keeps anyway.
                line(digest, "checksum " + checksum.getAlgorithmName() + " " + HexFormat.of().formatHex(checksum.getBytes()));
            } else {
                MessageDigest whole = sha256();
                byte[] buffer = new byte[1 << 20];
                try (FSDataInputStream in = fs.open(path)) {
                    for (int n; (n = in.read(buffer)) > 0; ) {
                        whole.update(buffer, 0, n);
                    }
                }
                line(digest, "sha256 " + HexFormat.of().formatHex(whole.digest()));
            }
        }
    }

    private static void line(MessageDigest digest, String text) {
        digest.update(text.getBytes(StandardCharsets.UTF_8));
        digest.update((byte) '\n');
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java runtime has SHA-256", e);
        }
    }

    private static String quantization(StoredTensor t) {
        StoredTensor scales = t.quantization().scales();
        String blocks = t.quantization() instanceof dev.amalgam.format.Quantization.BlockScaled b
                ? "fp8 " + b.blockRows() + "x" + b.blockCols() : "mxfp4";
        return blocks + " scales " + scales.name() + " " + scales.dtype() + " " + Arrays.toString(scales.shape()) + " "
                + scales.file() + "@" + scales.offset();
    }
}
