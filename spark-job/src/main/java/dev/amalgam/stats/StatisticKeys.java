package dev.amalgam.stats;

/**
 * Packs (tensor or chunk, model, slot) into one long, the key statistics are reduced by.
 * Up to 2^14 models and 4 slots; tensors and chunks up to 2^47.
 */
public final class StatisticKeys {
    private StatisticKeys() {
    }

    public static long of(long tensorOrChunk, int model, int slot) {
        return (tensorOrChunk << 16) | ((long) model << 2) | slot;
    }

    public static int tensorOrChunk(long key) {
        return (int) (key >>> 16);
    }

    public static int model(long key) {
        return (int) ((key >>> 2) & 0x3fff);
    }

    public static int slot(long key) {
        return (int) (key & 3);
    }
}
