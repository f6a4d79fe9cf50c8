package dev.amalgam.format;

import org.apache.hadoop.fs.ChecksumFileSystem;
import org.apache.hadoop.fs.FileSystem;

/**
 * What Hadoop's local file system gets wrong for us: it writes a hidden .crc file beside every
 * file it creates (a model directory should hold only the model's files, so writers use the raw
 * local file system), and it calls FIFOs and devices files (opening a FIFO blocks).
 */
public final class LocalFiles {
    private LocalFiles() {
    }

    public static FileSystem withoutChecksums(FileSystem fs) {
        return fs instanceof ChecksumFileSystem checksummed ? checksummed.getRawFileSystem() : fs;
    }

    /**
     * Whether {@code file} is a regular file. Hadoop calls anything that is not a directory or a
     * link a file, FIFOs and devices included, and opening a FIFO blocks until a writer comes; on
     * the local file system the operating system's own answer decides.
     */
    public static boolean regularFile(FileSystem fs, org.apache.hadoop.fs.Path file) throws java.io.IOException {
        if ("file".equals(fs.getUri().getScheme())) {
            return java.nio.file.Files.isRegularFile(java.nio.file.Paths.get(fs.makeQualified(file).toUri()));
        }
        return fs.getFileStatus(file).isFile();
    }
}
