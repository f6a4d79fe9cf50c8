package dev.amalgam.method;

/**
 * The results of the statistics a method asked of one tensor, as seen from one chunk: the
 * tensor-wide results of earlier rounds, and for order statistics how many entries equal to the
 * selected value precede the chunk (ties go by lower flat index). Looked up by the request.
 */
public interface TensorStatistics {

    /** The entry at the request's position, or null when it was not (yet) computed. */
    OrderStatistic order(StatisticRequest request);

    /** For an order statistic: entries equal to its value in the chunks before this one. */
    long equalsBefore(StatisticRequest request);

    /** A sum or dot product rounded once to float32, or an exact count; NaN when it was not computed. */
    double value(StatisticRequest request);

    /** Whether {@code request} has a result. */
    boolean has(StatisticRequest request);

    /** No results yet: what a method sees before its first round (the planner asks with it). */
    TensorStatistics NONE = new TensorStatistics() {
        @Override
        public OrderStatistic order(StatisticRequest request) {
            return null;
        }

        @Override
        public long equalsBefore(StatisticRequest request) {
            return 0;
        }

        @Override
        public double value(StatisticRequest request) {
            return Double.NaN;
        }

        @Override
        public boolean has(StatisticRequest request) {
            return false;
        }
    };
}
