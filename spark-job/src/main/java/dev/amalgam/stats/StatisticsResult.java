package dev.amalgam.stats;

import dev.amalgam.kernels.KeepRule;
import dev.amalgam.merge.MergeMethod;
import dev.amalgam.merge.OrderStatistic;
import dev.amalgam.plan.ChunkPlan;
import dev.amalgam.plan.MergePlan;
import dev.amalgam.plan.TensorPlan;

import java.util.HashMap;

/**
 * The tensor-wide statistics, reduced and broadcast: order statistics per (tensor, model,
 * slot), how many entries equal to a slot's value precede each chunk, and L1 rescale factors
 * per (tensor, model). A chunk turns them into its keep rules without looking elsewhere.
 */
public record StatisticsResult(HashMap<Long, OrderStatistic> orders, HashMap<Long, Long> equalsBefore,
                               HashMap<Long, Float> scales) {

    public static StatisticsResult empty() {
        return new StatisticsResult(new HashMap<>(), new HashMap<>(), new HashMap<>());
    }

    public KeepRule[] rules(MergeMethod method, MergePlan plan, TensorPlan tensor, ChunkPlan chunk) {
        KeepRule[] rules = new KeepRule[plan.modelCount()];
        for (int i = 0; i < rules.length; i++) {
            rules[i] = rule(method, plan, tensor, chunk, i);
        }
        return rules;
    }

    public KeepRule rule(MergeMethod method, MergePlan plan, TensorPlan tensor, ChunkPlan chunk, int model) {
        OrderStatistic[] stats = new OrderStatistic[2];
        long[] before = new long[2];
        for (int slot = 0; slot < 2; slot++) {
            stats[slot] = orders.get(StatisticKeys.of(tensor.index(), model, slot));
            before[slot] = equalsBefore.getOrDefault(StatisticKeys.of(chunk.index(), model, slot), 0L);
        }
        return method.keepRule(tensor, model, stats, before, plan.settings());
    }

    public float[] scales(TensorPlan tensor, int models) {
        float[] s = new float[models];
        for (int i = 0; i < models; i++) {
            s[i] = scales.getOrDefault(StatisticKeys.of(tensor.index(), i, 0), 1.0f);
        }
        return s;
    }
}
