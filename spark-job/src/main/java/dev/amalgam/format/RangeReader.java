package dev.amalgam.format;

import org.apache.arrow.memory.ArrowBuf;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.Path;

import java.io.Closeable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.HashMap;
import java.util.Map;

/**
 * Positioned reads of byte ranges into off-heap buffers, keeping one open stream per file for
 * the life of a task. Never reads a whole file.
 */
public final class RangeReader implements Closeable {
    private static final int STAGING_BYTES = 1 << 20;

    private final Configuration hadoop;
    private final Map<String, FSDataInputStream> open = new HashMap<>();
    private final byte[] staging = new byte[STAGING_BYTES];
    private long bytesRead;

    public RangeReader(Configuration hadoop) {
        this.hadoop = hadoop;
    }

    /** Reads {@code length} bytes of {@code file} at {@code offset} into {@code dst[0, length)}. */
    public void read(String file, long offset, long length, ArrowBuf dst) {
        try {
            FSDataInputStream in = stream(file);
            long done = 0;
            while (done < length) {
                int n = (int) Math.min(staging.length, length - done);
                in.readFully(offset + done, staging, 0, n);
                dst.setBytes(done, staging, 0, n);
                done += n;
            }
            bytesRead += length;
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot read bytes [" + offset + ", " + (offset + length)
                    + "): " + e.getMessage(), e);
        }
    }

    /** Reads {@code length} bytes of {@code file} at {@code offset} (small ranges: scales). */
    public byte[] readBytes(String file, long offset, int length) {
        byte[] out = new byte[length];
        try {
            stream(file).readFully(offset, out, 0, length);
            bytesRead += length;
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot read bytes [" + offset + ", " + (offset + length)
                    + "): " + e.getMessage(), e);
        }
    }

    private FSDataInputStream stream(String file) throws IOException {
        FSDataInputStream in = open.get(file);
        if (in == null) {
            Path path = new Path(file);
            in = LocalFiles.withoutChecksums(path.getFileSystem(hadoop)).open(path);
            open.put(file, in);
        }
        return in;
    }

    public long bytesRead() {
        return bytesRead;
    }

    @Override
    public void close() {
        for (FSDataInputStream in : open.values()) {
            try {
                in.close();
            } catch (IOException ignored) {
                // A failed close of a read-only stream loses nothing.
            }
        }
        open.clear();
    }
}
