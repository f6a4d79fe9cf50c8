package dev.amalgam.staging;

import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;

/** Publishing a finished file under its final name, the one step that makes it visible. */
public final class Renames {
    private Renames() {
    }

    /**
     * Moves {@code from} to {@code to}, replacing what is there. HDFS and object stores refuse a
     * rename onto an existing file, so an existing target (left by an earlier attempt of the same
     * chunk) is removed first; only complete files are ever renamed, so readers never see a torn one.
     */
    public static void replace(FileSystem fs, Path from, Path to) throws IOException {
        if (fs.rename(from, to)) {
            return;
        }
        fs.delete(to, false);
        if (!fs.rename(from, to)) {
            fs.delete(from, false);
            throw new IOException("cannot rename " + from + " to " + to);
        }
    }

    /**
     * Moves {@code from} to {@code to} (which must not exist), or fails with the reason: on a local
     * path the operating system's (through java.nio, since Hadoop's local rename only answers
     * false), elsewhere the file system's exception or, when it gives none, what can be checked.
     */
    public static void move(FileSystem fs, Path from, Path to) throws IOException {
        if ("file".equals(fs.getUri().getScheme())) {
            try {
                Files.move(Paths.get(fs.makeQualified(from).toUri()), Paths.get(fs.makeQualified(to).toUri()),
                        StandardCopyOption.ATOMIC_MOVE);
                return;
            } catch (FileSystemException e) {
                throw new IOException("cannot rename " + from + " to " + to + ": " + reason(e), e);
            }
        }
        boolean moved;
        try {
            moved = fs.rename(from, to);
        } catch (IOException e) {
            throw new IOException("cannot rename " + from + " to " + to + ": " + e.getMessage(), e);
        }
        if (!moved) {
            throw new IOException("cannot rename " + from + " to " + to + ": " + diagnose(fs, from, to));
        }
    }

    private static String reason(FileSystemException e) {
        String os = e.getReason();
        if (e instanceof AccessDeniedException) {
            return "permission denied" + (os == null ? "" : " (" + os + ")");
        } else if (e instanceof DirectoryNotEmptyException) {
            return "the target exists and is not empty";
        } else if (e instanceof FileAlreadyExistsException) {
            return "the target exists";
        } else if (e instanceof NoSuchFileException) {
            return "no such file or directory: " + e.getFile();
        }
        return os != null ? os : e.toString();
    }

    private static String diagnose(FileSystem fs, Path from, Path to) {
        try {
            if (!fs.exists(from)) {
                return "the source no longer exists";
            }
            if (fs.exists(to)) {
                return "the target exists";
            }
            Path parent = to.getParent();
            if (parent != null && !fs.exists(parent)) {
                return "the target's directory " + parent + " does not exist";
            }
            if (parent != null) {
                fs.access(parent, org.apache.hadoop.fs.permission.FsAction.WRITE);
            }
        } catch (IOException e) {
            return e.getMessage();
        }
        return "the file system refused without a reason (on HDFS, the NameNode's log says why)";
    }
}
