package dev.amalgam.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.amalgam.job.MergeJob;
import dev.amalgam.job.MergeRequest;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.testing.FaultyFileSystem;
import dev.amalgam.testing.MergeFixture;
import dev.amalgam.testing.TestSpark;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** amalgam plan: what a merge will do, from the headers alone, matching what the merge then does. */
class PlanCommandTest {
    @TempDir
    Path temp;
    MergeFixture f;
    String config;

    @BeforeEach
    void generate() {
        f = MergeFixture.create(temp, Dtype.BF16, 2, 5_000);
        config = f.config("ties.yml", "merge_method: ties\nbase_model: faulty://" + f.base + "\nmodels:\n"
                + "  - model: faulty://" + f.models.get(0) + "\n    parameters: {weight: 1.0, density: 0.5}\n"
                + "  - model: faulty://" + f.models.get(1) + "\n    parameters: {weight: 0.5, density: 0.7}\n");
        System.setProperty("spark.hadoop.fs.faulty.impl", FaultyFileSystem.class.getName());
        System.setProperty("spark.hadoop.fs.faulty.impl.disable.cache", "true");
    }

    @AfterEach
    void heal() {
        FaultyFileSystem.heal();
        System.clearProperty("spark.hadoop.fs.faulty.impl");
        System.clearProperty("spark.hadoop.fs.faulty.impl.disable.cache");
    }

    private record Run(int exit, String out, String err) {
    }

    private static Run plan(String... args) {
        PrintStream out = System.out;
        PrintStream err = System.err;
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(o, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(e, true, StandardCharsets.UTF_8));
            String[] all = new String[args.length + 1];
            all[0] = "plan";
            System.arraycopy(args, 0, all, 1, args.length);
            int exit = AmalgamCli.execute(all);
            return new Run(exit, o.toString(StandardCharsets.UTF_8), e.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
    }

    @Test
    void thePlanReadsNoTensorDataAndAgreesWithTheMergeThatFollows() throws Exception {
        FaultyFileSystem.failAfter(0);
        Run run = plan(config, "--master", "local[2]", "--chunk-elements", "50", "--split-statistics-tensors",
                "--out-shard-size", "4000");
        assertEquals(0, run.exit(), run.err());
        assertEquals(0, FaultyFileSystem.reads(), "no positioned read: headers only");
        FaultyFileSystem.heal();

        String out = f.out("merged");
        new MergeJob(TestSpark.context()).run(MergeRequest.of(config, out).withChunkElements(50)
                .withWholeTensorStatistics(false).withShardBytes(4_000));
        JsonNode report = new ObjectMapper().readTree(new File(out, "amalgam-report.json"));
        assertThat(run.out()).contains("merge       ties of 2 models onto the base ")
                .contains(report.get("chunks").asLong() + " chunks of at most 50 elements")
                .contains("cut into chunks or reduced over more than their tensor, whose statistics read their inputs once "
                        + "more after a 1/64 sample")
                .contains("estimate");
        try (var shards = Files.list(Path.of(out))) {
            for (String shard : shards.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".safetensors")).toList()) {
                assertThat(run.out()).contains("      " + shard + "  ");
            }
        }
        assertThat(run.out()).contains(String.format(java.util.Locale.ROOT, "the inputs' %.1f kB once by the merge",
                report.get("input_bytes").asLong() / 1e3));
    }

    @Test
    void anEstimateComesFromWhatBenchMeasuredForTheMethod() throws Exception {
        String text = PlanDescription.of(MergeJob.inspect(new org.apache.hadoop.conf.Configuration(),
                        dev.amalgam.job.SparkSetup.conf("local[2]", "1g"), MergeRequest.of(f.config("plain.yml",
                                Files.readString(Path.of(config)).replace("faulty://", "")), null)),
                dev.amalgam.job.ResourceSettings.of(dev.amalgam.job.SparkSetup.conf("local[2]", "1g")), "local[2]", true,
                java.util.Optional.of(new BenchFigures.Figure("ties", 0.5, 0.25, "local[2]", 1.4, "2026-12-03T07:00:00Z")));
        assertThat(text).contains("at the 0.500 GB/s `bench` measured for ties on this machine (local[2], "
                + "2026-12-03T07:00:00Z").contains("and at 0.250 GB/s for a first merge");
    }

    @Test
    void benchFiguresAreKeptPerMethodAndReadBack() throws Exception {
        System.setProperty("amalgam.bench.figures", temp.resolve("figures/bench.json").toString());
        try {
            assertThat(BenchFigures.of("ties")).isEmpty();
            BenchFigures.record(new BenchFigures.Figure("ties", 0.7, 0.3, "local[2]", 1.4, null));
            BenchFigures.record(new BenchFigures.Figure("linear", 1.3, 0.5, "local[2]", 0.9, null));
            assertThat(BenchFigures.of("ties")).hasValueSatisfying(f -> assertThat(f.inputGbPerSecond()).isEqualTo(0.7));
            assertThat(BenchFigures.of("ties")).hasValueSatisfying(f -> assertThat(f.coldInputGbPerSecond()).isEqualTo(0.3));
            assertThat(BenchFigures.of("linear")).hasValueSatisfying(f -> assertThat(f.master()).isEqualTo("local[2]"));
            assertThat(BenchFigures.of("della")).isEmpty();
        } finally {
            System.clearProperty("amalgam.bench.figures");
        }
    }

    @Test
    void aConfigTheMergeWouldRefuseExitsAsTheMergeWould() throws Exception {
        Path bad = temp.resolve("bad.yml");
        Files.writeString(bad, "merge_method: ties\nbase_model: " + f.base + "\nmodels:\n  - model: " + temp.resolve("missing")
                + "\n    parameters: {weight: 1.0, density: 0.5}\n");
        Run run = plan(bad.toString(), "--master", "local[2]");
        assertEquals(3, run.exit(), run.err());
        assertThat(run.err()).contains(temp.resolve("missing").toString()).doesNotContain("\tat ");
        assertThat(run.out()).isEmpty();
    }
}
