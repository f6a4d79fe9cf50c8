package dev.amalgam.method;

/**
 * The entry at one position of a tensor's ascending |delta| order: its magnitude's bit
 * pattern, how many entries are strictly smaller, and how many are equal to it.
 */
public record OrderStatistic(int valueBits, long below, long equal) {
}
