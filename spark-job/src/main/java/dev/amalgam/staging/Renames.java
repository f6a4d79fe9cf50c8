package dev.amalgam.staging;

import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;

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
}
