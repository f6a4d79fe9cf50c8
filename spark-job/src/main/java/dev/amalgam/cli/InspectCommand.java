package dev.amalgam.cli;

import dev.amalgam.AmalgamException;
import dev.amalgam.format.Checkpoint;
import dev.amalgam.format.CheckpointReader;
import dev.amalgam.format.FormatException;
import dev.amalgam.format.StoredTensor;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

import java.io.BufferedWriter;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.concurrent.Callable;

@Command(name = "inspect", description = "Lists a checkpoint's tensors, dtypes, shapes, sizes and shards (headers only).")
final class InspectCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "CHECKPOINT", description = "checkpoint directory (any Hadoop path)")
    String directory;

    @Override
    public Integer call() {
        Checkpoint checkpoint;
        try {
            checkpoint = new CheckpointReader(new Configuration()).read(directory);
        } catch (FormatException e) {
            throw new AmalgamException(AmalgamException.Kind.INPUT, e.problems());
        }
        // One flush at the end: a line-flushed stream takes minutes for a million tensors.
        PrintWriter out = new PrintWriter(new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8),
                1 << 16), false);
        out.printf("%s: %d tensors, %d shard(s), %,d bytes of tensor data%n", checkpoint.directory(),
                checkpoint.tensors().size(), checkpoint.shardFiles().size(), checkpoint.totalBytes());
        int width = checkpoint.tensors().stream().mapToInt(t -> t.name().length()).max().orElse(4);
        out.printf("%-" + width + "s  %-5s  %-20s  %14s  %s%n", "NAME", "DTYPE", "SHAPE", "BYTES", "SHARD");
        for (StoredTensor t : checkpoint.tensors()) {
            out.printf("%-" + width + "s  %-5s  %-20s  %,14d  %s%n", t.name(), t.dtype().safetensorsName(),
                    Arrays.toString(t.shape()), t.byteLength(), new Path(t.file()).getName());
        }
        if (!checkpoint.sideFiles().isEmpty()) {
            out.println("side files: " + String.join(", ", checkpoint.sideFiles()));
        }
        out.flush();
        return 0;
    }
}
