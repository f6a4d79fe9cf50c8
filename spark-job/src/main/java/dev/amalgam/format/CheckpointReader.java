package dev.amalgam.format;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * Reads a checkpoint directory's headers (never its data) through the Hadoop FileSystem API:
 * {@code model.safetensors}, or {@code model.safetensors.index.json} and the shards it names.
 */
public final class CheckpointReader {
    public static final String SINGLE_FILE = "model.safetensors";
    public static final String INDEX_FILE = "model.safetensors.index.json";

    private static final ObjectMapper INDEX_JSON = new ObjectMapper()
            .enable(com.fasterxml.jackson.core.JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    private final Configuration hadoop;

    public CheckpointReader(Configuration hadoop) {
        this.hadoop = hadoop;
    }

    /** The tensors of one safetensors file (not a checkpoint directory), as its header gives them. */
    public List<StoredTensor> readFile(String file) {
        try {
            Path path = new Path(file);
            FileSystem fs = path.getFileSystem(hadoop);
            if (!fs.exists(path) || !LocalFiles.regularFile(fs, path)) {
                throw new FormatException(List.of(file + ": not found (expected a .safetensors file)"));
            }
            List<StoredTensor> tensors = new ArrayList<>();
            readShard(fs, path, tensors);
            return tensors;
        } catch (IOException e) {
            throw new FormatException(List.of(file + ": cannot be read: " + e.getMessage()));
        }
    }

    /** A JSON side file of a checkpoint (config.json), or null when it has none. */
    public JsonNode sideFile(Checkpoint checkpoint, String name) {
        Path file = new Path(checkpoint.sideFileDirectory(), name);
        try {
            FileSystem fs = file.getFileSystem(hadoop);
            if (!fs.exists(file)) {
                return null;
            }
            try (InputStream in = fs.open(file)) {
                return new ObjectMapper().readTree(in);
            }
        } catch (IOException e) {
            throw new FormatException(List.of(file + ": is not valid JSON: " + e.getMessage()));
        }
    }

    /** The file system configuration the reader reads through. */
    public Configuration hadoop() {
        return hadoop;
    }

    /** Reads and validates every header; all problems of the directory are reported together. */
    public Checkpoint read(String directory) {
        if (directory == null || directory.isBlank()) {
            throw new FormatException(List.of("a model path is empty; give a checkpoint directory (a local path, "
                    + "file://, hdfs:// or s3a://)"));
        }
        Path dir;
        try {
            dir = new Path(directory);
        } catch (IllegalArgumentException e) {
            throw new FormatException(List.of(directory + ": is not a usable path (" + e.getMessage() + ")"));
        }
        try {
            FileSystem fs = dir.getFileSystem(hadoop);
            int plus = directory.lastIndexOf('+');
            if (plus > 0 && plus < directory.length() - 1 && !fs.exists(dir)) {
                return readAdapted(directory, directory.substring(0, plus), directory.substring(plus + 1));
            }
            if (!fs.exists(dir) || !fs.getFileStatus(dir).isDirectory()) {
                throw new FormatException(List.of(directory + ": not a directory (expected a checkpoint directory "
                        + "holding " + SINGLE_FILE + " or " + INDEX_FILE + ")"));
            }
            List<String> sideFiles = new ArrayList<>();
            for (FileStatus status : fs.listStatus(dir)) {
                String name = status.getPath().getName();
                if (status.isFile() && !name.endsWith(".safetensors") && !name.equals(INDEX_FILE)) {
                    sideFiles.add(name);
                }
            }
            Path index = new Path(dir, INDEX_FILE);
            if (fs.exists(index)) {
                return readSharded(fs, dir, index, sideFiles);
            }
            Path single = new Path(dir, SINGLE_FILE);
            if (!fs.exists(single)) {
                throw new FormatException(List.of(directory + ": holds neither " + SINGLE_FILE + " nor " + INDEX_FILE));
            }
            if (!LocalFiles.regularFile(fs, single)) {
                throw new FormatException(List.of(single + ": is not a regular file (a FIFO, device or directory is "
                        + "never opened); put the checkpoint's safetensors file there"));
            }
            List<StoredTensor> tensors = new ArrayList<>();
            readShard(fs, single, tensors);
            return new Checkpoint(directory, List.of(single.toString()), quantized(fs, dir, tensors), sideFiles);
        } catch (IOException | IllegalArgumentException e) {
            throw new FormatException(List.of(directory + ": cannot be read: " + e.getMessage()));
        }
    }

    /**
     * {@code BASE+ADAPTER}, as the widely used tool writes a model with a LoRA adapter applied:
     * the base's tensors, those the adapter targets read as {@code W + s * B A}.
     */
    private Checkpoint readAdapted(String name, String baseDir, String adapterDir) throws IOException {
        Checkpoint base = read(baseDir);
        Path dir = new Path(adapterDir);
        FileSystem fs = dir.getFileSystem(hadoop);
        if (!fs.exists(dir) || !fs.getFileStatus(dir).isDirectory()) {
            throw new FormatException(List.of(name + ": the adapter " + adapterDir + " is not a directory (model: "
                    + "BASE+ADAPTER names a base checkpoint and a PEFT LoRA adapter directory)"));
        }
        List<String> problems = new ArrayList<>();
        LoraAdapters.Settings settings = LoraAdapters.settings(fs, dir, problems);
        Path weights = new Path(dir, LoraAdapters.WEIGHTS);
        if (!fs.exists(weights)) {
            problems.add(adapterDir + ": holds no " + LoraAdapters.WEIGHTS + " (the adapter's factors, as PEFT saves them)");
        } else if (!LocalFiles.regularFile(fs, weights)) {
            problems.add(weights + ": is not a regular file (a FIFO, device or directory is never opened)");
        }
        if (!problems.isEmpty()) {
            throw new FormatException(problems);
        }
        List<StoredTensor> factors = new ArrayList<>();
        readShard(fs, weights, factors);
        List<StoredTensor> tensors = LoraAdapters.apply(adapterDir, settings, base.tensors(), factors, problems);
        if (!problems.isEmpty()) {
            throw new FormatException(problems);
        }
        List<String> files = new ArrayList<>(base.shardFiles());
        files.add(weights.toString());
        List<String> sideFiles = new ArrayList<>(base.sideFiles());
        return new Checkpoint(name, files, tensors, sideFiles, baseDir);
    }

    /** The tensors as a model sees them: block-quantized pairs joined with their scales. */
    private static List<StoredTensor> quantized(FileSystem fs, Path dir, List<StoredTensor> tensors) throws IOException {
        if (tensors.stream().allMatch(t -> t.dtype().writable())) {
            return tensors;
        }
        JsonNode config = null;
        Path configFile = new Path(dir, "config.json");
        if (fs.exists(configFile)) {
            try (InputStream in = fs.open(configFile)) {
                config = new ObjectMapper().readTree(in);
            } catch (IOException e) {
                throw new FormatException(List.of(configFile + ": is not valid JSON: " + e.getMessage()));
            }
        }
        List<String> problems = new ArrayList<>();
        List<StoredTensor> paired = QuantizedLayouts.pair(dir.toString(), tensors, config, problems);
        if (!problems.isEmpty()) {
            throw new FormatException(problems);
        }
        return paired;
    }

    private Checkpoint readSharded(FileSystem fs, Path dir, Path index, List<String> sideFiles) throws IOException {
        if (!LocalFiles.regularFile(fs, index)) {
            throw new FormatException(List.of(index + ": is not a regular file (a FIFO, device or directory is never "
                    + "opened)"));
        }
        long indexBytes = fs.getFileStatus(index).getLen();
        if (indexBytes > SafetensorsHeader.MAX_HEADER_BYTES) {
            throw new FormatException(List.of(index + ": is " + indexBytes + " bytes, over the limit of "
                    + SafetensorsHeader.MAX_HEADER_BYTES + " (the largest public models' indexes are under 10 MB)"));
        }
        SafetensorsHeader.requireHeap(index.toString(), indexBytes);
        JsonNode root;
        try (InputStream in = fs.open(index)) {
            root = INDEX_JSON.readTree(in);
        } catch (IOException e) {
            throw new FormatException(List.of(index + ": is not valid JSON: " + e.getMessage()));
        } catch (OutOfMemoryError e) {
            throw SafetensorsHeader.tooLargeForHeap(index.toString(), indexBytes);
        }
        JsonNode weightMap = root == null ? null : root.get("weight_map");
        if (weightMap == null || !weightMap.isObject()) {
            throw new FormatException(List.of(index + ": has no weight_map object"));
        }
        Map<String, String> tensorToShard = new LinkedHashMap<>();
        Problems entryProblems = new Problems(index.toString());
        Iterator<Map.Entry<String, JsonNode>> it = weightMap.fields();
        while (it.hasNext()) {
            Map.Entry<String, JsonNode> e = it.next();
            String problem = ShardIndex.checkEntry(e.getValue());
            if (problem != null) {
                entryProblems.add(index + ": weight_map entry '" + e.getKey() + "': " + problem);
                continue;
            }
            tensorToShard.put(e.getKey(), e.getValue().asText());
        }
        entryProblems.throwIfAny();
        List<String> problems = new ArrayList<>();
        List<StoredTensor> tensors = new ArrayList<>();
        List<String> shardFiles = new ArrayList<>();
        for (String shard : new TreeSet<>(tensorToShard.values())) {
            Path shardPath = new Path(dir, shard);
            if (!fs.exists(shardPath)) {
                problems.add(index + ": weight_map names shard '" + shard + "', which does not exist in " + dir);
                continue;
            }
            if (!LocalFiles.regularFile(fs, shardPath)) {
                problems.add(index + ": weight_map names shard '" + shard + "', which is not a regular file (a FIFO, "
                        + "device or directory is never opened)");
                continue;
            }
            shardFiles.add(shardPath.toString());
            try {
                readShard(fs, shardPath, tensors);
            } catch (FormatException e) {
                problems.addAll(e.problems());
            }
        }
        if (problems.isEmpty()) {
            Problems mismatches = new Problems(index.toString());
            Map<String, StoredTensor> found = new LinkedHashMap<>();
            tensors.forEach(t -> found.put(t.name(), t));
            tensorToShard.forEach((tensor, shard) -> {
                StoredTensor t = found.get(tensor);
                if (t == null || !t.file().equals(new Path(dir, shard).toString())) {
                    mismatches.add(index + ": weight_map puts tensor '" + tensor + "' in " + shard
                            + ", but that shard does not hold it");
                }
            });
            for (StoredTensor t : tensors) {
                if (!tensorToShard.containsKey(t.name())) {
                    mismatches.add(t.file() + ": tensor '" + t.name() + "' is missing from " + index
                            + "'s weight_map; add it there or remove it from the shard");
                }
            }
            problems.addAll(mismatches.lines());
        }
        if (!problems.isEmpty()) {
            throw new FormatException(problems);
        }
        return new Checkpoint(dir.toString(), shardFiles, quantized(fs, dir, tensors), sideFiles);
    }

    private void readShard(FileSystem fs, Path file, List<StoredTensor> into) throws IOException {
        FileStatus status = fs.getFileStatus(file);
        long length = status.getLen();
        String name = file.toString();
        try (FSDataInputStream in = fs.open(file)) {
            byte[] prefix = new byte[8];
            if (length >= 8) {
                in.readFully(0, prefix);
            }
            long headerLength = SafetensorsHeader.headerLength(name, prefix, length);
            SafetensorsHeader.requireHeap(name, headerLength);
            byte[] header;
            try {
                header = new byte[(int) headerLength];
            } catch (OutOfMemoryError e) {
                throw SafetensorsHeader.tooLargeForHeap(name, headerLength);
            }
            in.readFully(8, header);
            SafetensorsHeader.Parsed parsed = SafetensorsHeader.parse(name, header, length);
            for (TensorEntry t : parsed.tensors()) {
                into.add(new StoredTensor(t.name(), name, parsed.dataStart() + t.begin(), t.dtype(), t.shape()));
            }
        }
    }
}
