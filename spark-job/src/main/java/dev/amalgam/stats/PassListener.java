package dev.amalgam.stats;

import org.apache.spark.util.LongAccumulator;

/** Hears of each pass the statistics stage makes over the inputs, to show progress while it runs. */
public interface PassListener {
    /**
     * A pass named {@code pass} over {@code chunks} chunks starts; {@code done} counts the chunks
     * finished and {@code bytesRead} the input bytes read. The returned handle is closed when it ends.
     */
    AutoCloseable started(String pass, long chunks, LongAccumulator done, LongAccumulator bytesRead);

    PassListener SILENT = (pass, chunks, done, bytesRead) -> () -> {
    };
}
