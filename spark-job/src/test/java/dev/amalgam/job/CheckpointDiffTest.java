package dev.amalgam.job;

import dev.amalgam.format.CheckpointWriter;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.testing.TestSpark;
import dev.amalgam.testing.Tensors;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** amalgam diff against a whole-tensor reference computed here, and its handling of what cannot be compared. */
class CheckpointDiffTest {
    private static final long[] X = {4, 300};
    @TempDir
    Path temp;
    String a;
    String b;
    String base;

    private static ByteBuffer bytes(float[] v, Dtype d) {
        return ByteBuffer.wrap(Tensors.encode(v, d));
    }

    private void write(String dir, Dtype xDtype, float[] x, long yLength, String only) throws Exception {
        List<CheckpointWriter.Spec> specs = List.of(new CheckpointWriter.Spec("model.layers.0.x.weight", xDtype, X),
                new CheckpointWriter.Spec("model.layers.1.y.weight", Dtype.F32, new long[]{yLength}),
                new CheckpointWriter.Spec(only, Dtype.F32, new long[]{3}));
        CheckpointWriter.write(new Configuration(), dir, specs, Long.MAX_VALUE, s -> s.name().contains(".x.")
                ? bytes(x, xDtype) : bytes(new float[(int) s.shape()[0]], Dtype.F32));
    }

    @BeforeEach
    void checkpoints() throws Exception {
        write(Dtype.F32, "");
    }

