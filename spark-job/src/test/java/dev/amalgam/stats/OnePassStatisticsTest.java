package dev.amalgam.stats;

import dev.amalgam.format.CheckpointWriter;
import dev.amalgam.job.MergeJob;
import dev.amalgam.job.MergeRequest;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.plan.Planner;
import dev.amalgam.testing.TestSpark;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.util.LongAccumulator;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.IntToDoubleFunction;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Order statistics over multi-chunk tensors come from a 1/64 sample and one full read, and are
 * the same, bit for bit, as the radix passes that read the tensor up to three times: on data
 * full of ties and sign conflicts, for every kind of ordered operand (a delta, two positions of
 * one delta, a variance across models, an importance), and also when the sample misleads.
 */
class OnePassStatisticsTest {
    private static final int CHUNK = 40_000;
    private static final int ROWS = 12;
    private static final int COLS = 16_384; // 196,608 elements: 5 chunks of whole rows

    @TempDir
    static Path temp;

    private record Run(StatisticsResult result, long bytesRead, long statisticsInputBytes) {
    }

    @ParameterizedTest
    @ValueSource(strings = {"ties", "breadcrumbs_ties", "sce", "arcee_fusion", "dare_ties"})
    void samePositionsValuesAndTieCountsAsTheRadixPasses(String method) throws Exception {
        Path config = write(method, "tied", i -> tied(i, 1), i -> tied(i, 2));
        Run onePass = statistics(config, true);
        Run radix = statistics(config, false);
        assertEquals(radix.result().orders(), onePass.result().orders());
        assertEquals(radix.result().equalsBefore(), onePass.result().equalsBefore());
        assertEquals(radix.result().values(), onePass.result().values());
        if (!method.equals("dare_ties")) {
            assertTrue(onePass.bytesRead() < radix.bytesRead(), "the sample's bands held every position: read "
                    + onePass.bytesRead() + " bytes against the radix passes' " + radix.bytesRead());
        } else {
            assertEquals(radix.bytesRead(), onePass.bytesRead(), "no order statistics, no sample");
        }
    }

    @Test
    void tiesReadsTheInputsOncePlusTheSample() throws Exception {
        Path config = write("ties", "reads", i -> tied(i, 1), i -> tied(i, 2));
        Run onePass = statistics(config, true);
        Run radix = statistics(config, false);
        assertTrue(onePass.result().orders().size() >= 2, "the test must exercise order statistics");
        double ratio = (double) onePass.bytesRead() / onePass.statisticsInputBytes();
        // Chunks this small are sampled at 16 blocks of 256 elements, an eighth; 4M-element chunks at 1/64.
        double sampleShare = (double) OrderBands.BLOCKS * OrderBands.MIN_BLOCK / (COLS * 2);
        assertTrue(ratio <= 1.0 + sampleShare + 1e-9, "one full read plus the sample, was " + ratio);
        assertTrue(ratio >= 1.0, "every byte is read once, was " + ratio);
        assertTrue(radix.bytesRead() >= 2 * onePass.statisticsInputBytes(), "the radix passes read more");
    }

    @Test
    void deltasClusteredAtFewLevelsWithTheThresholdBetweenClustersNeedNoSecondRead() throws Exception {
        // |delta| near k/256 for k = 0..7 (bf16 rounding smears each level over a few buckets, and
        // dozens of empty buckets lie between levels); density 0.5 puts the threshold at the gap
        // between levels 3 and 4, so the band must hold buckets on both sides of it.
        Path config = write("ties", "clustered", i -> clustered(i, 1), i -> clustered(i, 2));
        Files.writeString(config, Files.readString(config).replace("density: 0.37", "density: 0.5")
                .replace("density: 0.61", "density: 0.5"));
        Run onePass = statistics(config, true);
        Run radix = statistics(config, false);
        assertEquals(radix.result().orders(), onePass.result().orders());
        assertEquals(radix.result().equalsBefore(), onePass.result().equalsBefore());
        double sampleShare = (double) OrderBands.BLOCKS * OrderBands.MIN_BLOCK / (COLS * 2);
        assertTrue(onePass.bytesRead() <= (1.0 + sampleShare) * onePass.statisticsInputBytes() + 1,
                "no second read: " + onePass.bytesRead());
    }

    @Test
    void aMisleadingSampleFallsBackToTheRadixPassesWithTheSameResult() throws Exception {
        // Small magnitudes exactly where the sample's blocks lie, large ones everywhere else:
        // the band brackets the wrong buckets, and the full read shows it.
        Path config = write("ties", "misleading", i -> misleading(i, 1), i -> misleading(i, -1));
        Run onePass = statistics(config, true);
        Run radix = statistics(config, false);
        assertEquals(radix.result().orders(), onePass.result().orders());
        assertEquals(radix.result().equalsBefore(), onePass.result().equalsBefore());
        assertTrue(onePass.bytesRead() > onePass.statisticsInputBytes() * 3 / 2,
                "the missed statistics were read again: " + onePass.bytesRead());
    }

