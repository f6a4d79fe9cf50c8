package dev.amalgam.format;

import dev.amalgam.kernels.Dtype;

/**
 * Where one tensor of a checkpoint lives: file, absolute byte offset, dtype, shape, and for a
 * block-quantized tensor the scales its bytes are read with (null for plain floats). The shape is
 * the tensor's as a model sees it (an MXFP4 tensor's unpacked shape).
 *
 * @param values the values themselves (little-endian, in {@code dtype}) when the plan generates them
 *               (an MoE router, a zero bias), else null; {@code file} then says what made them
 * @param rowMap null, or how the rows of this embedding or head are taken for another vocabulary
 */
public record StoredTensor(String name, String file, long offset, Dtype dtype, long[] shape,
                           Quantization quantization, LowRank lowRank, byte[] values, RowMap rowMap) {

    public StoredTensor(String name, String file, long offset, Dtype dtype, long[] shape) {
        this(name, file, offset, dtype, shape, null, null, null, null);
    }

    public StoredTensor(String name, String file, long offset, Dtype dtype, long[] shape, Quantization quantization) {
        this(name, file, offset, dtype, shape, quantization, null, null, null);
    }

    public StoredTensor(String name, String file, long offset, Dtype dtype, long[] shape, Quantization quantization,
                        LowRank lowRank) {
        this(name, file, offset, dtype, shape, quantization, lowRank, null, null);
    }

    /** This embedding (or head) read through {@code map}: {@code rows} rows of the output vocabulary. */
    public StoredTensor remapped(long rows, RowMap map) {
        return new StoredTensor(name, file, offset, dtype, new long[]{rows, shape[1]}, null, null, null, map);
    }

    /**
     * Values made at planning time, held in the plan: small tensors only (routers are experts x
     * hidden), since every executor receives the plan.
     */
    public static StoredTensor generated(String name, String origin, long[] shape, float[] values) {
        return new StoredTensor(name, origin, 0, Dtype.F32, shape, null, null, FloatBytes.encode(values, Dtype.F32),
                null);
    }

    /** Whether the values are held in the plan rather than read from a file. */
    public boolean isGenerated() {
        return values != null;
    }

    /** The same tensor with a LoRA adapter applied on read. */
    public StoredTensor withLowRank(LowRank adapter) {
        return new StoredTensor(name, file, offset, dtype, shape, quantization, adapter, values, rowMap);
    }

    public long elements() {
        return TensorEntry.elementCount(shape);
    }

    /** Bytes of the stored values (MXFP4: half a byte each), not counting the scales. */
    public long dataBytes() {
        return quantization instanceof Quantization.Mxfp4 ? elements() / 2 : elements() * dtype.byteSize();
    }

    /** Bytes read to decode the whole tensor: its values, its scales, and its adapter's factors. */
    public long byteLength() {
        return dataBytes() + (quantization == null ? 0 : quantization.scales().byteLength())
                + (lowRank == null ? 0 : lowRank.a().byteLength() + lowRank.b().byteLength());
    }

    /** The same tensor read with {@code q}. */
    public StoredTensor withQuantization(String name, long[] shape, Quantization q) {
        return new StoredTensor(name, file, offset, dtype, shape, q, lowRank, values, rowMap);
    }
}
