package dev.amalgam.commit;

import dev.amalgam.staging.Renames;

import dev.amalgam.staging.WriteMode;
import dev.amalgam.staging.OutputTarget;
import dev.amalgam.staging.ChunkManifest;

import dev.amalgam.AmalgamException;
import dev.amalgam.format.CheckpointReader;
import dev.amalgam.format.LocalFiles;
import dev.amalgam.format.ShardIndex;
import dev.amalgam.plan.MergePlan;
import dev.amalgam.plan.ShardPlan;
import dev.amalgam.plan.TensorPlan;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.io.IOUtils;

import java.io.File;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import java.util.List;
import java.util.UUID;

/**
 * Owns the destination: checks it before any work, stages everything in a hidden directory
 * beside it ({@code .amalgam-staging-<name>}), and publishes by rename, so the destination
 * either holds the complete merge or is as it was.
 *
 * <p>The staging directory has a fixed name so that a run killed before it could publish can be
 * resumed: it holds the key of the run that made it ({@code _run}), the manifest of finished
 * chunks ({@link ChunkManifest}) and the saved statistics. A later run with the same key reuses
 * it; any other key (a changed config, input or byte-affecting option) discards it. The
 * destination's {@link DestinationLock} keeps two runs from sharing it.
 */
public final class OutputCommitter {
    private static final String RUN_KEY = "_run";
    private static final String STATISTICS = "_statistics";

    private final Configuration hadoop;
    private final FileSystem fs;
    private final Path destination;
    private final Path staging;
    private final boolean overwrite;
    private boolean resumed;

    public OutputCommitter(Configuration hadoop, String destination, boolean overwrite) {
        this.hadoop = hadoop;
        try {
            Path dest = new Path(destination);
            this.fs = LocalFiles.withoutChecksums(dest.getFileSystem(hadoop));
            this.destination = fs.makeQualified(dest);
        } catch (IOException e) {
            throw new AmalgamException(AmalgamException.Kind.OUTPUT, destination + ": cannot open its file system: "
                    + e.getMessage());
        }
        this.overwrite = overwrite;
        this.staging = new Path(this.destination.getParent(), ".amalgam-staging-" + this.destination.getName());
    }
    /** Refuses a destination that exists and is not empty (unless overwriting) before any work starts. */
    public void checkDestination() {
        try {
            if (fs.exists(destination)) {
                FileStatus status = fs.getFileStatus(destination);
                boolean empty = status.isDirectory() && fs.listStatus(destination).length == 0;
                if (!status.isDirectory()) {
                    throw new AmalgamException(AmalgamException.Kind.OUTPUT, destination + ": exists and is a file; "
                            + "choose a directory path for the merged checkpoint");
                }
                if (!empty && !overwrite) {
                    throw new AmalgamException(AmalgamException.Kind.OUTPUT, destination + ": exists and is not "
                            + "empty; choose another destination or pass --overwrite to replace it");
                }
            }
        } catch (IOException e) {
            throw new AmalgamException(AmalgamException.Kind.OUTPUT, destination + ": cannot be checked: " + e.getMessage());
        }
    }

    public boolean supportsPositionedWrites() {
        return "file".equals(destination.toUri().getScheme());
    }

    /**
     * Creates the staging directory and, for positioned writes, every shard with its header at
     * full size, or reuses the staging directory a killed run with the same {@code runKey} left.
     */
    public OutputTarget prepare(MergePlan plan, WriteMode mode, String runKey) throws IOException {
        boolean positioned = positioned(mode);
        String key = runKey + " write-mode=" + (positioned ? "positioned" : "parts");
        String[] names = new String[plan.shards().length];
        for (int s = 0; s < names.length; s++) {
            names[s] = plan.shards()[s].fileName();
        }
        OutputTarget target = new OutputTarget(staging.toString(), names, positioned);
        if (fs.exists(staging)) {
            String previous = readText(new Path(staging, RUN_KEY));
            if (key.equals(previous) && (!positioned || shardsPresent(plan))) {
                resumed = true;
                return target;
            }
            System.err.println("amalgam: discarding the unfinished merge in " + staging + ": "
                    + (previous == null ? "it is incomplete" : "it was made from another config, other inputs or "
                    + "other options"));
            fs.delete(staging, true);
        }
        if (!fs.mkdirs(staging)) {
            throw new IOException("cannot create " + staging);
        }
        if (positioned) {
            for (ShardPlan shard : plan.shards()) {
                File file = new File(new Path(staging, shard.fileName()).toUri());
                try (RandomAccessFile raf = new RandomAccessFile(file, "rw")) {
                    raf.write(shard.header());
                    raf.setLength(shard.fileSize());
                }
            }
        } else {
            fs.mkdirs(new Path(staging, OutputTarget.PARTS_DIR));
        }
        // Written last: a staging directory without it was never fully prepared and is not resumed.
        writeFile(RUN_KEY, key.getBytes(StandardCharsets.UTF_8));
        return target;
    }

