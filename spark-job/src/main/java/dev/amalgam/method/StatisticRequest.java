package dev.amalgam.method;

import dev.amalgam.kernels.Operand;

import java.util.Objects;

/**
 * One statistic a method asks of a tensor: a reduction of one operand (or the product of two,
 * for {@link Reduction#DOT}) at a scope. {@code position} is the ascending order position for
 * {@link Reduction#ORDER} (0 otherwise), counted over the whole scope; {@code group} numbers the
 * group of a {@link Scope#GROUP} request (0 otherwise). The request itself is the key its result
 * is found by.
 */
public record StatisticRequest(Reduction reduction, Operand a, Operand b, long position, Scope scope, int group) {

    public StatisticRequest {
        Objects.requireNonNull(reduction, "reduction is null");
        Objects.requireNonNull(a, "a is null");
        Objects.requireNonNull(scope, "scope is null");
        if ((reduction == Reduction.DOT) != (b != null)) {
            throw new IllegalArgumentException("a DOT takes two operands, other reductions one: " + reduction);
        }
        if (reduction != Reduction.ORDER && position != 0) {
            throw new IllegalArgumentException("only ORDER has a position");
        }
        if (position < 0) {
            throw new IllegalArgumentException("an ORDER position is >= 0");
        }
        if (scope == Scope.GROUP_MEANS && reduction == Reduction.ORDER) {
            throw new IllegalArgumentException("GROUP_MEANS reduces sums, not order statistics");
        }
        if (scope != Scope.GROUP && scope != Scope.GROUP_MEANS && group != 0) {
            throw new IllegalArgumentException("only GROUP requests have a group number");
        }
    }

    /** The same statistic reduced over {@code scope} (group 0) instead of the tensor. */
    public StatisticRequest over(Scope scope) {
        return over(scope, 0);
    }

    /** The same statistic reduced over {@code scope}, group {@code group}. */
    public StatisticRequest over(Scope scope, int group) {
        return new StatisticRequest(reduction, a, b, position, scope, group);
    }

    /** Whether the result is reduced over more than the asking tensor. */
    public boolean wide() {
        return scope != Scope.TENSOR;
    }

    /**
     * Spark partitions shuffled statistics by this hash on every executor, so it must not depend
     * on the JVM: a record's own hash uses the enums' identity hashes, which differ between
     * executors and would split one key's partial sums across reducers.
     */
    @Override
    public int hashCode() {
        return Objects.hash(reduction.ordinal(), a, b, position, scope.ordinal(), group);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof StatisticRequest r && reduction == r.reduction && a.equals(r.a)
                && Objects.equals(b, r.b) && position == r.position && scope == r.scope && group == r.group;
    }

    public static StatisticRequest order(Operand a, long position) {
        return new StatisticRequest(Reduction.ORDER, a, null, position, Scope.TENSOR, 0);
    }

    public static StatisticRequest absSum(Operand a) {
        return new StatisticRequest(Reduction.ABS_SUM, a, null, 0, Scope.TENSOR, 0);
    }

    public static StatisticRequest dot(Operand a, Operand b) {
        return new StatisticRequest(Reduction.DOT, a, b, 0, Scope.TENSOR, 0);
    }

    public static StatisticRequest sum(Operand a) {
        return new StatisticRequest(Reduction.SUM, a, null, 0, Scope.TENSOR, 0);
    }

    public static StatisticRequest signSum(Operand a) {
        return new StatisticRequest(Reduction.SIGN_SUM, a, null, 0, Scope.TENSOR, 0);
    }

    public static StatisticRequest nonzero(Operand a) {
        return new StatisticRequest(Reduction.NONZERO, a, null, 0, Scope.TENSOR, 0);
    }
}
