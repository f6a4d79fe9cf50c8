package dev.amalgam.merge;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * What merging one chunk observed, returned to the driver for the run report.
 *
 * @param iterations iterations an iterative method (karcher) took on the chunk's tensor, else 0
 * @param attempt the Spark attempt number of the task that reported it (0 unless a task was retried)
 * @param reused  true when the chunk was not merged again but found written and verified, by an
 *                earlier attempt or a killed run; the observations are the ones stored then
 * @param kernels the backend that merged it ("cpu", "cuda:0 ..."); sums of squares differ in
 *                their last bits between backends (they are added in another order), the merged
 *                bytes do not
 * @param deltaDots the dot product of each pair of models' deltas, in {@code ChunkMetrics.pair} order
 * @param nonFiniteIn NaN and infinite values the chunk's inputs held, per model, the base last
 * @param nonFiniteOut NaN and infinite values the merged chunk holds
 */
public record ChunkReport(int chunk, int tensor, long[] kept, double[] deltaSquares, double[] deltaDots, long signConflicts,
                          long elements, int iterations, int attempt, boolean reused, String kernels,
                          long[] nonFiniteIn, long nonFiniteOut) {

    public ChunkReport reusedBy(int attemptNumber) {
        return new ChunkReport(chunk, tensor, kept, deltaSquares, deltaDots, signConflicts, elements, iterations, attemptNumber, true,
                kernels, nonFiniteIn, nonFiniteOut);
    }

    /** Whether the chunk's inputs or its result hold NaN or infinite values. */
    public boolean hasNonFinite() {
        if (nonFiniteOut > 0) {
            return true;
        }
        for (long n : nonFiniteIn) {
            if (n > 0) {
                return true;
            }
        }
        return false;
    }

    /** The observations, for the chunk manifest. */
    public byte[] toBytes() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            out.writeInt(chunk);
            out.writeInt(tensor);
            out.writeInt(kept.length);
            for (int i = 0; i < kept.length; i++) {
                out.writeLong(kept[i]);
                out.writeDouble(deltaSquares[i]);
            }
            out.writeLong(signConflicts);
            out.writeLong(elements);
            out.writeInt(iterations);
            out.writeUTF(kernels);
            out.writeInt(nonFiniteIn.length);
            for (long n : nonFiniteIn) {
                out.writeLong(n);
            }
            out.writeLong(nonFiniteOut);
            out.writeInt(deltaDots.length);
            for (double d : deltaDots) {
                out.writeDouble(d);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return bytes.toByteArray();
    }

    public static ChunkReport fromBytes(byte[] content) {
        try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(content))) {
            int chunk = in.readInt();
            int tensor = in.readInt();
            int models = in.readInt();
            long[] kept = new long[models];
            double[] squares = new double[models];
            for (int i = 0; i < models; i++) {
                kept[i] = in.readLong();
                squares[i] = in.readDouble();
            }
            long conflicts = in.readLong();
            long elements = in.readLong();
            int iterations = in.readInt();
            String kernels = in.readUTF();
            long[] nonFiniteIn = new long[in.readInt()];
            for (int i = 0; i < nonFiniteIn.length; i++) {
                nonFiniteIn[i] = in.readLong();
            }
            long nonFiniteOut = in.readLong();
            // A record without the dots (an older version's) ends here: EOFException, merged again.
            double[] dots = new double[in.readInt()];
            for (int i = 0; i < dots.length; i++) {
                dots[i] = in.readDouble();
            }
            return new ChunkReport(chunk, tensor, kept, squares, dots, conflicts, elements, iterations, 0, false, kernels,
                    nonFiniteIn, nonFiniteOut);
        } catch (IOException e) {
            throw new UncheckedIOException("unreadable chunk report", e);
        }
    }
}
