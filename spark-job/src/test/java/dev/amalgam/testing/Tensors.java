package dev.amalgam.testing;

import dev.amalgam.format.Checkpoint;
import dev.amalgam.format.CheckpointReader;
import dev.amalgam.format.StoredTensor;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.kernels.ElementCodec;
import org.apache.hadoop.conf.Configuration;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;

/** Reads whole tensors of a local checkpoint for assertions (tests only: whole tensors in memory). */
public final class Tensors {
    private Tensors() {
    }

    public static Checkpoint open(String dir) {
        return new CheckpointReader(new Configuration()).read(dir);
    }

    public static byte[] bytes(StoredTensor t) {
        String file = t.file().startsWith("file:") ? Path.of(URI.create(t.file())).toString() : t.file();
        try (RandomAccessFile raf = new RandomAccessFile(file, "r")) {
            byte[] out = new byte[(int) t.byteLength()];
            raf.seek(t.offset());
            raf.readFully(out);
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static float[] floats(StoredTensor t) {
        return decode(bytes(t), t.dtype());
    }

    public static Map<String, float[]> all(String dir) {
        Map<String, float[]> out = new LinkedHashMap<>();
        for (StoredTensor t : open(dir).tensors()) {
            out.put(t.name(), floats(t));
        }
        return out;
    }

    public static float[] decode(byte[] bytes, Dtype dtype) {
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[bytes.length / dtype.byteSize()];
        for (int i = 0; i < out.length; i++) {
            out[i] = switch (dtype) {
                case F32 -> b.getFloat();
                case BF16 -> ElementCodec.bfloat16ToFloat(b.getShort());
                case F16 -> ElementCodec.halfToFloat(b.getShort());
                default -> throw new IllegalArgumentException(dtype + " needs its scales to decode");
            };
        }
        return out;
    }

    public static byte[] encode(float[] values, Dtype dtype) {
        ByteBuffer b = ByteBuffer.allocate(values.length * dtype.byteSize()).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            switch (dtype) {
                case F32 -> b.putFloat(v);
                case BF16 -> b.putShort(ElementCodec.floatToBfloat16(v));
                case F16 -> b.putShort(ElementCodec.floatToHalf(v));
            }
        }
        return b.array();
    }

    /** A checkpoint's tokens in id order, from its tokenizer.json's vocabulary. */
    public static java.util.List<String> vocabulary(String dir) {
        try {
            com.fasterxml.jackson.databind.JsonNode vocab = new com.fasterxml.jackson.databind.ObjectMapper()
                    .readTree(Path.of(dir, "tokenizer.json").toFile()).get("model").get("vocab");
            String[] tokens = new String[vocab.size()];
            vocab.fields().forEachRemaining(e -> tokens[e.getValue().asInt()] = e.getKey());
            return java.util.List.of(tokens);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** SHA-256 of every .safetensors file in a directory, by file name. */
    public static Map<String, String> shardDigests(String dir) {
        Map<String, String> out = new java.util.TreeMap<>();
        try (Stream<Path> files = Files.list(Path.of(dir))) {
            for (Path p : files.filter(p -> p.toString().endsWith(".safetensors")).toList()) {
                MessageDigest sha = MessageDigest.getInstance("SHA-256");
                out.put(p.getFileName().toString(), HexFormat.of().formatHex(sha.digest(Files.readAllBytes(p))));
            }
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
        return out;
    }
}
