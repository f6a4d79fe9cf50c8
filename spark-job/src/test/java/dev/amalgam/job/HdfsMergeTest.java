package dev.amalgam.job;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.amalgam.AmalgamException;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.testing.MergeFixture;
import dev.amalgam.testing.TestSpark;
import dev.amalgam.testing.Tensors;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.hdfs.DFSTestUtil;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.hdfs.protocol.LocatedBlock;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.nio.file.Files;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Inputs and output on a real HDFS (NameNode and DataNode in this JVM). HDFS has no random
 * writes, so chunks go to part files that the commit concatenates; small blocks make every
 * checkpoint span many of them.
 */
class HdfsMergeTest {
    @TempDir
    static java.nio.file.Path temp;
    static MiniDFSCluster cluster;
    static FileSystem hdfs;
    static String root;
    static MergeFixture f;

    @BeforeAll
    static void start() throws Exception {
        Configuration conf = new Configuration();
        conf.setLong("dfs.namenode.fs-limits.min-block-size", 1024);
        conf.setLong("dfs.blocksize", 4096);
        // A read of a corrupt block is retried after a wait of about this many milliseconds.
        conf.setInt("dfs.client.retry.window.base", 10);
        cluster = new MiniDFSCluster.Builder(conf, temp.resolve("dfs").toFile()).numDataNodes(1).build();
        cluster.waitActive();
        // Cached per URI: the merge's own reads and writes use this client and its settings.
        hdfs = FileSystem.get(cluster.getURI(), conf);
        root = cluster.getURI() + "/amalgam";
        f = MergeFixture.create(temp.resolve("local"), Dtype.BF16, 2, 6_000);
        hdfs.copyFromLocalFile(new Path(f.root.toString()), new Path(root + "/models"));
    }

    @AfterAll
    static void stop() {
        if (cluster != null) {
            cluster.shutdown();
        }
    }

    private static String onHdfs(String localModel) {
        return root + "/models/" + java.nio.file.Path.of(localModel).getFileName();
    }

    private static String config(String name, String base, List<String> models) {
        String yaml = "merge_method: ties\nbase_model: " + base + "\nmodels:\n"
                + "  - model: " + models.get(0) + "\n    parameters: {weight: 1.0, density: 0.5}\n"
                + "  - model: " + models.get(1) + "\n    parameters: {weight: 0.7, density: 0.6}\n"
                + "parameters: {rescale: true}\n";
        return f.config(name, yaml);
    }

    private static Map<String, String> localDigests(String hdfsDir) throws Exception {
        File copy = temp.resolve("copy-" + System.nanoTime()).toFile();
        FileSystem.getLocal(new Configuration()).getRawFileSystem().mkdirs(new Path(copy.toString()));
        for (var status : hdfs.listStatus(new Path(hdfsDir))) {
            hdfs.copyToLocalFile(false, status.getPath(), new Path(copy.toString(), status.getPath().getName()), true);
        }
        return Tensors.shardDigests(copy.toString());
    }

    @Test
    void aMergeFromAndToHdfsGivesTheBytesOfTheLocalMerge() throws Exception {
        String local = f.out("local-merge");
        new MergeJob(TestSpark.context()).run(MergeRequest.of(config("local.yml", f.base, f.models), local)
                .withChunkElements(100).withWholeTensorStatistics(false).withShardBytes(5_000));

        String out = root + "/merged";
        String config = config("hdfs.yml", onHdfs(f.base), f.models.stream().map(HdfsMergeTest::onHdfs).toList());
        ObjectNode report = new MergeJob(TestSpark.context()).run(MergeRequest.of(config, out)
                .withChunkElements(500).withWholeTensorStatistics(false).withShardBytes(5_000)).report();
        System.out.println("HDFS merge: " + report.get("chunks") + " chunks, " + report.get("timings_seconds"));

        assertEquals("parts", report.get("write_mode").asText());
        assertEquals("concat", report.get("shard_assembly").asText());
        assertThat(report.get("shards").asInt()).isGreaterThan(1);
        assertEquals(Tensors.shardDigests(local), localDigests(out));
        assertFalse(hdfs.exists(new Path(root, ".amalgam-staging-merged")), "staging is gone once published");
        assertFalse(hdfs.exists(new Path(root, ".amalgam-lock-merged")));
    }

    @Test
    void aCorruptBlockFoundMidMergeFailsTheJobNamingFileAndTensorAndPublishesNothing() throws Exception {
        String model = root + "/corrupt";
        hdfs.mkdirs(new Path(model));
        FileSystem local = FileSystem.getLocal(new Configuration()).getRawFileSystem();
        for (var status : local.listStatus(new Path(f.models.get(1)))) {
            hdfs.copyFromLocalFile(status.getPath(), new Path(model, status.getPath().getName()));
        }
        Path shard = null;
        for (var status : hdfs.listStatus(new Path(model))) {
            if (status.getPath().getName().endsWith(".safetensors")
                    && (shard == null || status.getLen() > hdfs.getFileStatus(shard).getLen())) {
                shard = status.getPath();
            }
        }
        List<LocatedBlock> blocks = DFSTestUtil.getAllBlocks(hdfs, shard);
        assertThat(blocks.size()).isGreaterThan(1);
        // Not the first block: the header reads fine, the damage shows only when the data is read.
        assertThat(cluster.corruptBlockOnDataNodes(blocks.get(blocks.size() - 1).getBlock())).isPositive();

        String out = root + "/from-corrupt";
        String config = config("corrupt.yml", onHdfs(f.base), List.of(onHdfs(f.models.get(0)), model));
        AmalgamException e = assertThrows(AmalgamException.class, () -> new MergeJob(TestSpark.context())
                .run(MergeRequest.of(config, out).withChunkElements(100).withWholeTensorStatistics(false)));
        assertEquals(AmalgamException.Kind.EXECUTION, e.kind());
        assertThat(e.getMessage()).contains(shard.getName()).contains("tensor '").contains("nothing was published");
        assertFalse(hdfs.exists(new Path(out)));
        assertFalse(hdfs.exists(new Path(root, ".amalgam-lock-from-corrupt")));
    }
}
