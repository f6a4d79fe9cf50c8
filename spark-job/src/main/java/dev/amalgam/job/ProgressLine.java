package dev.amalgam.job;

import dev.amalgam.merge.MergeStage;

import java.io.PrintStream;
import java.time.Duration;

/** Prints "chunks done of total, GB/s, ETA" to stderr while the merge stage runs. */
final class ProgressLine implements AutoCloseable {
    private final Thread thread;
    private final PrintStream out = System.err;
    private final boolean console = System.console() != null;
    private volatile boolean running = true;

    ProgressLine(MergeStage.Progress progress, long totalChunks) {
        long start = System.nanoTime();
        this.thread = new Thread(() -> {
            long interval = console ? 1000 : 5000;
            while (running) {
                try {
                    Thread.sleep(interval);
                } catch (InterruptedException e) {
                    return;
                }
                if (running) {
                    print(progress, totalChunks, start);
                }
            }
        }, "amalgam-progress");
        thread.setDaemon(true);
        thread.start();
    }

    private void print(MergeStage.Progress progress, long total, long start) {
        long done = progress.chunks().value();
        double seconds = (System.nanoTime() - start) / 1e9;
        double gbPerSecond = progress.bytesRead().value() / 1e9 / Math.max(seconds, 1e-9);
        String eta = done == 0 ? "?" : format(Duration.ofSeconds((long) (seconds * (total - done) / done)));
        String line = String.format("merge: %d/%d chunks, %.2f GB/s read, ETA %s", done, total, gbPerSecond, eta);
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
