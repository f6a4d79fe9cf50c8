package dev.amalgam.format;

import dev.amalgam.kernels.Dtype;
import dev.amalgam.kernels.ElementCodec;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Small runs of float-dtype values between their stored bytes and float32 on the heap: adapter
 * factors, embedding rows, gate vectors. Chunks go through the kernels' codecs instead.
 */
public final class FloatBytes {
    private FloatBytes() {
    }

    /** Little-endian values of a float dtype. */
    public static float[] decode(byte[] bytes, Dtype dtype) {
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[bytes.length / dtype.byteSize()];
        for (int i = 0; i < out.length; i++) {
            out[i] = switch (dtype) {
                case F32 -> b.getFloat();
                case BF16 -> ElementCodec.bfloat16ToFloat(b.getShort());
                case F16 -> ElementCodec.halfToFloat(b.getShort());
                default -> throw new IllegalArgumentException(dtype + " is not a float dtype");
            };
        }
        return out;
    }

    /** {@code values} in a float dtype, rounded to nearest even. */
    public static byte[] encode(float[] values, Dtype dtype) {
        ByteBuffer b = ByteBuffer.allocate(values.length * dtype.byteSize()).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            switch (dtype) {
                case F32 -> b.putFloat(v);
                case BF16 -> b.putShort(ElementCodec.floatToBfloat16(v));
                case F16 -> b.putShort(ElementCodec.floatToHalf(v));
                default -> throw new IllegalArgumentException(dtype + " is not a float dtype");
            }
        }
        return b.array();
    }
}
