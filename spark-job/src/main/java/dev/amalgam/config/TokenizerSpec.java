package dev.amalgam.config;

import java.util.Map;

/**
 * The vocabulary settings beyond {@code tokenizer_source}: the {@code tokenizer:} section's
 * {@code tokens} and {@code pad_to_multiple_of}, and {@code chat_template}.
 *
 * @param tokens          per token (in config order): where its embedding row comes from
 * @param padToMultipleOf the output's embedding rows are padded to a multiple of this, or null
 * @param chatTemplate    a built-in template's name, {@code auto}, or a Jinja template; null for none
 */
public record TokenizerSpec(Map<String, TokenSpec> tokens, Integer padToMultipleOf, String chatTemplate) {
    public static final TokenizerSpec NONE = new TokenizerSpec(Map.of(), null, null);

    /** One token's embedding: from {@code source} (null: the automatic rule), {@code force}d even where a model has it. */
    public record TokenSpec(TokenSource source, boolean force) {
    }

    /** Where a token's embedding row comes from. */
    public sealed interface TokenSource {
        /** The same token's row in {@code model}. */
        record Model(String model) implements TokenSource {
        }

        /** Row {@code tokenId} of {@code model}, or the row of {@code token} in its vocabulary. */
        record ModelToken(String model, String token, Integer tokenId) implements TokenSource {
        }

        /** Zeros. */
        record Zero() implements TokenSource {
        }
    }

    /** Whether anything here asks for more than the tokenizer source's files copied. */
    public boolean any() {
        return !tokens.isEmpty() || padToMultipleOf != null || chatTemplate != null;
    }
}
