package dev.amalgam.staging;

import org.apache.arrow.memory.ArrowBuf;
import org.apache.hadoop.fs.FSDataInputStream;

import java.io.IOException;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

/** CRC-32C of a chunk's encoded bytes, in memory when written and on storage when verified. */
public final class Checksums {
    private static final int STAGING = 1 << 20;

    private Checksums() {
    }

    public static int crc32c(ArrowBuf bytes, long length) {
        CRC32C crc = new CRC32C();
        for (long done = 0; done < length; ) {
            int n = (int) Math.min(Integer.MAX_VALUE - 8, length - done);
            crc.update(bytes.nioBuffer(done, n).order(ByteOrder.LITTLE_ENDIAN));
            done += n;
        }
        return (int) crc.getValue();
    }

    static int crc32c(FSDataInputStream in, long offset, long length) throws IOException {
        CRC32C crc = new CRC32C();
        byte[] staging = new byte[(int) Math.min(STAGING, Math.max(1, length))];
        for (long done = 0; done < length; ) {
            int n = (int) Math.min(staging.length, length - done);
            in.readFully(offset + done, staging, 0, n);
            crc.update(staging, 0, n);
            done += n;
        }
        return (int) crc.getValue();
    }
}
