package dev.amalgam.plan;

import dev.amalgam.config.MoeConfig;
import dev.amalgam.format.Checkpoint;
import dev.amalgam.format.CheckpointReader;
import dev.amalgam.format.FloatBytes;
import dev.amalgam.format.FormatException;
import dev.amalgam.format.PromptTokenizer;
import dev.amalgam.format.RangeReader;
import dev.amalgam.format.StoredTensor;
import dev.amalgam.kernels.CounterRandom;
import dev.amalgam.kernels.Dtype;

import java.io.UncheckedIOException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The routers of an assembled MoE: one gate vector per gated expert and layer, the rows of the
 * layer's router weight. Small ({@code layers x experts x hidden} floats), so they are made on the
 * driver while planning and travel in the plan.
 *
 * <ul>
 *   <li>{@code random}: standard normal values from the counter-based generator (Box-Muller over
 *       two uniform draws), so a seed gives the same routers on every run;</li>
 *   <li>{@code uniform_random}: uniform in {@code [-1/sqrt(hidden), 1/sqrt(hidden))}, as
 *       {@code torch.nn.Linear} initializes;</li>
 *   <li>{@code cheap_embed}: the base's embedding rows of the expert's prompt tokens summed and
 *       normalized, minus the same for its negative prompts, normalized again (every layer the same);</li>
 *   <li>{@code hidden*}: read from the gate vectors file, a tensor {@code layers.N} of
 *       {@code [gated experts, hidden]} per layer.</li>
 * </ul>
 * Sums run in double and are rounded to float32 once.
 */
final class GateVectors {
    static final String RANDOM_STREAM = "moe.router";

    private GateVectors() {
    }

    /** {@code [layer][gated expert][hidden]}; problems name the file, the tensor or the key. */
    static float[][][] of(String file, MoeConfig moe, List<MoeConfig.Expert> gated, int layers, int hidden,
                          Checkpoint base, CheckpointReader reader, List<String> problems) {
        return switch (moe.gateMode()) {
            case RANDOM -> random(moe.randomSeed(), layers, gated.size(), hidden, false);
            case UNIFORM_RANDOM -> random(moe.randomSeed(), layers, gated.size(), hidden, true);
            case CHEAP_EMBED -> cheapEmbed(file, gated, layers, hidden, base, reader, problems);
            case HIDDEN, HIDDEN_AVG, HIDDEN_LAST -> fromFile(file, moe, gated.size(), layers, hidden, reader, problems);
        };
    }

    static float[][][] random(long seed, int layers, int experts, int hidden, boolean uniform) {
        long key = CounterRandom.streamKey(seed, RANDOM_STREAM, 0);
        double bound = Math.sqrt(1.0 / hidden);
        float[][][] out = new float[layers][experts][hidden];
        for (int l = 0; l < layers; l++) {
            for (int e = 0; e < experts; e++) {
                for (int h = 0; h < hidden; h++) {
                    long i = ((long) l * experts + e) * hidden + h;
                    if (uniform) {
                        out[l][e][h] = (float) ((2.0 * CounterRandom.uniform(key, i) - 1.0) * bound);
                    } else {
                        double u1 = CounterRandom.uniform(key, 2 * i);
                        double u2 = CounterRandom.uniform(key, 2 * i + 1);
                        out[l][e][h] = (float) (StrictMath.sqrt(-2.0 * StrictMath.log(1.0 - u1))
                                * StrictMath.cos(2.0 * StrictMath.PI * u2));
                    }
                }
            }
        }
        return out;
    }

    private static float[][][] cheapEmbed(String file, List<MoeConfig.Expert> gated, int layers, int hidden,
                                          Checkpoint base, CheckpointReader reader, List<String> problems) {
        StoredTensor embed = base.tensors().stream().filter(t -> t.name().endsWith("embed_tokens.weight"))
                .findFirst().orElse(null);
        if (embed == null || embed.shape().length != 2 || embed.shape()[1] != hidden) {
            problems.add(file + ": gate_mode cheap_embed reads the base's token embeddings, and " + base.directory()
                    + " has no [vocab, " + hidden + "] tensor named *embed_tokens.weight; use gate_mode: random or hidden");
            return null;
        }
        if (embed.quantization() != null || embed.lowRank() != null || !embed.dtype().writable()) {
            problems.add(file + ": gate_mode cheap_embed reads " + embed.name() + " of " + base.directory()
                    + " row by row, which needs a plain float tensor (it is " + embed.dtype().torchName()
                    + "); use gate_mode: random or hidden");
            return null;
        }
        float[][] vectors = new float[gated.size()][];
        try (PromptTokenizer tokenizer = PromptTokenizer.open(reader.hadoop(), base.sideFileDirectory());
             RangeReader files = new RangeReader(reader.hadoop())) {
            EmbeddingRows rows = new EmbeddingRows(files, embed);
            for (int e = 0; e < gated.size(); e++) {
                MoeConfig.Expert expert = gated.get(e);
                double[] v = normalized(sum(tokenizer, rows, expert.positivePrompts()));
                if (!expert.negativePrompts().isEmpty()) {
                    double[] negative = normalized(sum(tokenizer, rows, expert.negativePrompts()));
                    for (int h = 0; h < hidden; h++) {
                        v[h] -= negative[h];
                    }
                }
                v = normalized(v);
                vectors[e] = new float[hidden];
                for (int h = 0; h < hidden; h++) {
                    vectors[e][h] = (float) v[h];
                }
            }
        } catch (FormatException e) {
            problems.addAll(e.problems());
            return null;
        } catch (UncheckedIOException e) {
            problems.add(embed.file() + ": cannot read " + embed.name() + ": " + e.getMessage());
            return null;
        }
        float[][][] out = new float[layers][][];
        for (int l = 0; l < layers; l++) {
            out[l] = vectors;
        }
        return out;
    }

