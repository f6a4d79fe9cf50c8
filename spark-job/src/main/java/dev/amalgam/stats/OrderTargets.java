package dev.amalgam.stats;

import dev.amalgam.method.Reduction;
import dev.amalgam.method.StatisticRequest;
import dev.amalgam.plan.MergePlan;
import dev.amalgam.plan.TensorPlan;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A round's order statistics as the driver planned them, so the reducers need not ask the
 * method again: per shared histogram (one operand at one scope) the positions requested and how
 * many entries they are positions among, and for a histogram wider than a tensor the tensors it
 * spans in canonical order (ascending byte order of their names), which is the order equal
 * entries are counted in.
 */
public record OrderTargets(HashMap<StatisticKey, StatisticRequest[]> requests, HashMap<StatisticKey, Long> elements,
                    HashMap<StatisticKey, int[]> members) {

    /** The histogram an order request selects from: its operand at its scope. */
    static StatisticRequest histogramOf(StatisticRequest r) {
        return new StatisticRequest(Reduction.ORDER, StatisticsStage.ordered(r), null, 0, r.scope(), r.group());
    }

    /** The key of the histogram the request filed under {@code key} selects from. */
    static StatisticKey histogramKey(StatisticKey key) {
        return new StatisticKey(key.owner(), histogramOf(key.request()));
    }

    /** The order requests of {@code asking}'s tensors in this round. */
    static OrderTargets of(MergePlan plan, Map<Integer, List<StatisticRequest>> asking) {
        Map<StatisticKey, Set<StatisticRequest>> requests = new HashMap<>();
        HashMap<StatisticKey, Long> elements = new HashMap<>();
        Map<StatisticKey, List<Integer>> members = new HashMap<>();
        asking.forEach((tensor, list) -> {
            for (StatisticRequest r : list) {
                if (r.reduction() != Reduction.ORDER) {
                    continue;
                }
                StatisticKey h = StatisticKey.of(tensor, histogramOf(r));
                requests.computeIfAbsent(h, k -> new LinkedHashSet<>()).add(r);
                List<Integer> m = members.computeIfAbsent(h, k -> new ArrayList<>());
                if (!m.contains(tensor)) {
                    m.add(tensor);
                    elements.merge(h, plan.tensors()[tensor].elements(), Long::sum);
                }
            }
        });
        HashMap<StatisticKey, StatisticRequest[]> byHistogram = new HashMap<>();
        requests.forEach((k, v) -> byHistogram.put(k, v.toArray(StatisticRequest[]::new)));
        HashMap<StatisticKey, int[]> wide = new HashMap<>();
        members.forEach((k, v) -> {
            if (k.wide()) {
                wide.put(k, canonical(plan, v));
            }
        });
        return new OrderTargets(byHistogram, elements, wide);
    }

    /** Tensor indices in ascending unsigned byte order of their UTF-8 names (METHODS.md's canonical index). */
    static int[] canonical(MergePlan plan, List<Integer> tensors) {
        Comparator<Integer> byName = (a, b) -> Arrays.compareUnsigned(
                plan.tensors()[a].name().getBytes(StandardCharsets.UTF_8),
                plan.tensors()[b].name().getBytes(StandardCharsets.UTF_8));
        return tensors.stream().sorted(byName).mapToInt(Integer::intValue).toArray();
    }

    /** The tensors a key's request spans, in canonical order. */
    int[] tensorsOf(StatisticKey key) {
        return key.wide() ? members.getOrDefault(histogramKey(key), new int[0]) : new int[]{key.owner()};
    }

    /** For messages: what a key's statistic was reduced over. */
    static String describe(MergePlan plan, StatisticKey key) {
        if (!key.wide()) {
            return "tensor '" + plan.tensors()[key.owner()].name() + "'";
        }
        StatisticRequest r = key.request();
        return switch (r.scope()) {
            case GROUP -> "group " + r.group() + " of tensors";
            case MODEL -> "the whole model";
            default -> r.scope().toString();
        };
    }
}
