package dev.amalgam.config;

import dev.amalgam.kernels.Dtype;

import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A parsed merge config, in the YAML schema users of the widely used single-node merge tool
 * already write. Structure is checked when parsing; method-specific rules by the planner.
 *
 * @param baseModel null when the config names none
 * @param outDtype null: {@code dtype} if given, else each tensor keeps the base model's dtype
 * @param models empty when the config gives {@code slices}
 * @param slices empty when the config gives {@code models}
 * @param tokenizerSource null: the base model's tokenizer files (if any) are copied
 * @param source the YAML text as given, kept for the model card
 * @param expertScope {@code expert_scope}: per expert (the default) or the whole fused tensor
 * @param moe         a mixture-of-experts assembly ({@code amalgam moe}): its tensors are copied by
 *                    passthrough from where the assembly says; null for a merge
 * @param tokenizer   the {@code tokenizer:} section's tokens and padding, and {@code chat_template}
 * @param groups      {@code groups:}, named tensor groups for group statistics: name to a regex a
 *                    tensor name contains, in the order given (a tensor joins the first it matches)
 */
public record MergeConfig(String mergeMethod, String baseModel, List<ModelSpec> models, List<SliceSpec> slices,
                          Map<String, ParameterValue> parameters, Dtype dtype, Dtype outDtype,
                          String tokenizerSource, Long randomSeed, String source, ExpertScope expertScope,
                          MoeConfig moe, TokenizerSpec tokenizer, Map<String, String> groups) {

    public MergeConfig {
        groups = groups == null ? Map.of() : java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(groups));
    }

    public MergeConfig(String mergeMethod, String baseModel, List<ModelSpec> models, List<SliceSpec> slices,
                       Map<String, ParameterValue> parameters, Dtype dtype, Dtype outDtype, String tokenizerSource,
                       Long randomSeed, String source, ExpertScope expertScope, MoeConfig moe, TokenizerSpec tokenizer) {
        this(mergeMethod, baseModel, models, slices, parameters, dtype, outDtype, tokenizerSource, randomSeed, source,
                expertScope, moe, tokenizer, Map.of());
    }

    public MergeConfig(String mergeMethod, String baseModel, List<ModelSpec> models, List<SliceSpec> slices,
                       Map<String, ParameterValue> parameters, Dtype dtype, Dtype outDtype, String tokenizerSource,
                       Long randomSeed, String source, ExpertScope expertScope, MoeConfig moe) {
        this(mergeMethod, baseModel, models, slices, parameters, dtype, outDtype, tokenizerSource, randomSeed, source,
                expertScope, moe, TokenizerSpec.NONE);
    }

    /** Whether the output vocabulary is built (and embeddings remapped) rather than one model's kept. */
    public boolean remapsVocabulary() {
        return tokenizerSource != null || tokenizer.any();
    }

    public MergeConfig(String mergeMethod, String baseModel, List<ModelSpec> models, List<SliceSpec> slices,
                       Map<String, ParameterValue> parameters, Dtype dtype, Dtype outDtype, String tokenizerSource,
                       Long randomSeed, String source, ExpertScope expertScope) {
        this(mergeMethod, baseModel, models, slices, parameters, dtype, outDtype, tokenizerSource, randomSeed, source,
                expertScope, null);
    }

    /** An MoE assembly as the merge the engine runs: passthrough copies, the base's tokenizer. */
    public static MergeConfig ofMoe(MoeConfig moe, String source) {
        return new MergeConfig("passthrough", moe.baseModel(), List.of(), List.of(), Map.of(), moe.dtype(),
                moe.dtype(), null, moe.randomSeed(), source, ExpertScope.EXPERT, moe);
    }

    /** The same config with another random seed. */
    public MergeConfig withRandomSeed(long seed) {
        MoeConfig m = moe == null ? null : new MoeConfig(moe.baseModel(), moe.experts(), moe.sharedExperts(),
                moe.expertsPerToken(), moe.gateMode(), moe.architecture(), moe.dtype(), seed, moe.gateVectors(),
                moe.expertLayout());
        return new MergeConfig(mergeMethod, baseModel, models, slices, parameters, dtype, outDtype, tokenizerSource,
                seed, source, expertScope, m, tokenizer, groups);
    }

    /** Where the statistics of a fused expert tensor ({@code [experts, ...]}) are taken: per expert, or whole. */
    public enum ExpertScope { EXPERT, TENSOR }

    public MergeConfig(String mergeMethod, String baseModel, List<ModelSpec> models, List<SliceSpec> slices,
                       Map<String, ParameterValue> parameters, Dtype dtype, Dtype outDtype, String tokenizerSource,
                       Long randomSeed, String source) {
        this(mergeMethod, baseModel, models, slices, parameters, dtype, outDtype, tokenizerSource, randomSeed, source,
                ExpertScope.EXPERT);
    }

    /** Every model the config names: the base, then the models or the slices' sources, each once, in order. */
    public List<String> referencedModels() {
        java.util.LinkedHashSet<String> all = new java.util.LinkedHashSet<>();
        if (baseModel != null) {
            all.add(baseModel);
        }
        models.forEach(m -> all.add(m.model()));
        slices.forEach(s -> s.sources().forEach(m -> all.add(m.model())));
        if (moe != null) {
            all.addAll(moe.referencedModels());
        }
        return List.copyOf(all);
    }

    /**
     * The dtype tensors are written in: {@code out_dtype}, else {@code dtype} (as the widely used
     * tool does), else null for each tensor's base dtype.
     */
    public Dtype effectiveOutDtype() {
        return outDtype != null ? outDtype : dtype;
    }

    public Optional<String> base() {
        return Optional.ofNullable(baseModel);
    }
}
