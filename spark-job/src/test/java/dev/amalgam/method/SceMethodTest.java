package dev.amalgam.method;

import dev.amalgam.kernels.Operand;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * SCE keeps {@code floor(select_topk * nnz)} positions, the product in double as the standard
 * tool computes it: at a billion non-zero variances a float32 product would keep 11 more.
 */
class SceMethodTest {
    private static final SceMethod SCE = new SceMethod();

    private static MethodTensor tensor(long elements, double selectTopk) {
        return new MethodTensor() {
            public int index() {
                return 0;
            }

            public String name() {
                return "model.embed_tokens.weight";
            }

            public long[] shape() {
                return new long[]{elements / 8192, 8192};
            }

            public long elements() {
                return elements;
            }

            public int cols() {
                return 8192;
            }

            public TensorParameters parameters() {
                return new TensorParameters(new double[]{selectTopk, 0.0}, new double[2][0]);
            }

            public String inputFile(int model) {
                return "model-" + model;
            }

            public boolean hasBase() {
                return true;
            }
        };
    }

    /** Round 0's result: how many variances are not zero. */
    private static TensorStatistics nonzero(long count) {
        return new TensorStatistics() {
            public OrderStatistic order(StatisticRequest request) {
                return null;
            }

            public long equalsBefore(StatisticRequest request) {
                return 0;
            }

            public double value(StatisticRequest request) {
                return request.equals(StatisticRequest.nonzero(new Operand.Variance())) ? count : Double.NaN;
            }

            public boolean has(StatisticRequest request) {
                return request.equals(StatisticRequest.nonzero(new Operand.Variance()));
            }
        };
    }

    @Test
    void theKeptCountIsTheFloorOfTheDoubleProductAtABillionPositions() {
        long n = 2_000_001_536L;
        List<StatisticRequest> round1 = SCE.statistics(tensor(n, 0.3), 1, nonzero(1_000_000_000L));
        // 0.3 * 1e9 is 300,000,000 in double; float32(0.3) * 1e9 would be 300,000,011.
        assertEquals(List.of(StatisticRequest.order(new Operand.Variance(), n - 300_000_000L)), round1);
    }

    @Test
    void aKeptCountOfZeroSkipsTheOrderStatisticAndSelectsNothing() {
        long n = 1_000;
        List<StatisticRequest> round1 = SCE.statistics(tensor(n, 0.3), 1, nonzero(3));
        assertEquals(List.of(StatisticRequest.dot(new Operand.Selected(0), new Operand.Selected(0)),
                StatisticRequest.dot(new Operand.Selected(1), new Operand.Selected(1))), round1);
        assertEquals(OrderStatistic.KEEP_NOTHING, SCE.selection(tensor(n, 0.3), nonzero(3)).rule());
    }

    @Test
    void withoutSelectionOneRoundOfSquaresIsAll() {
        MethodTensor t = tensor(1_000, 1.0);
        assertEquals(2, SCE.statistics(t, 0, nonzero(0)).size());
        assertEquals(List.of(), SCE.statistics(t, 1, nonzero(0)));
    }
}
