package dev.amalgam.format;

import dev.amalgam.kernels.Dtype;

import java.util.Arrays;

/** One tensor as a safetensors header describes it: offsets relative to the file's data area. */
public record TensorEntry(String name, Dtype dtype, long[] shape, long begin, long end) {

    public long elements() {
        return elementCount(shape);
    }

    public long byteLength() {
        return end - begin;
    }

    public static long elementCount(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    public String shapeText() {
        return Arrays.toString(shape);
    }
}
