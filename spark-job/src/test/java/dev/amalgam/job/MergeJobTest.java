package dev.amalgam.job;

import dev.amalgam.executor.ChunkFailedException;
import org.apache.spark.SparkException;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.UncheckedIOException;

import static org.junit.jupiter.api.Assertions.assertEquals;

class MergeJobTest {

    @Test
    void defaultPartitionsGroupAboutEightChunksButKeepFourTasksPerCore() {
        assertEquals(125, MergeJob.defaultPartitions(1000, 2));
        assertEquals(8, MergeJob.defaultPartitions(40, 2), "at least four tasks per core");
        assertEquals(3, MergeJob.defaultPartitions(3, 2), "never more tasks than chunks");
        assertEquals(1, MergeJob.defaultPartitions(0, 2));
    }

    @Test
    void aChunkFailureMessageSurvivesSparksWrapping() {
        ChunkFailedException chunk = new ChunkFailedException("lm_head.weight", 0, 10,
                new UncheckedIOException("/m/model.safetensors: cannot read bytes [8, 48)", new IOException("gone")));
        SparkException wrapped = new SparkException("Job aborted due to stage failure: ...", chunk);
        assertEquals("tensor 'lm_head.weight' elements [0, 10): /m/model.safetensors: cannot read bytes [8, 48)",
                MergeJob.rootMessage(wrapped));
    }
}
