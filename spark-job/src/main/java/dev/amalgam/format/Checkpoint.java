package dev.amalgam.format;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A checkpoint directory as read from its headers: every tensor with its location, in file
 * order (shards in name order, tensors by offset), and the side files found beside them.
 *
 * @param directory         as the config names it ({@code BASE+ADAPTER} for a base with a LoRA adapter)
 * @param sideFileDirectory where {@code sideFiles} (config.json, the tokenizer) are: the base's
 */
public record Checkpoint(String directory, List<String> shardFiles, List<StoredTensor> tensors, List<String> sideFiles,
                         String sideFileDirectory) {

    public Checkpoint(String directory, List<String> shardFiles, List<StoredTensor> tensors, List<String> sideFiles) {
        this(directory, shardFiles, tensors, sideFiles, directory);
    }

    public Map<String, StoredTensor> byName() {
        Map<String, StoredTensor> map = new LinkedHashMap<>();
        for (StoredTensor t : tensors) {
            map.put(t.name(), t);
        }
        return map;
    }

    public long totalBytes() {
        return tensors.stream().mapToLong(StoredTensor::byteLength).sum();
    }
}
