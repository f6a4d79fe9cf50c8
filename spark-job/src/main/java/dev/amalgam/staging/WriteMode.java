package dev.amalgam.staging;

/** How executors write output: chosen from the destination's file system, or forced. */
public enum WriteMode {
    /** Positioned writes on local file systems, part files elsewhere. */
    AUTO,
    /** Write chunks straight into pre-sized shard files; needs a local or POSIX path. */
    POSITIONED,
    /** One part file per chunk, assembled into shards by the commit. */
    PARTS
}
