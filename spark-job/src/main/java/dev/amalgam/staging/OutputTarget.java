package dev.amalgam.staging;

import java.io.Serializable;

/**
 * Where executors write: the staging directory (fully qualified) and how. Positioned writes go
 * straight into pre-sized shard files (local and POSIX file systems); otherwise each chunk
 * becomes a part file that the commit assembles in order.
 */
public record OutputTarget(String stagingDir, String[] shardFiles, boolean positioned) implements Serializable {
    public static final String PARTS_DIR = "_parts";

    public static String partName(int chunkIndex) {
        return String.format("chunk-%010d.part", chunkIndex);
    }
}
