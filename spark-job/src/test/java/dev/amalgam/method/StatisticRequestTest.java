package dev.amalgam.method;

import dev.amalgam.kernels.Operand;
import org.junit.jupiter.api.Test;

import java.util.Objects;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/**
 * Statistics are shuffled by their request: its hash must be the same on every executor JVM, so
 * it is a function of the values alone (enum ordinals, not the enums' identity hashes).
 */
class StatisticRequestTest {

    @Test
    void theHashIsAFunctionOfTheValuesAlone() {
        StatisticRequest r = StatisticRequest.order(new Operand.Delta(1), 5);
        assertEquals(Objects.hash(Reduction.ORDER.ordinal(), new Operand.Delta(1), null, 5L, Scope.TENSOR.ordinal(), 0),
                r.hashCode());
        assertEquals(Objects.hash(Reduction.DOT.ordinal(), new Operand.Variance(), new Operand.Value(2), 0L,
                Scope.TENSOR.ordinal(), 0), StatisticRequest.dot(new Operand.Variance(), new Operand.Value(2)).hashCode());
        assertEquals(Objects.hash(Reduction.NONZERO.ordinal(), new Operand.Delta(0), null, 0L, Scope.GROUP.ordinal(), 7),
                StatisticRequest.nonzero(new Operand.Delta(0)).over(Scope.GROUP, 7).hashCode());
    }

    @Test
    void equalRequestsAreEqualAndDifferentOnesAreNot() {
        assertEquals(StatisticRequest.absSum(new Operand.KeptDelta(0)), StatisticRequest.absSum(new Operand.KeptDelta(0)));
        assertNotEquals(StatisticRequest.absSum(new Operand.KeptDelta(0)), StatisticRequest.absSum(new Operand.Delta(0)));
        assertNotEquals(StatisticRequest.order(new Operand.Delta(0), 3), StatisticRequest.order(new Operand.Delta(0), 4));
        assertNotEquals(StatisticRequest.order(new Operand.Delta(0), 3),
                StatisticRequest.order(new Operand.Delta(0), 3).over(Scope.MODEL));
        assertNotEquals(StatisticRequest.absSum(new Operand.Delta(0)).over(Scope.GROUP, 1),
                StatisticRequest.absSum(new Operand.Delta(0)).over(Scope.GROUP, 2));
    }
}
