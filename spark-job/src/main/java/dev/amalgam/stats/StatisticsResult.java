package dev.amalgam.stats;

import dev.amalgam.kernels.Operand;
import dev.amalgam.method.OrderStatistic;
import dev.amalgam.method.Reduction;
import dev.amalgam.method.StatisticRequest;
import dev.amalgam.method.TensorStatistics;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Every tensor's statistics, reduced and broadcast: order statistics and values (sums, dot
 * products, counts) per (tensor, request), and for order statistics how many entries equal to
 * the selected value precede each chunk, per (chunk, request). A chunk reads them through
 * {@link #view} without looking elsewhere.
 */
public record StatisticsResult(HashMap<StatisticKey, OrderStatistic> orders, HashMap<StatisticKey, Long> equalsBefore,
                               HashMap<StatisticKey, Double> values) {

    /** "AMS4": keys are requests with their scope, values doubles (exact counts). */
    private static final int FORMAT = 0x414d5334;

    public static StatisticsResult empty() {
        return new StatisticsResult(new HashMap<>(), new HashMap<>(), new HashMap<>());
    }

    /** What chunk {@code chunk} of tensor {@code tensor} sees. */
    public TensorStatistics view(int tensor, int chunk) {
        return new TensorStatistics() {
            @Override
            public OrderStatistic order(StatisticRequest request) {
                return orders.get(StatisticKey.of(tensor, request));
            }

            @Override
            public long equalsBefore(StatisticRequest request) {
                return equalsBefore.getOrDefault(new StatisticKey(chunk, request), 0L);
            }

            @Override
            public double value(StatisticRequest request) {
                return values.getOrDefault(StatisticKey.of(tensor, request), Double.NaN);
            }

            @Override
            public boolean has(StatisticRequest request) {
                StatisticKey key = StatisticKey.of(tensor, request);
                return request.reduction() == Reduction.ORDER ? orders.containsKey(key) : values.containsKey(key);
            }
        };
    }

    public void putAll(StatisticsResult other) {
        orders.putAll(other.orders);
        equalsBefore.putAll(other.equalsBefore);
        values.putAll(other.values);
    }

    /** The statistics as bytes, saved beside a running merge so a resumed run can skip the stage. */
    public byte[] toBytes() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            out.writeInt(FORMAT);
            out.writeInt(orders.size());
            for (Map.Entry<StatisticKey, OrderStatistic> e : sorted(orders)) {
                writeKey(out, e.getKey());
                out.writeInt(e.getValue().valueBits());
                out.writeLong(e.getValue().below());
                out.writeLong(e.getValue().equal());
            }
            out.writeInt(equalsBefore.size());
            for (Map.Entry<StatisticKey, Long> e : sorted(equalsBefore)) {
                writeKey(out, e.getKey());
                out.writeLong(e.getValue());
            }
            out.writeInt(values.size());
            for (Map.Entry<StatisticKey, Double> e : sorted(values)) {
                writeKey(out, e.getKey());
                out.writeLong(Double.doubleToRawLongBits(e.getValue()));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return bytes.toByteArray();
    }

    /** Reads what {@link #toBytes()} wrote; empty when the bytes are not a complete copy of this format. */
    public static Optional<StatisticsResult> fromBytes(byte[] content) {
        try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(content))) {
            if (in.readInt() != FORMAT) {
                return Optional.empty();
            }
            StatisticsResult r = empty();
            for (int n = in.readInt(); n > 0; n--) {
                r.orders.put(readKey(in), new OrderStatistic(in.readInt(), in.readLong(), in.readLong()));
            }
            for (int n = in.readInt(); n > 0; n--) {
                r.equalsBefore.put(readKey(in), in.readLong());
            }
            for (int n = in.readInt(); n > 0; n--) {
                r.values.put(readKey(in), Double.longBitsToDouble(in.readLong()));
            }
            return in.read() == -1 ? Optional.of(r) : Optional.empty();
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    private static <V> List<Map.Entry<StatisticKey, V>> sorted(Map<StatisticKey, V> map) {
        return map.entrySet().stream()
                .sorted(Comparator.comparing((Map.Entry<StatisticKey, V> e) -> e.getKey().owner())
                        .thenComparing(e -> e.getKey().request().toString()))
                .toList();
    }

    private static void writeKey(DataOutputStream out, StatisticKey key) throws IOException {
        out.writeInt(key.owner());
        StatisticRequest r = key.request();
        out.writeByte(r.reduction().ordinal());
        writeOperand(out, r.a());
        writeOperand(out, r.b());
        out.writeLong(r.position());
        out.writeByte(r.scope().ordinal());
        out.writeInt(r.group());
    }

    private static StatisticKey readKey(DataInputStream in) throws IOException {
        int owner = in.readInt();
        Reduction reduction = Reduction.values()[in.readByte()];
        Operand a = readOperand(in);
        Operand b = readOperand(in);
        long position = in.readLong();
        dev.amalgam.method.Scope scope = dev.amalgam.method.Scope.values()[in.readByte()];
        return new StatisticKey(owner, new StatisticRequest(reduction, a, b, position, scope, in.readInt()));
    }

    private static void writeOperand(DataOutputStream out, Operand o) throws IOException {
        if (o == null) {
            out.writeByte(0);
        } else if (o instanceof Operand.Delta d) {
            out.writeByte(1);
            out.writeInt(d.model());
        } else if (o instanceof Operand.Value v) {
            out.writeByte(2);
            out.writeInt(v.slot());
        } else if (o instanceof Operand.KeptDelta k) {
            out.writeByte(3);
            out.writeInt(k.model());
        } else if (o instanceof Operand.Contribution c) {
            out.writeByte(4);
            out.writeInt(c.model());
            out.writeFloat(c.epsilon());
            out.writeBoolean(c.shared());
        } else if (o instanceof Operand.Variance) {
            out.writeByte(5);
        } else if (o instanceof Operand.Selected sel) {
            out.writeByte(6);
            out.writeInt(sel.model());
        } else if (o instanceof Operand.Importance imp) {
            out.writeByte(7);
            out.writeInt(imp.cols());
        } else if (o instanceof Operand.Consensus) {
            out.writeByte(8);
        } else if (o instanceof Operand.Output output) {
            out.writeByte(9);
            out.writeInt(output.which());
        } else if (o instanceof Operand.Balance bal) {
            out.writeByte(11);
            out.writeInt(bal.model());
            out.writeFloat(bal.lo());
            out.writeFloat(bal.hi());
            out.writeBoolean(bal.positive());
        } else if (o instanceof Operand.Salience sal) {
            out.writeByte(10);
            out.writeInt(sal.model());
            out.writeInt(sal.slot());
        } else {
            throw new IllegalArgumentException("no encoding for " + o);
        }
    }

    private static Operand readOperand(DataInputStream in) throws IOException {
        return switch (in.readByte()) {
            case 0 -> null;
            case 1 -> new Operand.Delta(in.readInt());
            case 2 -> new Operand.Value(in.readInt());
            case 3 -> new Operand.KeptDelta(in.readInt());
            case 4 -> new Operand.Contribution(in.readInt(), in.readFloat(), in.readBoolean());
            case 5 -> new Operand.Variance();
            case 6 -> new Operand.Selected(in.readInt());
            case 7 -> new Operand.Importance(in.readInt());
            case 8 -> new Operand.Consensus();
            case 9 -> new Operand.Output(in.readInt());
            case 10 -> new Operand.Salience(in.readInt(), in.readInt());
            case 11 -> new Operand.Balance(in.readInt(), in.readFloat(), in.readFloat(), in.readBoolean());
            default -> throw new IOException("unknown operand");
        };
    }
}
