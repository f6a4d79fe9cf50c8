package dev.amalgam.job;

import dev.amalgam.kernels.Dtype;
import dev.amalgam.staging.WriteMode;
import dev.amalgam.testing.MergeFixture;
import dev.amalgam.testing.TestSpark;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.scheduler.SparkListenerStageSubmitted;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.assertj.core.api.Assertions.assertThat;

/** Every Spark job and stage of a merge says which step it is and which tensors it covers. */
class NamedSparkWorkTest {
    @TempDir
    Path temp;

    @Test
    void everyJobAndStageOfAMergeNamesItsStepAndTensorRange() throws Exception {
        MergeFixture f = MergeFixture.create(temp, Dtype.BF16, 2, 5_000);
        String config = f.config("ties.yml", "merge_method: ties\nbase_model: " + f.base + "\nmodels:\n"
                + "  - model: " + f.models.get(0) + "\n    parameters: {weight: 1.0, density: 0.5}\n"
                + "  - model: " + f.models.get(1) + "\n    parameters: {weight: 0.5, density: 0.7}\n");
        List<String> jobs = new CopyOnWriteArrayList<>();
        List<String> stages = new CopyOnWriteArrayList<>();
        SparkListener listener = new SparkListener() {
            @Override
            public void onJobStart(SparkListenerJobStart start) {
                jobs.add(String.valueOf(start.properties().getProperty("spark.job.description")));
            }

            @Override
            public void onStageSubmitted(SparkListenerStageSubmitted submitted) {
                stages.add(submitted.stageInfo().name());
            }
        };
        JavaSparkContext sc = TestSpark.context();
        sc.sc().addSparkListener(listener);
        try {
            // Cut tensors (statistics over chunks, with the sample) and part files (shards copied by executors).
            new MergeJob(sc).run(MergeRequest.of(config, f.out("merged")).withChunkElements(50)
                    .withWholeTensorStatistics(false).withWriteMode(WriteMode.PARTS).withShardBytes(4_000));
            sc.sc().listenerBus().waitUntilEmpty();
        } finally {
            sc.sc().removeSparkListener(listener);
        }
        String step = "(statistics round \\d+( \\(sample\\))?|merge|shard assembly)";
        assertThat(jobs).isNotEmpty().allMatch(d -> d.matches(step + ": .+"), "named like 'merge: 12 chunks of 3 tensors, ...'");
        assertThat(jobs).anyMatch(d -> d.startsWith("statistics round 0 (sample): "))
                .anyMatch(d -> d.startsWith("statistics round 0: "))
                .anyMatch(d -> d.matches("merge: \\d+ chunks of \\d+ tensors, '.+' \\.\\. '.+'"))
                .anyMatch(d -> d.startsWith("shard assembly: "));
        assertThat(stages).isNotEmpty().allMatch(jobs::contains, "each stage named as its job");
    }
}
