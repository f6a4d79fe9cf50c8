package dev.amalgam.stats;

import dev.amalgam.method.StatisticRequest;

/**
 * What a statistic's result is filed under: the request and the tensor (or, for the per-chunk
 * equal counts of order statistics, the chunk) it was reduced over.
 */
public record StatisticKey(int owner, StatisticRequest request) {
}
