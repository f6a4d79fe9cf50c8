package dev.amalgam.stats;

import dev.amalgam.method.StatisticRequest;

/**
 * What a statistic's result is filed under: the request and the tensor (or, for the per-chunk
 * equal counts of order statistics, the chunk) it was reduced over. A request reduced over more
 * than one tensor ({@link StatisticRequest#wide()}) is filed under {@link #WIDE}: its scope and
 * group already say which tensors it covers, so every member tensor finds the one result.
 */
public record StatisticKey(int owner, StatisticRequest request) {

    /** The owner of every request wider than a tensor. */
    public static final int WIDE = -1;

    /** Where tensor {@code tensor}'s request {@code request} is filed. */
    public static StatisticKey of(int tensor, StatisticRequest request) {
        return new StatisticKey(request.wide() ? WIDE : tensor, request);
    }

    public boolean wide() {
        return owner == WIDE;
    }
}
