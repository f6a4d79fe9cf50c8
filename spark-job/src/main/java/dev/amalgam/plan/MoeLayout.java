package dev.amalgam.plan;

import dev.amalgam.config.MoeConfig;
import dev.amalgam.config.ParameterResolver;
import dev.amalgam.config.ParameterValue;
import dev.amalgam.format.Checkpoint;
import dev.amalgam.format.StoredTensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The output-to-input map of an MoE assembly: every tensor of the base outside its MLPs copied,
 * each layer's MLP replaced by the experts' MLPs of that layer (renamed, or stacked into fused
 * tensors), the shared experts', and routers made by {@link GateVectors}. Down projections of
 * experts with a {@code residual_scale} are scaled by passthrough; everything else is copied.
 */
final class MoeLayout {
    private static final Pattern DENSE_MLP = Pattern.compile("^(.*\\.)mlp\\.(gate_proj|up_proj|down_proj)\\.weight$");
    private static final Pattern ATTENTION = Pattern.compile("^(.*\\.)self_attn\\.([qkv])_proj\\.weight$");

    private MoeLayout() {
    }

    /** The size of the base's MLP ({@code [hidden, intermediate]} from its first gate projection), or null. */
    static long[] mlpShape(Checkpoint base) {
        for (StoredTensor t : base.tensors()) {
            Matcher m = DENSE_MLP.matcher(t.name());
            if (m.matches() && m.group(2).equals("gate_proj") && t.shape().length == 2) {
                return new long[]{t.shape()[1], t.shape()[0]};
            }
        }
        return null;
    }

    static OutputLayout.Layout of(String file, MoeConfig moe, MoeArchitecture arch, Checkpoint base,
                                  Function<String, Checkpoint> checkpoints, float[][][] gates, List<String> problems) {
        boolean fused = moe.expertLayout() == MoeConfig.ExpertLayout.FUSED;
        Map<String, StoredTensor> baseByName = base.byName();
        List<OutputLayout.Output> outputs = new ArrayList<>();
        Set<String> layersDone = new LinkedHashSet<>();
        for (StoredTensor t : base.tensors()) {
            Matcher mlp = DENSE_MLP.matcher(t.name());
            if (mlp.matches()) {
                String layer = mlp.group(1);
                if (layersDone.add(layer)) {
                    int index = ParameterResolver.layerOf(t.name());
                    layer(file, moe, arch, fused, layer, gates[Math.max(0, index)], baseByName, checkpoints, outputs,
                            problems);
                }
                continue;
            }
            if (t.name().contains(".mlp.")) {
                problems.add(file + ": " + base.directory() + " has " + t.name() + ", which an assembled MoE has no "
                        + "place for: the base's MLPs must be gate_proj, up_proj and down_proj weights");
                continue;
            }
            outputs.add(copy(t.name(), t, "base_model (" + moe.baseModel() + ")"));
            Matcher attention = ATTENTION.matcher(t.name());
            if (arch.attentionBiases() && attention.matches()) {
                String bias = t.name().substring(0, t.name().length() - "weight".length()) + "bias";
                if (!baseByName.containsKey(bias)) {
                    // Qwen2 attention has q, k and v biases; Llama and Mistral inputs have none: zeros keep their function.
                    long rows = t.shape()[0];
                    outputs.add(copy(bias, StoredTensor.generated(bias, "zero bias (the inputs have none)",
                            new long[]{rows}, new float[(int) rows]), "zero bias"));
                }
            }
        }
        if (layersDone.isEmpty()) {
            problems.add(file + ": " + base.directory() + " has no MLP tensors named like *.mlp.gate_proj.weight, "
                    + "so there are no layers to put experts in");
        }
        String sources = String.join(" | ", moe.referencedModels());
        return new OutputLayout.Layout(outputs, List.of(moe.baseModel()), List.of(sources), null);
    }

