package dev.amalgam.format;

import dev.amalgam.kernels.Dtype;

/** Where one tensor of a checkpoint lives: file, absolute byte offset, dtype, shape. */
public record StoredTensor(String name, String file, long offset, Dtype dtype, long[] shape) {

    public long elements() {
        return TensorEntry.elementCount(shape);
    }

    public long byteLength() {
        return elements() * dtype.byteSize();
    }
}
