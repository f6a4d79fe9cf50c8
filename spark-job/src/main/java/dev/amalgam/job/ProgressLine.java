package dev.amalgam.job;

import org.apache.spark.util.LongAccumulator;

import java.io.PrintStream;
import java.time.Duration;

/**
 * Prints "step: chunks done of total, GB/s, ETA" to stderr while a pass over the chunks runs
 * (each statistics pass, the merge), every second on a console, every five seconds otherwise.
 */
final class ProgressLine implements AutoCloseable {
    private final Thread thread;
    private final PrintStream out = System.err;
    private final boolean console = System.console() != null;
    private volatile boolean running = true;

    ProgressLine(String step, LongAccumulator chunks, LongAccumulator bytesRead, long totalChunks) {
        long start = System.nanoTime();
        long readBefore = bytesRead.value();
        this.thread = new Thread(() -> {
            long interval = console ? 1000 : 5000;
            while (running) {
                try {
                    Thread.sleep(interval);
                } catch (InterruptedException e) {
                    return;
                }
                if (running) {
                    print(step, chunks.value(), bytesRead.value() - readBefore, totalChunks, start);
                }
            }
        }, "amalgam-progress");
        thread.setDaemon(true);
        thread.start();
    }

    private void print(String step, long done, long read, long total, long start) {
        double seconds = (System.nanoTime() - start) / 1e9;
        double gbPerSecond = read / 1e9 / Math.max(seconds, 1e-9);
        String eta = done == 0 ? "?" : format(Duration.ofSeconds((long) (seconds * (total - done) / done)));
        String line = String.format("%s: %d/%d chunks, %.2f GB/s read, ETA %s", step, done, total, gbPerSecond, eta);
        if (console) {
            out.print("\r" + line + "   ");
        } else {
            out.println(line);
        }
        out.flush();
    }

    private static String format(Duration d) {
        return String.format("%d:%02d:%02d", d.toHours(), d.toMinutesPart(), d.toSecondsPart());
    }

    @Override
    public void close() {
        running = false;
        thread.interrupt();
        if (console) {
            out.println();
        }
    }
}
