package dev.amalgam.commit;

import dev.amalgam.format.LocalFiles;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileContext;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Options;
import org.apache.hadoop.fs.Path;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.util.Optional;
import java.util.UUID;

/**
 * {@code ROOT/latest}: which merge under a nightly root is current. On a local file system it is
 * a symbolic link, so {@code from_pretrained("ROOT/latest")} works; elsewhere (HDFS, object
 * stores) a small file holding the merge's directory name. Either is replaced by one rename,
 * so a reader sees the old merge or the new one, never neither.
 */
public final class LatestPointer {
    public static final String NAME = "latest";

    private final Configuration hadoop;
    private final Path root;
    private final FileSystem fs;

    public LatestPointer(Configuration hadoop, Path root) throws IOException {
        this.hadoop = hadoop;
        this.fs = LocalFiles.withoutChecksums(root.getFileSystem(hadoop));
        this.root = fs.makeQualified(root);
    }

    /** The directory name the pointer names, if there is one. */
    public Optional<String> read() throws IOException {
        if (isLocal()) {
            java.nio.file.Path link = new File(new Path(root, NAME).toUri()).toPath();
            if (Files.isSymbolicLink(link)) {
                return Optional.of(Files.readSymbolicLink(link).getFileName().toString());
            }
            return Optional.empty();
        }
        Path file = new Path(root, NAME);
        if (!fs.exists(file) || !fs.getFileStatus(file).isFile()) {
            return Optional.empty();
        }
        try (FSDataInputStream in = fs.open(file)) {
            return Optional.of(new String(in.readAllBytes(), StandardCharsets.UTF_8).trim());
        }
    }

    /** Points {@code latest} at {@code name}, a directory under the root, atomically. */
    public void moveTo(String name) throws IOException {
        String temporary = "." + NAME + "-" + UUID.randomUUID();
        if (isLocal()) {
            java.nio.file.Path dir = new File(root.toUri()).toPath();
            java.nio.file.Path tmp = dir.resolve(temporary);
            Files.createSymbolicLink(tmp, java.nio.file.Path.of(name));
            Files.move(tmp, dir.resolve(NAME), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            return;
        }
        Path tmp = new Path(root, temporary);
        try (FSDataOutputStream out = fs.create(tmp, false)) {
            out.write((name + "\n").getBytes(StandardCharsets.UTF_8));
        }
        // FileSystem.rename never replaces a file; FileContext's OVERWRITE does, atomically on HDFS.
        FileContext.getFileContext(root.toUri(), hadoop).rename(tmp, new Path(root, NAME), Options.Rename.OVERWRITE);
    }

    private boolean isLocal() {
        return "file".equals(root.toUri().getScheme());
    }
}
