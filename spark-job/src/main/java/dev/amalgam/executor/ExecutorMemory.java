package dev.amalgam.executor;

import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.spark.SparkEnv;

/**
 * The one Arrow allocator of an executor JVM, with the hard limit the job was given
 * ({@value #LIMIT_KEY}). Every task takes a child of it and closes the child when done, so a
 * leaked buffer fails the task loudly instead of growing the executor.
 */
public final class ExecutorMemory {
    public static final String LIMIT_KEY = "spark.amalgam.executor.memoryLimit";
    public static final long DEFAULT_LIMIT = 4L << 30;

    private static BufferAllocator root;

    private ExecutorMemory() {
    }

    public static synchronized BufferAllocator root() {
        if (root == null) {
            long limit = DEFAULT_LIMIT;
            SparkEnv env = SparkEnv.get();
            if (env != null) {
                limit = env.conf().getSizeAsBytes(LIMIT_KEY, String.valueOf(DEFAULT_LIMIT));
            }
            root = new RootAllocator(limit);
        }
        return root;
    }

    /** Memory currently held by tasks of this executor. */
    public static synchronized long allocated() {
        return root == null ? 0 : root.getAllocatedMemory();
    }

    public static synchronized long peak() {
        return root == null ? 0 : root.getPeakMemoryAllocation();
    }
}
