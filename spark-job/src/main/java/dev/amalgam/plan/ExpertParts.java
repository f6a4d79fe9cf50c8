package dev.amalgam.plan;

import dev.amalgam.format.StoredTensor;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Fused expert tensors ({@code mlp.experts.gate_up_proj}, {@code mlp.experts.down_proj}: one
 * {@code [experts, rows, cols]} tensor per layer) cut into one plan per expert, each reading its
 * expert's slice of every input and writing its slice of the one output tensor. Statistics (top-k
 * thresholds, norms, rescale sums) are then per expert, as they are for a checkpoint that stores
 * each expert as its own tensor, so the two layouts of one model merge to the same values.
 */
final class ExpertParts {
    private static final Pattern FUSED = Pattern.compile("\\.experts\\.[A-Za-z_]+(\\.weight)?$");

    private ExpertParts() {
    }

    /** Whether {@code t} is a fused expert tensor that can be cut (plain float inputs and output). */
    static boolean fused(TensorPlan t) {
        if (t.shape().length != 3 || t.shape()[0] < 2 || !FUSED.matcher(t.name()).find() || t.outQuantization() != null) {
            return false;
        }
        List<StoredTensor> inputs = new ArrayList<>(List.of(t.models()));
        if (t.base() != null) {
            inputs.add(t.base());
        }
        return inputs.stream().allMatch(s -> s.quantization() == null && s.lowRank() == null);
    }

    /** One plan per expert, in expert order, named {@code tensor[e]}. */
    static List<TensorPlan> split(TensorPlan t) {
        int experts = (int) t.shape()[0];
        long[] shape = {t.shape()[1], t.shape()[2]};
        long elements = shape[0] * shape[1];
        List<TensorPlan> parts = new ArrayList<>();
        for (int e = 0; e < experts; e++) {
            StoredTensor[] models = new StoredTensor[t.models().length];
            for (int i = 0; i < models.length; i++) {
                models[i] = slice(t.models()[i], e, shape, elements);
            }
            StoredTensor base = t.base() == null ? null : slice(t.base(), e, shape, elements);
            parts.add(new TensorPlan(-1, t.name() + "[" + e + "]", shape, elements, t.cols(), t.outDtype(), base, models,
                    t.parameters(), 0, 0, null, t.copy(), new TensorPlan.Part(t.name(), e, experts, t.shape()), t.extent()));
        }
        return parts;
    }

    private static StoredTensor slice(StoredTensor s, int expert, long[] shape, long elements) {
        return new StoredTensor(s.name(), s.file(), s.offset() + expert * elements * s.dtype().byteSize(), s.dtype(),
                shape);
    }
}
