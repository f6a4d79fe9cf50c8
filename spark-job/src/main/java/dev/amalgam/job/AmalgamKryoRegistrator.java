package dev.amalgam.job;

import com.esotericsoftware.kryo.Kryo;
import dev.amalgam.staging.OutputTarget;
import dev.amalgam.format.StoredTensor;
import dev.amalgam.kernels.Dtype;
import dev.amalgam.kernels.ExactSum;
import dev.amalgam.merge.ChunkReport;
import dev.amalgam.method.OrderStatistic;
import dev.amalgam.plan.ChunkPlan;
import dev.amalgam.plan.MergePlan;
import dev.amalgam.method.MethodSettings;
import dev.amalgam.method.TensorParameters;
import dev.amalgam.method.StatisticRequest;
import dev.amalgam.method.Reduction;
import dev.amalgam.kernels.Operand;
import dev.amalgam.kernels.ExactDot;
import dev.amalgam.stats.BandChunk;
import dev.amalgam.stats.OrderBands;
import dev.amalgam.stats.SparseCounts;
import dev.amalgam.stats.StatisticKey;
import dev.amalgam.stats.Partial;
import dev.amalgam.plan.ShardPlan;
import dev.amalgam.plan.TensorPlan;
import dev.amalgam.stats.StatisticsResult;
import org.apache.spark.serializer.KryoRegistrator;

import java.util.HashMap;

/**
 * Registers every type that crosses the wire (broadcast plan and statistics, task results,
 * shuffled histograms), so that {@code spark.kryo.registrationRequired=true} holds.
 */
public final class AmalgamKryoRegistrator implements KryoRegistrator {

    @Override
    @SuppressWarnings({"unchecked", "rawtypes"})
    public void registerClasses(Kryo kryo) {
        Class<?>[] records = {MergePlan.class, MethodSettings.class, TensorPlan.class, ChunkPlan.class, ShardPlan.class,
                TensorParameters.class, StoredTensor.class, StatisticsResult.class, OrderStatistic.class,
                StatisticKey.class, StatisticRequest.class, Operand.Delta.class, Operand.Value.class,
                Operand.KeptDelta.class, Operand.Contribution.class, Operand.Variance.class, Operand.Selected.class,
                Operand.Importance.class, Operand.Consensus.class, Operand.Output.class, Operand.Salience.class, Operand.Balance.class,
                ChunkReport.class, OutputTarget.class, BandChunk.class, OrderBands.Band.class,
                dev.amalgam.format.Quantization.BlockScaled.class, dev.amalgam.format.Quantization.Mxfp4.class,
                dev.amalgam.plan.OutputQuantization.Weight.class, dev.amalgam.plan.OutputQuantization.Scales.class,
                dev.amalgam.kernels.Fp8BlockQuantizer.Grid.class, CheckpointDiff.Chunk.class, CheckpointDiff.Sums.class,
                dev.amalgam.format.LowRank.class, dev.amalgam.plan.TensorPlan.Part.class,
                dev.amalgam.format.RowMap.class, dev.amalgam.format.RowMap.Mix.class,
                dev.amalgam.method.ModelExtent.class, dev.amalgam.stats.OrderTargets.class};
        for (Class<?> r : records) {
            kryo.register(r, new RecordSerializer(r));
        }
        kryo.register(TensorPlan[].class);
        kryo.register(ChunkPlan[].class);
        kryo.register(ShardPlan[].class);
        kryo.register(double[][].class);
        kryo.register(Reduction.class);
        kryo.register(dev.amalgam.method.Scope.class);
        kryo.register(Partial.class);
        kryo.register(SparseCounts.class);
        kryo.register(ExactDot.class);
        kryo.register(Float.class);
        kryo.register(boolean[].class);
        kryo.register(StoredTensor[].class);
        kryo.register(Dtype.class);
        kryo.register(ExactSum.class);
        kryo.register(ExactSum[].class);
        kryo.register(HashMap.class);
        kryo.register(long[].class);
        kryo.register(long[][].class);
        kryo.register(double[].class);
        kryo.register(int[].class);
        kryo.register(byte[].class);
        kryo.register(String[].class);
        kryo.register(Object[].class);
        kryo.register(dev.amalgam.format.RowMap.Mix[].class);
        kryo.register(float[].class);
        kryo.register(StatisticRequest[].class);
        // Spark SQL reading the tensor table's delta_cosine column; Spark registers its other SQL types itself.
        kryo.register(org.apache.spark.sql.types.ArrayType.class);
    }
}
