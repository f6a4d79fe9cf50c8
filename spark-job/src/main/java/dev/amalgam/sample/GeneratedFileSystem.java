package dev.amalgam.sample;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.amalgam.format.CheckpointWriter.Spec;
import dev.amalgam.format.SafetensorsHeader;
import dev.amalgam.format.ShardIndex;
import dev.amalgam.format.ShardLayout;
import dev.amalgam.format.TensorEntry;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.kernels.ElementCodec;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FSInputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.util.Progressable;

import java.io.EOFException;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.net.URI;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A read-only Hadoop file system of generated checkpoints in the layouts of real large models
 * ({@link ModelLayout}): {@code amalgam-gen:///qwen2-72b/base/} is a Qwen2-72B checkpoint (shards,
 * index, config.json) whose bytes are computed on read from (variant, tensor, element), so a 145 GB
 * model costs no disk and reads the same on every executor. {@code qwen2-72b-4layers} keeps the
 * first four layers; any variant name other than {@code base} is a fine-tune of it (the base's
 * values plus a small delta of its own). For planning, memory and throughput measurements
 * ({@code bench --layout}); registered for the scheme through the service loader.
 */
public final class GeneratedFileSystem extends FileSystem {
    public static final String SCHEME = "amalgam-gen";
    /** Shards of at most this many bytes, as the hub's checkpoints are cut. */
    static final long SHARD_BYTES = 5_000_000_000L;
    private static final Pattern MODEL = Pattern.compile("/([a-z0-9.-]+?)(?:-(\\d+)layers)?/([A-Za-z0-9_.-]+)");
    private static final Map<String, Structure> STRUCTURES = new ConcurrentHashMap<>();

    private URI uri;
    private Path workingDirectory = new Path("/");

    @Override
    public String getScheme() {
        return SCHEME;
    }

    @Override
    public void initialize(URI name, org.apache.hadoop.conf.Configuration conf) throws IOException {
        super.initialize(name, conf);
        this.uri = URI.create(SCHEME + ":///");
        setConf(conf);
    }

    @Override
    public URI getUri() {
        return uri;
    }

    /** One layout's files, shared by its variants (only the values differ). */
    static final class Structure {
        final Map<String, byte[]> small = new LinkedHashMap<>();
        final Map<String, Shard> shards = new LinkedHashMap<>();

        Structure(ModelLayout layout, int layers) {
            List<Spec> specs = layout.tensors(layers);
            List<List<Spec>> cut = ShardLayout.greedy(specs, Spec::bytes, SHARD_BYTES);
            Map<String, String> weightMap = new LinkedHashMap<>();
            long total = 0;
            for (int i = 0; i < cut.size(); i++) {
                String file = ShardLayout.fileName(i, cut.size());
                Shard shard = new Shard(cut.get(i), i);
                shards.put(file, shard);
                cut.get(i).forEach(s -> weightMap.put(s.name(), file));
                total += shard.dataBytes;
            }
            small.put("model.safetensors.index.json", ShardIndex.encode(weightMap, total));
            try {
                small.put("config.json", new ObjectMapper().writerWithDefaultPrettyPrinter()
                        .writeValueAsBytes(layout.config(layers)));
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        }
    }

    /** One shard: its header block and where each tensor's bytes begin. */
    static final class Shard {
        final byte[] header;
        final Spec[] specs;
        final long[] begins;
        final int[] ids;
        final long dataBytes;

        Shard(List<Spec> specs, int shardIndex) {
            this.specs = specs.toArray(Spec[]::new);
            this.begins = new long[specs.size()];
            this.ids = new int[specs.size()];
            List<TensorEntry> entries = new ArrayList<>();
            long offset = 0;
            for (int i = 0; i < specs.size(); i++) {
                Spec s = specs.get(i);
                begins[i] = offset;
                ids[i] = s.name().hashCode();
                entries.add(new TensorEntry(s.name(), s.dtype(), s.shape(), offset, offset + s.bytes()));
                offset += s.bytes();
            }
            this.dataBytes = offset;
            this.header = SafetensorsHeader.encode(entries, Map.of("format", "pt"));
        }

        long length() {
            return header.length + dataBytes;
        }

