package dev.amalgam.format;

/**
 * A LoRA adapter applied to a stored weight: the weight reads as {@code W + scale * B A},
 * rounded to the weight's dtype, as the base with the adapter merged into it would be stored.
 *
 * @param a          {@code lora_A}, {@code [rank, in]}
 * @param b          {@code lora_B}, {@code [out, rank]}
 * @param scale      {@code alpha / rank}, or {@code alpha / sqrt(rank)} with rsLoRA, in float32
 * @param fanInFanOut whether the weight is stored {@code [in, out]} (GPT-2's Conv1D): then it
 *                   reads as {@code W + scale * (B A)^T}
 * @param adapter    the adapter directory, for messages
 */
public record LowRank(StoredTensor a, StoredTensor b, float scale, boolean fanInFanOut, String adapter) {

    public int rank() {
        return (int) a.shape()[0];
    }
}
