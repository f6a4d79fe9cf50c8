package dev.amalgam.executor;

/**
 * A chunk task failed; the message names the tensor and element range, and the cause's message
 * the file. It travels back to the driver inside Spark's job failure.
 */
public final class ChunkFailedException extends RuntimeException {
    public ChunkFailedException(String tensor, long start, int count, Throwable cause) {
        super("tensor '" + tensor + "' elements [" + start + ", " + (start + count) + "): " + cause.getMessage(), cause);
    }
}
