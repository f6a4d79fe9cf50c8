package dev.amalgam.format;

import org.apache.hadoop.fs.ChecksumFileSystem;
import org.apache.hadoop.fs.FileSystem;

/**
 * Hadoop's local file system writes a hidden .crc file beside every file it creates; a model
 * directory should hold only the model's files, so writers use the raw local file system.
 */
public final class LocalFiles {
    private LocalFiles() {
    }

    public static FileSystem withoutChecksums(FileSystem fs) {
        return fs instanceof ChecksumFileSystem checksummed ? checksummed.getRawFileSystem() : fs;
    }
}