    private boolean positioned(WriteMode mode) {
        return switch (mode) {
            case AUTO -> supportsPositionedWrites();
            case POSITIONED -> {
                if (!supportsPositionedWrites()) {
                    throw new AmalgamException(AmalgamException.Kind.CONFIG, destination + ": --write-mode positioned "
                            + "needs a local or POSIX path; use --write-mode parts or auto");
                }
                yield true;
            }
            case PARTS -> false;
        };
    }

    /**
     * Refuses, before any work, a destination whose file system reports less free space than the
     * merge needs there: the output, staged beside the destination and published by rename, and
     * once more where part files are copied into shards. Chunks a killed run staged count as
     * written. File systems that report no free space (object stores) are not checked.
     */
    public void requireSpace(MergePlan plan, WriteMode mode) {
        try {
            boolean copies = !positioned(mode) && !assembler().concatenates();
            long needed = plan.outputBytes() * (copies ? 2 : 1);
            if (fs.exists(staging)) {
                needed = Math.max(0, needed - fs.getContentSummary(staging).getLength());
            }
            Path existing = destination;
            while (existing != null && !fs.exists(existing)) {
                existing = existing.getParent();
            }
            if (existing == null || needed == 0) {
                return;
            }
            long free;
            short replication = 1;
            if ("file".equals(fs.getUri().getScheme())) {
                free = java.nio.file.Files.getFileStore(java.nio.file.Paths.get(existing.toUri())).getUsableSpace();
            } else {
                free = fs.getStatus(existing).getRemaining();
                replication = (short) Math.max(1, fs.getDefaultReplication(existing));
            }
            if (free == Long.MAX_VALUE || free < 0) {
                return;
            }
            long raw = needed * replication;
            if (raw > free) {
                throw new AmalgamException(AmalgamException.Kind.OUTPUT, destination + ": the merge needs " + raw
                        + " bytes (" + gb(raw) + ") there but its file system reports " + free + " bytes (" + gb(free)
                        + ") free: " + gb(plan.outputBytes()) + " of output, staged beside the destination"
                        + (copies ? ", and as much again while part files are copied into shards" : "")
                        + (replication > 1 ? ", times " + replication + " replicas" : "")
                        + ". Free space there or choose another destination.");
            }
        } catch (IOException e) {
            // A file system that cannot say how much is free is not refused for it; the writes will tell.
        }
    }

    private static String gb(long bytes) {
        return String.format(java.util.Locale.ROOT, "%.2f GB", bytes / 1e9);
    }

    /** Whether {@link #prepare} found a killed run's staging directory to continue. */
    public boolean resumed() {
        return resumed;
    }

    /** The statistics a killed run saved, so a resumed run does not read every input again for them. */
    public Optional<byte[]> savedStatistics() throws IOException {
        Path file = new Path(staging, STATISTICS);
        if (!fs.exists(file)) {
            return Optional.empty();
        }
        try (FSDataInputStream in = fs.open(file)) {
            return Optional.of(in.readAllBytes());
        }
    }

    public void saveStatistics(byte[] content) throws IOException {
        Path temporary = new Path(staging, "." + STATISTICS + ".tmp");
        try (FSDataOutputStream out = fs.create(temporary, true)) {
            out.write(content);
        }
        Renames.replace(fs, temporary, new Path(staging, STATISTICS));
    }