        /** Fills {@code out[off, off + len)} with the shard's bytes from {@code position}. */
        void read(long variant, long position, byte[] out, int off, int len) {
            int done = 0;
            while (done < len) {
                long at = position + done;
                if (at < header.length) {
                    int n = (int) Math.min(len - done, header.length - at);
                    System.arraycopy(header, (int) at, out, off + done, n);
                    done += n;
                    continue;
                }
                long data = at - header.length;
                int t = Arrays.binarySearch(begins, data);
                t = t >= 0 ? t : -t - 2;
                Spec s = specs[t];
                long inTensor = data - begins[t];
                int n = (int) Math.min(len - done, s.bytes() - inTensor);
                Values.fill(s, ids[t], variant, inTensor, out, off + done, n);
                done += n;
            }
        }
    }

    /** Deterministic values: a base value per element plus, for a fine-tune, a small delta of its own. */
    static final class Values {
        private Values() {
        }

        static void fill(Spec s, int tensor, long variant, long byteOffset, byte[] out, int off, int len) {
            int width = s.dtype().byteSize();
            long first = byteOffset / width;
            long last = (byteOffset + len - 1) / width;
            boolean vector = s.shape().length == 1;
            for (long e = first; e <= last; e++) {
                long bits = element(s.dtype(), s.name(), tensor, variant, e, vector);
                for (int b = 0; b < width; b++) {
                    long at = e * width + b - byteOffset;
                    if (at >= 0 && at < len) {
                        out[off + (int) at] = (byte) (bits >>> (8 * b));
                    }
                }
            }
        }

        private static long element(Dtype dtype, String name, int tensor, long variant, long e, boolean vector) {
            long h = mix(tensor * 0x9E3779B97F4A7C15L + e);
            float base = vector ? 1.0f + (h & 0xff) / 4096.0f : ((int) (h >> 40) / (float) (1 << 23)) * 0.02f;
            float value = base;
            if (variant != 0) {
                long d = mix(h ^ variant);
                // A fine-tune moves most weights a little: deltas of a few levels, both signs.
                value = base + (((int) (d & 7)) - 3.5f) * 2.5e-4f;
            }
            return switch (dtype) {
                case BF16 -> ElementCodec.floatToBfloat16(value) & 0xffffL;
                case F16 -> ElementCodec.floatToHalf(value) & 0xffffL;
                case F32 -> name.endsWith("_scale_inv")
                        ? Float.floatToRawIntBits(Math.scalb(1.0f + (h & 15) / 16.0f, -8)) & 0xffffffffL
                        : Float.floatToRawIntBits(value) & 0xffffffffL;
                case F8_E4M3, F8_E5M2 -> {
                    int b = (int) (h & 0xff);
                    if (variant != 0 && (mix(h ^ variant) & 3) == 0) {
                        b ^= 1;
                    }
                    yield (b & 0x7f) == 0x7f ? b - 1 : b;
                }
                case U8 -> h & 0xff;
            };
        }

        static long mix(long z) {
            z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
            z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
            return z ^ (z >>> 31);
        }
    }

    /** A checkpoint directory of this file system: its structure and its variant's seed. */
    private record Model(String directory, Structure structure, long variant) {
    }

    private static Model model(Path path) throws FileNotFoundException {
        String p = path.toUri().getPath();
        Matcher m = MODEL.matcher(p.endsWith("/") ? p.substring(0, p.length() - 1) : p);
        if (!m.matches()) {
            throw new FileNotFoundException(path + ": not a generated checkpoint directory "
                    + "(amalgam-gen:///<layout>[-<N>layers]/<variant>)");
        }
        ModelLayout layout;
        try {
            layout = ModelLayout.of(m.group(1));
        } catch (IllegalArgumentException e) {
            throw new FileNotFoundException(path + ": " + e.getMessage());
        }
        int layers = m.group(2) == null ? -1 : Integer.parseInt(m.group(2));
        String key = layout.id() + "/" + layers;
        Structure structure = STRUCTURES.computeIfAbsent(key, k -> new Structure(layout, layers));
        String variant = m.group(3);
        return new Model(m.group(0), structure, variant.equals("base") ? 0 : mix(variant));
    }

