package dev.amalgam.method;

import dev.amalgam.kernels.KeepRule;

/**
 * The entry at one position of a tensor's ascending |x| order (a delta or a derived quantity):
 * its magnitude's bit pattern, how many entries are strictly smaller, and how many are equal to it.
 */
public record OrderStatistic(int valueBits, long below, long equal) {

    /** A rule that keeps nothing: a top-k above the largest possible magnitude. */
    public static final KeepRule.TopK KEEP_NOTHING = new KeepRule.TopK(Integer.MAX_VALUE, 0, 0);

    /**
     * The top-k rule keeping the entries at ascending positions {@code position} and above, this
     * being the statistic at {@code position}: everything larger, and of the entries equal to it
     * those of lower flat index first; {@code equalsBefore} counts the equal entries in earlier chunks.
     */
    public KeepRule.TopK keepFrom(long position, long equalsBefore) {
        return new KeepRule.TopK(valueBits, equal - (position - below), equalsBefore);
    }
}