    /** A base and A, B over it in {@code dtype}, with equal values, sign conflicts and plain differences. */
    private void write(Dtype dtype, String suffix) throws Exception {
        SplittableRandom r = new SplittableRandom(11);
        float[] c = new float[1200];
        float[] x = new float[1200];
        float[] y = new float[1200];
        for (int i = 0; i < c.length; i++) {
            c[i] = (float) r.nextGaussian();
            x[i] = c[i] + (float) r.nextGaussian() * 0.1f;
            // B: equal to A on a third of the values, a sign flip of the delta on another third.
            y[i] = i % 3 == 0 ? x[i] : i % 3 == 1 ? c[i] - (x[i] - c[i]) : c[i] + (float) r.nextGaussian() * 0.1f;
        }
        base = temp.resolve("base" + suffix).toString();
        a = temp.resolve("a" + suffix).toString();
        b = temp.resolve("b" + suffix).toString();
        write(base, dtype, c, 10, "only.base");
        write(a, dtype, x, 10, "only.a");
        write(b, dtype, y, 11, "only.b");
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.EnumSource(value = Dtype.class, names = {"F32", "F16", "BF16"})
    void figuresEqualAWholeTensorReference(Dtype dtype) throws Exception {
        write(dtype, "-" + dtype);
        CheckpointDiff.Result result = CheckpointDiff.run(TestSpark.context(), a, b, base, 50);
        Map<String, float[]> ta = Tensors.all(a);
        Map<String, float[]> tb = Tensors.all(b);
        Map<String, float[]> tc = Tensors.all(base);
        String name = "model.layers.0.x.weight";
        float[] x = ta.get(name);
        float[] y = tb.get(name);
        float[] c = tc.get(name);
        double aa = 0;
        double dd = 0;
        double xy = 0;
        double xx = 0;
        double yy = 0;
        double max = 0;
        long differing = 0;
        for (int i = 0; i < x.length; i++) {
            double d = (double) x[i] - y[i];
            aa += (double) x[i] * x[i];
            dd += d * d;
            double dx = (double) x[i] - c[i];
            double dy = (double) y[i] - c[i];
            xy += dx * dy;
            xx += dx * dx;
            yy += dy * dy;
            max = Math.max(max, Math.abs(d));
            differing += x[i] != y[i] ? 1 : 0;
        }
        CheckpointDiff.TensorDiff t = result.tensors().stream().filter(d -> d.name().equals(name)).findFirst().orElseThrow();
        assertThat(t.relativeL2()).isCloseTo(Math.sqrt(dd) / Math.sqrt(aa), org.assertj.core.data.Offset.offset(1e-12));
        assertThat(t.cosine()).isCloseTo(xy / Math.sqrt(xx * yy), org.assertj.core.data.Offset.offset(1e-12));
        assertEquals(max, t.maxAbsDifference());
        assertEquals(differing, t.differing());
        assertThat(t.differing()).isLessThanOrEqualTo(800).as("a third of the values are equal");
    }

    @Test
    void theChunkSizeChangesNothing() {
        CheckpointDiff.Result small = CheckpointDiff.run(TestSpark.context(), a, b, base, 7);
        CheckpointDiff.Result whole = CheckpointDiff.run(TestSpark.context(), a, b, base, 1 << 20);
        for (int i = 0; i < small.tensors().size(); i++) {
            CheckpointDiff.TensorDiff s = small.tensors().get(i);
            CheckpointDiff.TensorDiff w = whole.tensors().get(i);
            assertEquals(w.differing(), s.differing());
            assertEquals(w.maxAbsDifference(), s.maxAbsDifference());
            assertThat(s.relativeL2()).isCloseTo(w.relativeL2(), org.assertj.core.data.Offset.offset(1e-12));
        }
    }

    @Test
    void aCheckpointAgainstItselfIsIdentical() {
        CheckpointDiff.Result same = CheckpointDiff.run(TestSpark.context(), a, a, null, 100);
        assertThat(same.tensors()).allSatisfy(t -> {
            assertEquals(0, t.differing());
            assertEquals(0.0, t.relativeL2());
            assertThat(t.cosine()).isCloseTo(1.0, org.assertj.core.data.Offset.offset(1e-12));
        });
        assertEquals(0, same.differingTensors());
    }

    @Test
    void namesOnOneSideAndShapeMismatchesAreListedNotCompared() {
        CheckpointDiff.Result result = CheckpointDiff.run(TestSpark.context(), a, b, null, 100);
        assertEquals(List.of("only.a"), result.onlyInA());
        assertEquals(List.of("only.b"), result.onlyInB());
        assertThat(result.notCompared()).singleElement().asString().contains("model.layers.1.y.weight")
                .contains("[10] in A, [11] in B");
        assertThat(DiffReport.summary(result)).contains("only in A (1): only.a").contains("not compared (1)");
    }

    @Test
    void theCommandPrintsASummaryAndWritesJsonParquetAndHtml() throws Exception {
        Path out = temp.resolve("diff");
        dev.amalgam.testing.CliProcess.Run run = dev.amalgam.testing.CliProcess.run(temp, "diff", a, b, "--base", base,
                "--out", out.toString());
        assertEquals(0, run.exitCode(), run.stderr());
        assertThat(run.stdout()).contains("compared 1 tensor (1,200 values)").contains("1 tensor differs, 800 values").contains("only in B (1): only.b");
        assertThat(out.resolve(DiffReport.JSON)).exists();
        assertThat(Files.readString(out.resolve(DiffReport.HTML))).contains("<figure id=\"relative-l2\"><svg")
                .doesNotContain("<script");
        long rows = org.apache.spark.sql.SparkSession.builder().config(TestSpark.context().getConf()).getOrCreate()
                .read().parquet(out.resolve(DiffReport.PARQUET).toString()).count();
        assertEquals(1, rows, "one row per compared tensor");
        try (var left = Files.list(out)) {
            assertThat(left.map(p -> p.getFileName().toString()))
                    .containsExactlyInAnyOrder(DiffReport.JSON, DiffReport.HTML, DiffReport.PARQUET);
        }
    }

    @Test
    void anOutputDirectoryThatCannotBeWrittenExitsFourNamingIt() throws Exception {
        Path blocked = temp.resolve("not-a-directory");
        Files.writeString(blocked, "a file where the output directory would go");
        dev.amalgam.testing.CliProcess.Run run = dev.amalgam.testing.CliProcess.run(temp, "diff", a, b,
                "--out", blocked.toString());
        assertEquals(4, run.exitCode(), run.stderr());
        assertThat(run.stderr()).contains(blocked + ": cannot write the diff there").contains("choose another --out")
                .doesNotContain("\tat ");
        assertEquals("a file where the output directory would go", Files.readString(blocked));
    }

    @Test
    void aChunkSizeNoTaskCanUseIsRefusedNamingTheOption() {
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> CheckpointDiff.run(TestSpark.context(), a, b, null, 0))
                .isInstanceOf(dev.amalgam.AmalgamException.class).hasMessageContaining("--chunk-elements 0 is outside [1, ");
    }
}
