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
        System.out.printf("%s: %d tensors, %d shard(s), %,d bytes of tensor data%n", checkpoint.directory(),
                checkpoint.tensors().size(), checkpoint.shardFiles().size(), checkpoint.totalBytes());
        int width = checkpoint.tensors().stream().mapToInt(t -> t.name().length()).max().orElse(4);
        System.out.printf("%-" + width + "s  %-5s  %-20s  %14s  %s%n", "NAME", "DTYPE", "SHAPE", "BYTES", "SHARD");
        for (StoredTensor t : checkpoint.tensors()) {
            System.out.printf("%-" + width + "s  %-5s  %-20s  %,14d  %s%n", t.name(), t.dtype().safetensorsName(),
                    Arrays.toString(t.shape()), t.byteLength(), new Path(t.file()).getName());
        }
        if (!checkpoint.sideFiles().isEmpty()) {
            System.out.println("side files: " + String.join(", ", checkpoint.sideFiles()));
        }
        return 0;
    }
}
