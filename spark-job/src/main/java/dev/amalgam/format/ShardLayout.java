package dev.amalgam.format;

import java.util.ArrayList;
import java.util.List;
import java.util.function.ToLongFunction;

/**
 * The hub's sharding convention: shards filled greedily in order, a tensor larger than the limit
 * alone in its own shard, files named {@code model-00001-of-00005.safetensors}, or
 * {@code model.safetensors} when there is one.
 */
public final class ShardLayout {
    private ShardLayout() {
    }

    public static <T> List<List<T>> greedy(List<T> tensors, ToLongFunction<T> bytes, long limit) {
        List<List<T>> shards = new ArrayList<>();
        List<T> current = new ArrayList<>();
        long size = 0;
        for (T t : tensors) {
            if (!current.isEmpty() && size + bytes.applyAsLong(t) > limit) {
                shards.add(current);
                current = new ArrayList<>();
                size = 0;
            }
            current.add(t);
            size += bytes.applyAsLong(t);
        }
        shards.add(current);
        return shards;
    }

    public static String fileName(int shard, int shards) {
        return shards == 1 ? CheckpointReader.SINGLE_FILE
                : String.format("model-%05d-of-%05d.safetensors", shard + 1, shards);
    }
}