    private static long mix(String variant) {
        long h = Values.mix(variant.hashCode() * 31L + variant.length());
        return h == 0 ? 1 : h;
    }

    @Override
    public FileStatus getFileStatus(Path f) throws IOException {
        Path q = makeQualified(f);
        String p = q.toUri().getPath();
        if (p.equals("/") || p.isEmpty() || p.chars().filter(c -> c == '/').count() == 1) {
            return new FileStatus(0, true, 1, 0, 0, q);
        }
        try {
            model(q);
            return new FileStatus(0, true, 1, 0, 0, q);
        } catch (FileNotFoundException notADirectory) {
            Model m = model(q.getParent());
            String name = q.getName();
            long length = m.structure().small.containsKey(name) ? m.structure().small.get(name).length
                    : m.structure().shards.containsKey(name) ? m.structure().shards.get(name).length() : -1;
            if (length < 0) {
                throw new FileNotFoundException(q + ": no such file");
            }
            return new FileStatus(length, false, 1, 128L << 20, 0, q);
        }
    }

    @Override
    public FileStatus[] listStatus(Path f) throws IOException {
        Path q = makeQualified(f);
        Model m = model(q);
        List<FileStatus> out = new ArrayList<>();
        for (String name : m.structure().small.keySet()) {
            out.add(getFileStatus(new Path(q, name)));
        }
        for (String name : m.structure().shards.keySet()) {
            out.add(getFileStatus(new Path(q, name)));
        }
        return out.toArray(FileStatus[]::new);
    }

    @Override
    public FSDataInputStream open(Path f, int bufferSize) throws IOException {
        Path q = makeQualified(f);
        Model m = model(q.getParent());
        byte[] small = m.structure().small.get(q.getName());
        Shard shard = m.structure().shards.get(q.getName());
        if (small == null && shard == null) {
            throw new FileNotFoundException(q + ": no such file");
        }
        return new FSDataInputStream(new Generated(small, shard, m.variant()));
    }

    /** A seekable, positioned stream over one generated file. */
    private static final class Generated extends FSInputStream {
        private final byte[] small;
        private final Shard shard;
        private final long variant;
        private final long length;
        private long position;

        Generated(byte[] small, Shard shard, long variant) {
            this.small = small;
            this.shard = shard;
            this.variant = variant;
            this.length = small != null ? small.length : shard.length();
        }

        @Override
        public void seek(long pos) throws IOException {
            if (pos < 0 || pos > length) {
                throw new EOFException("seek to " + pos + " outside [0, " + length + "]");
            }
            position = pos;
        }

        @Override
        public long getPos() {
            return position;
        }

        @Override
        public boolean seekToNewSource(long targetPos) {
            return false;
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            int n = read(position, b, off, len);
            if (n > 0) {
                position += n;
            }
            return n;
        }

        @Override
        public int read(long pos, byte[] b, int off, int len) {
            if (pos >= length) {
                return -1;
            }
            int n = (int) Math.min(len, length - pos);
            if (small != null) {
                System.arraycopy(small, (int) pos, b, off, n);
            } else {
                shard.read(variant, pos, b, off, n);
            }
            return n;
        }
    }

    @Override
    public FSDataOutputStream create(Path f, FsPermission permission, boolean overwrite, int bufferSize,
                                     short replication, long blockSize, Progressable progress) throws IOException {
        throw new IOException(f + ": " + SCHEME + " is read-only; write the merge to another file system");
    }

    @Override
    public FSDataOutputStream append(Path f, int bufferSize, Progressable progress) throws IOException {
        throw new IOException(f + ": " + SCHEME + " is read-only");
    }

    @Override
    public boolean rename(Path src, Path dst) throws IOException {
        throw new IOException(src + ": " + SCHEME + " is read-only");
    }

    @Override
    public boolean delete(Path f, boolean recursive) throws IOException {
        throw new IOException(f + ": " + SCHEME + " is read-only");
    }

    @Override
    public void setWorkingDirectory(Path dir) {
        workingDirectory = dir;
    }

    @Override
    public Path getWorkingDirectory() {
        return workingDirectory;
    }

    @Override
    public boolean mkdirs(Path f, FsPermission permission) throws IOException {
        throw new IOException(f + ": " + SCHEME + " is read-only");
    }
}
