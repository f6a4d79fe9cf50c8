package dev.amalgam.kernels.gpu;

import java.util.Arrays;

/**
 * The parameters of one launch, in the kernel's declaration order, each in a 64-bit slot with
 * its C type. Checked against {@link Kernel#signature()} at launch, so a parameter list that
 * drifts from the CUDA source fails in every test instead of corrupting memory on a GPU.
 */
public final class KernelArgs {
    /** C types of parameters, as one signature character each. */
    public static final char POINTER = 'p';
    public static final char INT = 'i';
    public static final char UINT = 'u';
    public static final char FLOAT = 'f';
    public static final char LONG = 'l';
    public static final char ULONG = 'L';

    private long[] slots = new long[8];
    private final StringBuilder types = new StringBuilder();

    public KernelArgs pointer(long address) {
        return add(POINTER, address);
    }

    public KernelArgs i32(int value) {
        return add(INT, value);
    }

    public KernelArgs u32(int bits) {
        return add(UINT, bits & 0xffffffffL);
    }

    public KernelArgs f32(float value) {
        return add(FLOAT, Float.floatToRawIntBits(value) & 0xffffffffL);
    }

    public KernelArgs i64(long value) {
        return add(LONG, value);
    }

    public KernelArgs u64(long value) {
        return add(ULONG, value);
    }

    public KernelArgs bool(boolean value) {
        return i32(value ? 1 : 0);
    }

    private KernelArgs add(char type, long value) {
        if (types.length() == slots.length) {
            slots = Arrays.copyOf(slots, slots.length * 2);
        }
        slots[types.length()] = value;
        types.append(type);
        return this;
    }

    public int size() {
        return types.length();
    }

    public char type(int i) {
        return types.charAt(i);
    }

    /** The raw 64-bit slot of parameter {@code i} (a float's bits, an int sign-extended). */
    public long slot(int i) {
        return slots[i];
    }

    public long[] slots() {
        return Arrays.copyOf(slots, types.length());
    }

    public String signature() {
        return types.toString();
    }
}
