package dev.amalgam.method;

import dev.amalgam.kernels.ChunkKernels;
import dev.amalgam.kernels.ChunkMetrics;
import dev.amalgam.kernels.Primitive;

import java.util.List;

/**
 * {@code ram}: an entry of a model contributes where its delta exceeds {@code epsilon}; the
 * contributing deltas are averaged over the number of contributing models:
 * {@code b + (sum of contributing d_i) / max(c, 1)}.
 */
final class RamMethod extends DeclaredMethod {

    RamMethod() {
        super("ram", "average of the deltas that exceed epsilon, by how many models contribute",
                Inputs.base(1, Integer.MAX_VALUE),
                List.of(Parameter.number("epsilon", Parameter.Scope.GLOBAL, 1e-5, Parameter.Range.atLeast(0), true,
                        "smallest |delta| that contributes")),
                Primitive.RAM);
    }

    @Override
    public void merge(ChunkKernels kernels, MethodTensor tensor, long chunkStart, int count, TensorStatistics stats,
                      MethodSettings settings, ChunkMetrics metrics) {
        kernels.ram((float) global(tensor, "epsilon"), null, count, metrics);
    }
}
