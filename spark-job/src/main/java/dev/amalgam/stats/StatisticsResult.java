package dev.amalgam.stats;

import dev.amalgam.kernels.KeepRule;
import dev.amalgam.merge.MergeMethod;
import dev.amalgam.merge.OrderStatistic;
import dev.amalgam.plan.ChunkPlan;
import dev.amalgam.plan.MergePlan;
import dev.amalgam.plan.TensorPlan;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * The tensor-wide statistics, reduced and broadcast: order statistics per (tensor, model,
 * slot), how many entries equal to a slot's value precede each chunk, and L1 rescale factors
 * per (tensor, model). A chunk turns them into its keep rules without looking elsewhere.
 */
public record StatisticsResult(HashMap<Long, OrderStatistic> orders, HashMap<Long, Long> equalsBefore,
                               HashMap<Long, Float> scales) {

    private static final int FORMAT = 0x414d5331; // "AMS1"

    public static StatisticsResult empty() {
        return new StatisticsResult(new HashMap<>(), new HashMap<>(), new HashMap<>());
    }

    /** The statistics as bytes, saved beside a running merge so a resumed run can skip the stage. */
    public byte[] toBytes() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            out.writeInt(FORMAT);
            out.writeInt(orders.size());
            for (Map.Entry<Long, OrderStatistic> e : new TreeMap<>(orders).entrySet()) {
                out.writeLong(e.getKey());
                out.writeInt(e.getValue().valueBits());
                out.writeLong(e.getValue().below());
                out.writeLong(e.getValue().equal());
            }
            out.writeInt(equalsBefore.size());
            for (Map.Entry<Long, Long> e : new TreeMap<>(equalsBefore).entrySet()) {
                out.writeLong(e.getKey());
                out.writeLong(e.getValue());
            }
            out.writeInt(scales.size());
            for (Map.Entry<Long, Float> e : new TreeMap<>(scales).entrySet()) {
                out.writeLong(e.getKey());
                out.writeInt(Float.floatToRawIntBits(e.getValue()));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return bytes.toByteArray();
    }

    /** Reads what {@link #toBytes()} wrote; empty when the bytes are not a complete copy. */
    public static Optional<StatisticsResult> fromBytes(byte[] content) {
        try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(content))) {
            if (in.readInt() != FORMAT) {
                return Optional.empty();
            }
            StatisticsResult r = empty();
            for (int n = in.readInt(); n > 0; n--) {
                r.orders.put(in.readLong(), new OrderStatistic(in.readInt(), in.readLong(), in.readLong()));
            }
            for (int n = in.readInt(); n > 0; n--) {
                r.equalsBefore.put(in.readLong(), in.readLong());
            }
            for (int n = in.readInt(); n > 0; n--) {
                r.scales.put(in.readLong(), Float.intBitsToFloat(in.readInt()));
            }
            return in.read() == -1 ? Optional.of(r) : Optional.empty();
        } catch (IOException e) {
            return Optional.empty();
        }
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