    /** Assembles the part files into shards: by HDFS concat where the file system has it, else by copying. */
    public ShardAssembler assembler() {
        return new ShardAssembler(fs, staging);
    }

    /** Writes model.safetensors.index.json when the output has more than one shard. */
    public void writeIndex(MergePlan plan) throws IOException {
        if (plan.shards().length < 2) {
            return;
        }
        java.util.Map<String, String> weightMap = new java.util.LinkedHashMap<>();
        for (TensorPlan t : plan.tensors()) {
            weightMap.put(t.outputName(), plan.shards()[t.shard()].fileName());
        }
        writeFile(CheckpointReader.INDEX_FILE, ShardIndex.encode(weightMap, plan.outputBytes()));
    }

    public void writeFile(String name, byte[] content) throws IOException {
        try (FSDataOutputStream out = fs.create(new Path(staging, name), true)) {
            out.write(content);
        }
    }

    /** Copies a side file (tokenizer, config) from a checkpoint directory; false if it is not there. */
    public boolean copyFrom(String directory, String name) throws IOException {
        Path source = new Path(directory, name);
        FileSystem sourceFs = source.getFileSystem(hadoop);
        if (!sourceFs.exists(source)) {
            return false;
        }
        try (FSDataInputStream in = sourceFs.open(source);
             FSDataOutputStream out = fs.create(new Path(staging, name), true)) {
            IOUtils.copyBytes(in, out, 1 << 16, false);
        }
        return true;
    }

    /**
     * Drops the bookkeeping (manifest, saved statistics, run key) and moves the staged merge into
     * place. A replaced destination is removed only after the move.
     */
    public void publish() throws IOException {
        // The bookkeeping is moved aside, not deleted, until the merge is in place: a publish that
        // fails puts it back, so the staging directory can still be resumed and its chunks counted.
        Path held = new Path(destination.getParent(), ".amalgam-bookkeeping-" + destination.getName());
        fs.delete(held, true);
        fs.mkdirs(held);
        List<String> moved = new java.util.ArrayList<>();
        try {
            for (String internal : new String[]{ChunkManifest.DIR, STATISTICS, OutputTarget.PARTS_DIR, RUN_KEY}) {
                if (fs.exists(new Path(staging, internal))) {
                    Renames.move(fs, new Path(staging, internal), new Path(held, internal));
                    moved.add(internal);
                }
            }
            Path replaced = null;
            if (fs.exists(destination)) {
                if (fs.listStatus(destination).length == 0) {
                    fs.delete(destination, false);
                } else {
                    replaced = new Path(destination.getParent(),
                            ".amalgam-replaced-" + destination.getName() + "-" + UUID.randomUUID());
                    Renames.move(fs, destination, replaced);
                }
            }
            try {
                Renames.move(fs, staging, destination);
            } catch (IOException e) {
                if (replaced != null) {
                    fs.rename(replaced, destination);
                }
                throw e;
            }
            if (replaced != null) {
                fs.delete(replaced, true);
            }
        } catch (IOException e) {
            for (String internal : moved) {
                fs.rename(new Path(held, internal), new Path(staging, internal));
            }
            fs.delete(held, true);
            throw e;
        }
        fs.delete(held, true);
    }

    /** Removes everything staged, so nothing of this run is resumed; the destination is untouched. */
    public void abort() {
        try {
            fs.delete(staging, true);
        } catch (IOException ignored) {
            // Best effort: the staging directory is hidden and named for this run.
        }
    }

    public Path destination() {
        return destination;
    }

    public Path staging() {
        return staging;
    }

    private boolean shardsPresent(MergePlan plan) throws IOException {
        for (ShardPlan shard : plan.shards()) {
            Path file = new Path(staging, shard.fileName());
            if (!fs.exists(file) || fs.getFileStatus(file).getLen() != shard.fileSize()) {
                return false;
            }
        }
        return true;
    }

    private String readText(Path file) throws IOException {
        if (!fs.exists(file)) {
            return null;
        }
        try (FSDataInputStream in = fs.open(file)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }
}
