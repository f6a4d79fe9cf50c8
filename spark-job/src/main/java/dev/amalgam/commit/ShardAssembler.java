package dev.amalgam.commit;

import dev.amalgam.staging.Renames;

import dev.amalgam.staging.OutputTarget;

import dev.amalgam.format.LocalFiles;
import dev.amalgam.plan.ChunkPlan;
import dev.amalgam.plan.MergePlan;
import dev.amalgam.plan.ShardPlan;
import dev.amalgam.plan.TensorPlan;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.CommonPathCapabilities;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.io.IOUtils;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;

/**
 * Turns a shard's header and its chunks' part files into the shard file, in chunk order. Where
 * the file system can concatenate (HDFS), this is metadata only: the header becomes a file
 * beside the parts and the parts are appended to it without copying a byte. Elsewhere (object
 * stores) the bytes are streamed into a new file, one executor task per shard. Either way the
 * shard appears under its name only when complete, so a run killed here resumes cleanly.
 */
public final class ShardAssembler {
    private final FileSystem fs;
    private final Path staging;
    private final Path parts;

    ShardAssembler(FileSystem fs, Path staging) {
        this.fs = fs;
        this.staging = staging;
        this.parts = new Path(staging, OutputTarget.PARTS_DIR);
    }

    /** For an executor task: the assembler of the staging directory {@code target} names. */
    public static ShardAssembler open(OutputTarget target, Configuration hadoop) {
        Path staging = new Path(target.stagingDir());
        try {
            return new ShardAssembler(LocalFiles.withoutChecksums(staging.getFileSystem(hadoop)), staging);
        } catch (IOException e) {
            throw new UncheckedIOException(staging + ": cannot open its file system: " + e.getMessage(), e);
        }
    }

    /**
     * Whether the file system can append the parts by metadata. The local file system claims
     * the capability, but in Hadoop 3.4.1 its concat replaces the target with the sources
     * (the header would be lost) and keeps them, so local paths copy instead.
     */
    public boolean concatenates() throws IOException {
        return !(fs instanceof RawLocalFileSystem) && fs.hasPathCapability(staging, CommonPathCapabilities.FS_CONCAT);
    }

    /** The shards still to assemble; a resumed run may find some already done. */
    public List<Integer> pending(MergePlan plan) throws IOException {
        List<Integer> pending = new ArrayList<>();
        for (int s = 0; s < plan.shards().length; s++) {
            Path file = new Path(staging, plan.shards()[s].fileName());
            if (!fs.exists(file) || fs.getFileStatus(file).getLen() != plan.shards()[s].fileSize()) {
                pending.add(s);
            }
        }
        return pending;
    }

    /** Appends the parts to the header by the file system's concat; the parts are consumed. */
    public void concat(MergePlan plan, int shardIndex) throws IOException {
        ShardPlan shard = plan.shards()[shardIndex];
        List<Path> sources = checkedParts(plan, shardIndex);
        // HDFS concatenates only files of one directory, so the header is written beside the parts.
        Path assembling = new Path(parts, shard.fileName() + ".assembling");
        try (FSDataOutputStream out = fs.create(assembling, true)) {
            out.write(shard.header());
        }
        if (!sources.isEmpty()) {
            fs.concat(assembling, sources.toArray(new Path[0]));
        }
        long length = fs.getFileStatus(assembling).getLen();
        if (length != shard.fileSize()) {
            throw new IOException(assembling + ": concat produced " + length + " bytes, expected " + shard.fileSize());
        }
        Renames.replace(fs, assembling, new Path(staging, shard.fileName()));
    }

    /** Streams the header and the parts into the shard, for file systems without concat. */
    public void copy(MergePlan plan, int shardIndex, String attempt) throws IOException {
        ShardPlan shard = plan.shards()[shardIndex];
        List<Path> sources = checkedParts(plan, shardIndex);
        Path assembling = new Path(staging, "." + shard.fileName() + ".assembling." + attempt);
        byte[] buffer = new byte[1 << 20];
        try (FSDataOutputStream out = fs.create(assembling, true)) {
            out.write(shard.header());
            for (Path part : sources) {
                try (FSDataInputStream in = fs.open(part)) {
                    IOUtils.copyBytes(in, out, buffer.length, false);
                }
            }
        }
        Renames.replace(fs, assembling, new Path(staging, shard.fileName()));
    }

    /** Drops the parts once every shard is assembled. */
    public void finish() throws IOException {
        fs.delete(parts, true);
    }

    private List<Path> checkedParts(MergePlan plan, int shardIndex) throws IOException {
        ShardPlan shard = plan.shards()[shardIndex];
        int lastTensor = shard.firstTensor() + shard.tensorCount();
        List<Path> sources = new ArrayList<>();
        for (ChunkPlan c : plan.chunks()) {
            if (c.tensor() < shard.firstTensor() || c.tensor() >= lastTensor) {
                continue;
            }
            TensorPlan t = plan.tensors()[c.tensor()];
            Path part = new Path(parts, OutputTarget.partName(c.index()));
            long expected = (long) c.count() * t.outDtype().byteSize();
            long actual = fs.exists(part) ? fs.getFileStatus(part).getLen() : -1;
            if (actual != expected) {
                throw new IOException(part + ": " + (actual < 0 ? "is missing" : "holds " + actual + " bytes")
                        + " of tensor '" + t.name() + "', expected " + expected + " bytes");
            }
            sources.add(part);
        }
        return sources;
    }
}