    private static double[] sum(PromptTokenizer tokenizer, EmbeddingRows rows, List<String> prompts) {
        double[] sum = new double[rows.hidden];
        for (String prompt : prompts) {
            for (long id : tokenizer.ids(prompt)) {
                float[] row = rows.row(id);
                for (int h = 0; h < sum.length; h++) {
                    sum[h] += row[h];
                }
            }
        }
        return sum;
    }

    /** {@code v / max(|v|, 1e-8)}, the widely used tool's clamped normalization. */
    private static double[] normalized(double[] v) {
        double squares = 0;
        for (double x : v) {
            squares += x * x;
        }
        double norm = Math.max(Math.sqrt(squares), 1e-8);
        double[] out = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = v[i] / norm;
        }
        return out;
    }

    /** Rows of an embedding, read one at a time at their offsets and kept (prompts repeat tokens). */
    private static final class EmbeddingRows {
        final StoredTensor embed;
        final int hidden;
        final RangeReader files;
        final Map<Long, float[]> cache = new HashMap<>();

        EmbeddingRows(RangeReader files, StoredTensor embed) {
            this.embed = embed;
            this.hidden = (int) embed.shape()[1];
            this.files = files;
        }

        float[] row(long id) {
            if (id < 0 || id >= embed.shape()[0]) {
                throw new FormatException(List.of(embed.file() + ": token id " + id + " of a prompt is past the "
                        + embed.shape()[0] + " rows of " + embed.name() + "; the tokenizer and the embeddings of the "
                        + "base model disagree"));
            }
            return cache.computeIfAbsent(id, r -> {
                int bytes = hidden * embed.dtype().byteSize();
                return FloatBytes.decode(files.readBytes(embed.file(), embed.offset() + r * bytes, bytes), embed.dtype());
            });
        }
    }

    private static float[][][] fromFile(String file, MoeConfig moe, int experts, int layers, int hidden,
                                        CheckpointReader reader, List<String> problems) {
        if (moe.gateVectors() == null) {
            problems.add(file + ": gate_mode " + moe.gateMode().configName() + " builds the routers from the base "
                    + "model's hidden states on the prompts, which Amalgam does not compute (it runs no model); "
                    + "compute them with scripts/gate-vectors.py CONFIG GATES.safetensors (transformers on the base "
                    + "model) and add gate_vectors: GATES.safetensors, or use gate_mode: cheap_embed or random");
            return null;
        }
        List<StoredTensor> tensors;
        try {
            tensors = reader.readFile(moe.gateVectors());
        } catch (FormatException e) {
            problems.addAll(e.problems().stream().map(p -> file + ": gate_vectors: " + p).toList());
            return null;
        }
        Map<String, StoredTensor> byName = new HashMap<>();
        tensors.forEach(t -> byName.put(t.name(), t));
        int before = problems.size();
        float[][][] out = new float[layers][][];
        try (RangeReader files = new RangeReader(reader.hadoop())) {
            for (int l = 0; l < layers; l++) {
                StoredTensor t = byName.get("layers." + l);
                if (t == null || t.shape().length != 2 || t.shape()[0] != experts || t.shape()[1] != hidden
                        || t.quantization() != null || !t.dtype().writable()) {
                    problems.add(moe.gateVectors() + ": needs a float tensor 'layers." + l + "' of shape [" + experts
                            + ", " + hidden + "] (one gate vector per gated expert, in config order)"
                            + (t == null ? "; it has none" : "; it is " + t.dtype().torchName() + " "
                            + java.util.Arrays.toString(t.shape())));
                    continue;
                }
                float[] values = FloatBytes.decode(files.readBytes(t.file(), t.offset(),
                        Math.toIntExact(t.dataBytes())), t.dtype());
                out[l] = new float[experts][hidden];
                for (int e = 0; e < experts; e++) {
                    System.arraycopy(values, e * hidden, out[l][e], 0, hidden);
                }
            }
        } catch (UncheckedIOException e) {
            problems.add(moe.gateVectors() + ": cannot be read: " + e.getMessage());
        }
        return problems.size() == before ? out : null;
    }
}