    private static void layer(String file, MoeConfig moe, MoeArchitecture arch, boolean fused, String layer,
                              float[][] gates, Map<String, StoredTensor> baseByName,
                              Function<String, Checkpoint> checkpoints, List<OutputLayout.Output> outputs,
                              List<String> problems) {
        int experts = moe.experts().size();
        StoredTensor[][] mlp = new StoredTensor[experts][];
        for (int e = 0; e < experts; e++) {
            mlp[e] = projections(file, "experts[" + e + "]", moe.experts().get(e), layer, baseByName, checkpoints,
                    problems);
        }
        if (Arrays.stream(mlp).anyMatch(p -> p == null)) {
            return;
        }
        MoeArchitecture.Projection[] kinds = MoeArchitecture.Projection.values();
        if (!fused) {
            for (int e = 0; e < experts; e++) {
                for (MoeArchitecture.Projection p : kinds) {
                    outputs.add(expertOutput(arch.expert(layer, e, p), mlp[e][p.ordinal()], moe.experts().get(e),
                            "experts[" + e + "]", p, null));
                }
            }
        } else {
            StoredTensor gate = mlp[0][0];
            long intermediate = gate.shape()[0];
            long hidden = gate.shape()[1];
            long[] gateUpShape = {experts, 2 * intermediate, hidden};
            long[] downShape = {experts, hidden, intermediate};
            String gateUp = MoeArchitecture.fusedGateUp(layer);
            String down = MoeArchitecture.fusedDown(layer);
            for (int e = 0; e < experts; e++) {
                for (int half = 0; half < 2; half++) {
                    MoeArchitecture.Projection p = kinds[half];
                    outputs.add(expertOutput(gateUp + "[" + e + "." + p.denseName() + "]", mlp[e][half],
                            moe.experts().get(e), "experts[" + e + "]", p,
                            new TensorPlan.Part(gateUp, 2 * e + half, 2 * experts, gateUpShape)));
                }
            }
            for (int e = 0; e < experts; e++) {
                outputs.add(expertOutput(down + "[" + e + "]", mlp[e][2], moe.experts().get(e), "experts[" + e + "]",
                        MoeArchitecture.Projection.DOWN, new TensorPlan.Part(down, e, experts, downShape)));
            }
        }
        for (int s = 0; s < moe.sharedExperts().size(); s++) {
            MoeConfig.Expert shared = moe.sharedExperts().get(s);
            StoredTensor[] p = projections(file, "shared_experts[" + s + "]", shared, layer, baseByName, checkpoints,
                    problems);
            if (p == null) {
                return;
            }
            for (MoeArchitecture.Projection kind : kinds) {
                outputs.add(expertOutput(arch.shared(layer, kind), p[kind.ordinal()], shared, "shared_experts[" + s + "]",
                        kind, null));
            }
        }
        long hidden = mlp[0][0].shape()[1];
        String router = arch.router(layer, fused);
        outputs.add(copy(router, StoredTensor.generated(router, "router (gate_mode " + moe.gateMode().configName()
                + ")", new long[]{experts, hidden}, rows(gates, 0, experts)), "router"));
        if (arch.sharedExpertGated()) {
            String gate = arch.sharedGate(layer);
            outputs.add(copy(gate, StoredTensor.generated(gate, "shared expert gate (gate_mode "
                    + moe.gateMode().configName() + ")", new long[]{1, hidden}, rows(gates, experts, experts + 1)),
                    "shared expert gate"));
        }
    }

    /** The expert's gate, up and down projections of {@code layer}, checked against the base's shapes. */
    private static StoredTensor[] projections(String file, String key, MoeConfig.Expert expert, String layer,
                                              Map<String, StoredTensor> baseByName,
                                              Function<String, Checkpoint> checkpoints, List<String> problems) {
        Checkpoint source = checkpoints.apply(expert.sourceModel());
        if (source == null) {
            return null;
        }
        Map<String, StoredTensor> byName = source.byName();
        StoredTensor[] out = new StoredTensor[3];
        for (MoeArchitecture.Projection p : MoeArchitecture.Projection.values()) {
            String name = layer + "mlp." + p.denseName() + ".weight";
            StoredTensor t = byName.get(name);
            StoredTensor reference = baseByName.get(name);
            if (t == null) {
                problems.add(file + ": " + key + ": " + expert.sourceModel() + " has no " + name + "; an expert must "
                        + "have the base's layers (a dense model of the same architecture)");
                return null;
            }
            if (reference != null && !Arrays.equals(t.shape(), reference.shape())) {
                problems.add(file + ": " + key + ": " + name + " of " + expert.sourceModel() + " is "
                        + Arrays.toString(t.shape()) + " but the base's is " + Arrays.toString(reference.shape())
                        + "; experts must have the base's hidden and intermediate sizes");
                return null;
            }
            out[p.ordinal()] = t;
        }
        return out;
    }

    private static float[] rows(float[][] gates, int from, int to) {
        int hidden = gates[0].length;
        float[] out = new float[(to - from) * hidden];
        for (int e = from; e < to; e++) {
            System.arraycopy(gates[e], 0, out, (e - from) * hidden, hidden);
        }
        return out;
    }

    /** An expert's projection: copied, or for a down projection with {@code residual_scale}, scaled. */
    private static OutputLayout.Output expertOutput(String name, StoredTensor input, MoeConfig.Expert expert,
                                                    String key, MoeArchitecture.Projection p, TensorPlan.Part part) {
        String owner = key + " (" + expert.sourceModel() + ")";
        if (p == MoeArchitecture.Projection.DOWN && expert.residualScale() != null) {
            return new OutputLayout.Output(name, null, new StoredTensor[]{input}, 0,
                    List.of(List.of(Map.of("scale", new ParameterValue.Scalar(expert.residualScale())))),
                    List.of(Map.of()), new String[]{owner}, false, part);
        }
        return new OutputLayout.Output(name, null, new StoredTensor[]{input}, 0, List.of(List.of()), List.of(),
                new String[]{owner}, true, part);
    }

    private static OutputLayout.Output copy(String name, StoredTensor input, String owner) {
        return new OutputLayout.Output(name, null, new StoredTensor[]{input}, 0, List.of(List.of()), List.of(),
                new String[]{owner}, true, null);
    }
}
