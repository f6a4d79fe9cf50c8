package dev.amalgam.commit;

import dev.amalgam.AmalgamException;
import dev.amalgam.format.CheckpointReader;
import dev.amalgam.format.LocalFiles;
import dev.amalgam.format.ShardIndex;
import dev.amalgam.plan.ChunkPlan;
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

import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.File;
import java.util.UUID;

/**
 * Owns the destination: checks it before any work, stages everything in a hidden directory
 * beside it, and publishes by rename, so the destination either holds the complete merge or is
 * as it was. {@link #abort()} removes the staging directory on any failure.
 */
public final class OutputCommitter {
    private final Configuration hadoop;
    private final FileSystem fs;
    private final Path destination;
    private final Path staging;
    private final boolean overwrite;

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
        this.staging = new Path(this.destination.getParent(),
                ".amalgam-staging-" + this.destination.getName() + "-" + UUID.randomUUID());
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

    /** Creates the staging directory and, for positioned writes, every shard with its header at full size. */
    public OutputTarget prepare(MergePlan plan, WriteMode mode) throws IOException {
        boolean positioned = switch (mode) {
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
        if (!fs.mkdirs(staging)) {
            throw new IOException("cannot create " + staging);
        }
        String[] names = new String[plan.shards().length];
        for (int s = 0; s < names.length; s++) {
            ShardPlan shard = plan.shards()[s];
            names[s] = shard.fileName();
            if (positioned) {
                File file = new File(new Path(staging, shard.fileName()).toUri());
                try (RandomAccessFile raf = new RandomAccessFile(file, "rw")) {
                    raf.write(shard.header());
                    raf.setLength(shard.fileSize());
                }
            }
        }
        if (!positioned) {
            fs.mkdirs(new Path(staging, OutputTarget.PARTS_DIR));
        }
        return new OutputTarget(staging.toString(), names, positioned);
    }

    /** Builds each shard from its header and its chunks' part files in order, then drops the parts. */
    public void assembleParts(MergePlan plan) throws IOException {
        Path parts = new Path(staging, OutputTarget.PARTS_DIR);
        byte[] buffer = new byte[1 << 20];
        int chunk = 0;
        for (ShardPlan shard : plan.shards()) {
            try (FSDataOutputStream out = fs.create(new Path(staging, shard.fileName()), false)) {
                out.write(shard.header());
                int lastTensor = shard.firstTensor() + shard.tensorCount();
                while (chunk < plan.chunks().length && plan.chunks()[chunk].tensor() < lastTensor) {
                    ChunkPlan c = plan.chunks()[chunk++];
                    Path part = new Path(parts, OutputTarget.partName(c.index()));
                    TensorPlan t = plan.tensors()[c.tensor()];
                    long expected = (long) c.count() * t.outDtype().byteSize();
                    if (fs.getFileStatus(part).getLen() != expected) {
                        throw new IOException(part + ": holds " + fs.getFileStatus(part).getLen() + " bytes of tensor '"
                                + t.name() + "', expected " + expected);
                    }
                    try (FSDataInputStream in = fs.open(part)) {
                        IOUtils.copyBytes(in, out, buffer.length, false);
                    }
                }
            }
        }
        fs.delete(parts, true);
    }

    /** Writes model.safetensors.index.json when the output has more than one shard. */
    public void writeIndex(MergePlan plan) throws IOException {
        if (plan.shards().length < 2) {
            return;
        }
        java.util.Map<String, String> weightMap = new java.util.LinkedHashMap<>();
        for (TensorPlan t : plan.tensors()) {
            weightMap.put(t.name(), plan.shards()[t.shard()].fileName());
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

    /** Moves the staged merge into place. A replaced destination is removed only after the move. */
    public void publish() throws IOException {
        Path replaced = null;
        if (fs.exists(destination)) {
            if (fs.listStatus(destination).length == 0) {
                fs.delete(destination, false);
            } else {
                replaced = new Path(destination.getParent(),
                        ".amalgam-replaced-" + destination.getName() + "-" + UUID.randomUUID());
                if (!fs.rename(destination, replaced)) {
                    throw new IOException("cannot move the old " + destination + " aside");
                }
            }
        }
        if (!fs.rename(staging, destination)) {
            if (replaced != null) {
                fs.rename(replaced, destination);
            }
            throw new IOException("cannot rename " + staging + " to " + destination);
        }
        if (replaced != null) {
            fs.delete(replaced, true);
        }
    }

    /** Removes everything staged; the destination is untouched. */
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
}