    /** Magnitudes from a few values (ties everywhere) with both signs, per model. */
    private static double tied(int i, int model) {
        int h = (i * 0x9E3779B1 + model * 0x85EBCA6B) >>> 7;
        return ((h % 23) + 1) * 0.125 * ((h & 1) == 0 ? 1 : -1);
    }

    private static double clustered(int i, int model) {
        long h = (i * 0x9E3779B97F4A7C15L + model * 0xBF58476D1CE4E5B9L) >>> 20;
        double base = ((h >>> 8) % 1000 - 500) * 4e-5;
        int level = (int) (h % 8);
        float tuned = (float) (base + ((h & 256) == 0 ? 1 : -1) * level / 256.0);
        // Stored as bf16 would be, then the base (0) subtracted: the delta is the rounded value.
        return dev.amalgam.kernels.ElementCodec.bfloat16ToFloat(dev.amalgam.kernels.ElementCodec.floatToBfloat16(tuned));
    }

    private static double misleading(int i, int sign) {
        int inChunk = (i % (COLS * 2)); // chunks hold two rows
        int length = OrderBands.MIN_BLOCK;
        int count = COLS * 2;
        for (int b = 0; b < OrderBands.BLOCKS; b++) {
            long offset = (long) b * (count - Math.max(length, count / (OrderBands.SAMPLE_SHARE * OrderBands.BLOCKS)))
                    / (OrderBands.BLOCKS - 1);
            if (inChunk >= offset && inChunk < offset + length) {
                return sign * 0.001 * (1 + i % 3);
            }
        }
        return sign * (100 + i % 7);
    }

    private Run statistics(Path config, boolean onePass) {
        JavaSparkContext sc = TestSpark.context();
        MergeJob job = new MergeJob(sc);
        MergeJob.Inspection inspection = job.inspect(MergeRequest.of(config.toString(), temp + "/unused")
                .withChunkElements(COLS * 2).withWholeTensorStatistics(false));
        Planner.Planned planned = inspection.planned();
        LongAccumulator read = sc.sc().longAccumulator();
        StatisticsResult result = StatisticsStage.run(sc, sc.broadcast(planned.plan()), planned.plan(),
                planned.method(), 3, read, onePass, PassListener.SILENT);
        long tensorBytes = (long) ROWS * COLS * 4;
        return new Run(result, read.value(), tensorBytes * 3);
    }

    private static Path write(String method, String name, IntToDoubleFunction a, IntToDoubleFunction b)
            throws Exception {
        Configuration hadoop = new Configuration();
        Path dir = temp.resolve(name + "-" + method);
        List<CheckpointWriter.Spec> specs = List.of(new CheckpointWriter.Spec("w", Dtype.F32, new long[]{ROWS, COLS}));
        CheckpointWriter.write(hadoop, dir + "/base", specs, Long.MAX_VALUE, s -> floats(i -> 0.0));
        CheckpointWriter.write(hadoop, dir + "/a", specs, Long.MAX_VALUE, s -> floats(a));
        CheckpointWriter.write(hadoop, dir + "/b", specs, Long.MAX_VALUE, s -> floats(b));
        String parameters = switch (method) {
            case "sce" -> "parameters: {select_topk: 0.3}\n";
            case "arcee_fusion" -> "";
            default -> "";
        };
        String models = switch (method) {
            case "arcee_fusion" -> "models:\n  - model: " + dir + "/a\n";
            case "sce" -> "models:\n  - model: " + dir + "/a\n  - model: " + dir + "/b\n";
            case "dare_ties" -> "models:\n  - model: " + dir + "/a\n    parameters: {weight: 1.0, density: 0.4}\n"
                    + "  - model: " + dir + "/b\n    parameters: {weight: 0.5, density: 0.7}\n"
                    + "parameters: {rescale: true}\n";
            default -> {
                String gammas = method.equals("breadcrumbs_ties") ? ", gamma: 0.05" : "";
                yield "models:\n  - model: " + dir + "/a\n    parameters: {weight: 1.0, density: 0.37" + gammas + "}\n"
                        + "  - model: " + dir + "/b\n    parameters: {weight: 0.5, density: 0.61" + gammas + "}\n";
            }
        };
        Path config = dir.resolve("merge.yml");
        Files.writeString(config, "merge_method: " + method + "\nbase_model: " + dir + "/base\n" + models + parameters);
        return config;
    }

    private static ByteBuffer floats(IntToDoubleFunction values) {
        ByteBuffer bytes = ByteBuffer.allocate(ROWS * COLS * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < ROWS * COLS; i++) {
            bytes.putFloat((float) values.applyAsDouble(i));
        }
        return bytes.flip();
    }
}
