package dev.amalgam.testing;

import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.PositionedReadable;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.fs.Seekable;

import java.io.FilterInputStream;
import java.io.IOException;
import java.net.URI;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The local file system under the scheme {@code faulty://}, whose positioned reads start
 * failing after a set number: a real I/O failure in the middle of a Spark stage, for tests of
 * what a failed run leaves behind. Header reads (plain reads at the start) always succeed.
 */
public final class FaultyFileSystem extends RawLocalFileSystem {
    /** A process started for a test sets the first failure with -Dfaulty.readsBeforeFailure=N. */
    public static final AtomicInteger READS_BEFORE_FAILURE = new AtomicInteger(
            Integer.getInteger("faulty.readsBeforeFailure", Integer.MAX_VALUE));
    private static final AtomicInteger READS = new AtomicInteger();

    private static final AtomicInteger FAILURES_LEFT = new AtomicInteger(Integer.MAX_VALUE);
    private static final AtomicInteger INJECTED = new AtomicInteger();

    /** How many positioned reads were made since the last failAfter / failOnceAfter. */
    public static int reads() {
        return READS.get();
    }

    /** How many reads failed since the last failAfter / failOnceAfter. */
    public static int injected() {
        return INJECTED.get();
    }

    /** Every positioned read after the first {@code reads} fails. */
    public static void failAfter(int reads) {
        READS.set(0);
        INJECTED.set(0);
        FAILURES_LEFT.set(Integer.MAX_VALUE);
        READS_BEFORE_FAILURE.set(reads);
    }

    /** Exactly one positioned read, the one after the first {@code reads}, fails: a transient fault. */
    public static void failOnceAfter(int reads) {
        READS.set(0);
        INJECTED.set(0);
        FAILURES_LEFT.set(1);
        READS_BEFORE_FAILURE.set(reads);
    }

    public static void heal() {
        READS_BEFORE_FAILURE.set(Integer.MAX_VALUE);
        FAILURES_LEFT.set(Integer.MAX_VALUE);
        REMAINING.set(-1);
        failRenamesTo = null;
    }

    private static final java.util.concurrent.atomic.AtomicLong REMAINING = new java.util.concurrent.atomic.AtomicLong(-1);
    private static volatile String failRenamesTo;

    /** The file system reports only {@code bytes} free, as a nearly full disk or quota would. */
    public static void reportRemaining(long bytes) {
        REMAINING.set(bytes);
    }

    /** Renames onto a path named {@code name} fail as a full disk or quota makes them fail on HDFS. */
    public static void failRenamesTo(String name) {
        failRenamesTo = name;
    }

    @Override
    public org.apache.hadoop.fs.FsStatus getStatus(Path p) throws IOException {
        long remaining = REMAINING.get();
        return remaining >= 0 ? new org.apache.hadoop.fs.FsStatus(remaining * 10, remaining * 9, remaining)
                : super.getStatus(new Path(p.toUri().getPath()));
    }

    @Override
    public boolean rename(Path src, Path dst) throws IOException {
        if (dst.getName().equals(failRenamesTo)) {
            throw new IOException("The DiskSpace quota of " + dst.getParent().toUri().getPath()
                    + " is exceeded (injected)");
        }
        return super.rename(new Path(src.toUri().getPath()), new Path(dst.toUri().getPath()));
    }

    @Override
    public URI getUri() {
        return URI.create("faulty:///");
    }

    @Override
    public String getScheme() {
        return "faulty";
    }

    /**
     * {@code fs.faulty.readDelayMs} (a Hadoop setting, so {@code spark.hadoop.fs.faulty.readDelayMs}
     * reaches executors in other processes) slows every positioned read down: a slow disk that
     * keeps a merge running long enough for a test to kill a process in the middle of it.
     */
    private long readDelayMs;

    @Override
    public void initialize(URI uri, org.apache.hadoop.conf.Configuration conf) throws IOException {
        super.initialize(uri, conf);
        readDelayMs = conf.getLong("fs.faulty.readDelayMs", 0);
    }

    @Override
    public FSDataInputStream open(Path f, int bufferSize) throws IOException {
        FSDataInputStream real = super.open(new Path(f.toUri().getPath()), bufferSize);
        return new FSDataInputStream(new Failing(real, readDelayMs));
    }

    @Override
    public Path makeQualified(Path path) {
        return new Path("faulty://" + path.toUri().getPath());
    }

    @Override
    protected void checkPath(Path path) {
    }

    @Override
    public org.apache.hadoop.fs.FileStatus getFileStatus(Path f) throws IOException {
        org.apache.hadoop.fs.FileStatus s = super.getFileStatus(new Path(f.toUri().getPath()));
        s.setPath(makeQualified(f));
        return s;
    }

    @Override
    public boolean exists(Path f) throws IOException {
        return super.exists(new Path(f.toUri().getPath()));
    }

    @Override
    public org.apache.hadoop.fs.FileStatus[] listStatus(Path f) throws IOException {
        org.apache.hadoop.fs.FileStatus[] all = super.listStatus(new Path(f.toUri().getPath()));
        for (org.apache.hadoop.fs.FileStatus s : all) {
            s.setPath(makeQualified(s.getPath()));
        }
        return all;
    }

    private static final class Failing extends FilterInputStream implements Seekable, PositionedReadable {
        private final FSDataInputStream real;
        private final long delayMs;

        Failing(FSDataInputStream real, long delayMs) {
            super(real);
            this.real = real;
            this.delayMs = delayMs;
        }

        private void maybeFail(long position) throws IOException {
            if (delayMs > 0) {
                try {
                    Thread.sleep(delayMs);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new java.io.InterruptedIOException("read interrupted");
                }
            }
            if (position > 0 && READS.incrementAndGet() > READS_BEFORE_FAILURE.get()
                    && FAILURES_LEFT.getAndDecrement() > 0) {
                INJECTED.incrementAndGet();
                throw new IOException("injected read failure at offset " + position);
            }
        }

        @Override
        public int read(long position, byte[] buffer, int offset, int length) throws IOException {
            maybeFail(position);
            return real.read(position, buffer, offset, length);
        }

        @Override
        public void readFully(long position, byte[] buffer, int offset, int length) throws IOException {
            if (position > 8 && length > 0) {
                maybeFail(position);
            }
            real.readFully(position, buffer, offset, length);
        }

        @Override
        public void readFully(long position, byte[] buffer) throws IOException {
            readFully(position, buffer, 0, buffer.length);
        }

        @Override
        public void seek(long pos) throws IOException {
            real.seek(pos);
        }

        @Override
        public long getPos() throws IOException {
            return real.getPos();
        }

        @Override
        public boolean seekToNewSource(long targetPos) throws IOException {
            return real.seekToNewSource(targetPos);
        }
    }
}
