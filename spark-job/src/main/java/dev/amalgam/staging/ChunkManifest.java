package dev.amalgam.staging;


import dev.amalgam.format.LocalFiles;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.util.BitSet;
import java.util.Optional;

/**
 * The record of finished chunks in a staging directory, which lets a rerun of a killed job (or a
 * retried task) skip chunks already written. One small file per chunk under {@code _manifest/},
 * written after the chunk's bytes and renamed into place, so its presence means the bytes were
 * complete; the CRC-32C it holds lets a later run verify they still are. The report bytes are
 * opaque here: the merge stage stores what it observed so a skipped chunk still reports it.
 */
public final class ChunkManifest {
    public static final String DIR = "_manifest";
    private static final int MAGIC = 0x414d434b; // "AMCK"
    /** 3: the chunk report counts an iterative method's iterations. Entries of another version are redone. */
    private static final int VERSION = 3;

    /** One finished chunk: how many bytes it wrote, their CRC-32C, and the merge stage's report. */
    public record Entry(int chunk, long length, int crc32c, byte[] report) {
    }

    private final FileSystem fs;
    private final Path dir;

    private ChunkManifest(FileSystem fs, Path dir) {
        this.fs = fs;
        this.dir = dir;
    }

    public static ChunkManifest open(String stagingDir, Configuration hadoop) {
        Path dir = new Path(stagingDir, DIR);
        try {
            return new ChunkManifest(LocalFiles.withoutChecksums(dir.getFileSystem(hadoop)), dir);
        } catch (IOException e) {
            throw new UncheckedIOException(dir + ": cannot open the chunk manifest: " + e.getMessage(), e);
        }
    }

    /** Records a finished chunk; {@code attempt} keeps concurrent attempts' temporary files apart. */
    public void record(Entry entry, String attempt) {
        Path done = entryPath(entry.chunk());
        Path temporary = new Path(dir, "." + done.getName() + "." + attempt);
        try {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream(64 + entry.report().length);
            try (DataOutputStream out = new DataOutputStream(bytes)) {
                out.writeInt(MAGIC);
                out.writeInt(VERSION);
                out.writeInt(entry.chunk());
                out.writeLong(entry.length());
                out.writeInt(entry.crc32c());
                out.writeInt(entry.report().length);
                out.write(entry.report());
            }
            if (fs instanceof RawLocalFileSystem && "file".equals(fs.getUri().getScheme())) {
                // Hadoop's local create sets permissions by forking chmod when its native library is
                // absent: milliseconds per file, per chunk. Plain NIO does the same job without it.
                java.nio.file.Path target = new File(done.toUri()).toPath();
                java.nio.file.Path tmp = new File(temporary.toUri()).toPath();
                Files.createDirectories(target.getParent());
                Files.write(tmp, bytes.toByteArray());
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                return;
            }
            try (FSDataOutputStream out = fs.create(temporary, true)) {
                out.write(bytes.toByteArray());
            }
            Renames.replace(fs, temporary, done);
        } catch (IOException e) {
            throw new UncheckedIOException(done + ": cannot record finished chunk " + entry.chunk() + ": "
                    + e.getMessage(), e);
        }
    }

    /** The entry of {@code chunk}, or empty when there is none or it is unreadable (then the chunk is redone). */
    public Optional<Entry> read(int chunk) {
        try (FSDataInputStream in = fs.open(entryPath(chunk)); DataInputStream data = new DataInputStream(in)) {
            if (data.readInt() != MAGIC || data.readInt() != VERSION || data.readInt() != chunk) {
                return Optional.empty();
            }
            long length = data.readLong();
            int crc = data.readInt();
            byte[] report = new byte[data.readInt()];
            data.readFully(report);
            return Optional.of(new Entry(chunk, length, crc, report));
        } catch (IOException missingOrTorn) {
            return Optional.empty();
        }
    }

    /** The chunks that have an entry: one directory listing, for the driver. */
    public BitSet recorded() {
        BitSet chunks = new BitSet();
        try {
            if (!fs.exists(dir)) {
                return chunks;
            }
            for (FileStatus status : fs.listStatus(dir)) {
                String name = status.getPath().getName();
                if (name.startsWith("chunk-") && name.length() == "chunk-".length() + 10) {
                    chunks.set(Integer.parseInt(name.substring("chunk-".length())));
                }
            }
            return chunks;
        } catch (IOException e) {
            throw new UncheckedIOException(dir + ": cannot list the chunk manifest: " + e.getMessage(), e);
        }
    }

    private Path entryPath(int chunk) {
        return new Path(dir, String.format("chunk-%010d", chunk));
    }
}
