/* attn/text.h - tokenizers (library attn_text): the WordPiece tokenizer of
 * uncased BERT models and the byte-level BPE of GPT-2-style models such as
 * SmolLM2 (second half of this header).
 *
 * WordPiece (src/text/wordpiece.c), for uncased BERT models (e.g.
 * all-MiniLM-L6-v2), giving the same ids as Hugging Face's tokenizer for
 * such a model (the Rust `tokenizers` BertNormalizer, BertPreTokenizer and
 * WordPiece that sentence-transformers runs; tokenizer_config.json with
 * do_lower_case true, tokenize_chinese_chars true, strip_accents unset).
 *
 * Encoding a text (UTF-8), in the reference's order:
 *   1. Special tokens written in the text ("[CLS]", "[SEP]", "[PAD]",
 *      "[UNK]", "[MASK]", exact and case-sensitive, as far as the vocabulary
 *      has them) are cut out first and kept as they are; each piece of text
 *      between them goes through steps 2-6 on its own.
 *   2. Clean-up: U+0000, U+FFFD and control, format and private-use
 *      characters (categories Cc, Cf, Co) are dropped, except tab, LF and
 *      CR, which like every White_Space character become a space.
 *   3. Spaces are put around CJK ideographs (BERT's code point ranges).
 *   4. Accents: canonical decomposition (NFD), then nonspacing marks (Mn)
 *      are dropped.
 *   5. Lowercase, character by character: no final-sigma rule (capital
 *      sigma is always U+03C3); U+0130 is "i" (step 4 dropped its dot).
 *   6. Words: split at spaces; every punctuation character (ASCII 33-47,
 *      58-64, 91-96, 123-126 and categories P*) is a word of its own.
 *   7. WordPiece per word: greedy longest match first, continuation pieces
 *      prefixed "##"; a word of more than 100 characters, or one that
 *      cannot be covered, is a single [UNK].
 * The Unicode data is the reference's, whose parts come from different
 * Unicode versions: categories of 8.0, NFD of 9.0, lowercase and White_Space
 * of 17.0 (so, as in the reference, a character newer than 8.0 is never
 * dropped, stripped or punctuation). See scripts/gen_unicode_data.py.
 *
 * Errors: statuses of attn/attn.h, the detail in attn_last_error(); on error
 * nothing is written and nothing leaks. Allocation goes through attn_alloc.
 * A loaded attn_wordpiece is immutable: any number of threads may use it at once.
 */
#ifndef ATTN_TOK_H
#define ATTN_TOK_H

#include <attn.h>
#include <attn/gguf.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Limits on a vocabulary: its bytes, and the bytes of one token. */
#define ATTN_WORDPIECE_MAX_VOCAB_BYTES ((size_t)1 << 30)
#define ATTN_WORDPIECE_MAX_TOKEN_BYTES 256
/* Words longer than this (in characters, after normalisation) are [UNK]. */
#define ATTN_WORDPIECE_MAX_WORD_CHARS 100

typedef struct attn_wordpiece attn_wordpiece;

/* Loads vocab.txt: one token per line, the id of a token is its line number
 * counted from 0. Lines end in LF (a CR before it is dropped); the last line
 * may lack its LF. The file is untrusted; each of these is ATTN_BAD_FILE
 * naming the line: an empty line, a token that is not valid UTF-8, holds an
 * ASCII control character or space, or is longer than ATTN_WORDPIECE_MAX_TOKEN_BYTES,
 * a token already on an earlier line (real BERT vocabularies have no
 * duplicates), a file without "[UNK]", "[CLS]", "[SEP]" or "[PAD]" ("[MASK]"
 * is optional), or larger than ATTN_WORDPIECE_MAX_VOCAB_BYTES. ATTN_IO if the file
 * cannot be read. */
ATTN_API attn_status attn_wordpiece_load(const char *vocab_path, attn_wordpiece **out);
/* The same from len bytes in memory (copied; data may be freed after). */
ATTN_API attn_status attn_wordpiece_load_memory(const char *data, size_t len,
                                                attn_wordpiece **out);
ATTN_API void attn_wordpiece_free(attn_wordpiece *t); /* accepts NULL */

/* Number of tokens (ids are 0 .. size-1); -1 if t is NULL. */
ATTN_API int64_t attn_wordpiece_vocab_size(const attn_wordpiece *t);
/* The token of an id (NUL-terminated, owned by t), or NULL if out of range. */
ATTN_API const char *attn_wordpiece_token(const attn_wordpiece *t, int32_t id);
/* The id of a token, or -1 if it is not in the vocabulary (or an argument is
 * NULL). */
ATTN_API int32_t attn_wordpiece_id(const attn_wordpiece *t, const char *token);
/* The id of a special token by name: "[PAD]", "[UNK]", "[CLS]", "[SEP]" or
 * "[MASK]"; -1 for another name or one the vocabulary lacks. */
ATTN_API int32_t attn_wordpiece_special(const attn_wordpiece *t, const char *name);

/* Encodes one text (NUL-terminated UTF-8; so without U+0000, which the
 * reference drops anyway) as
 *     [CLS] word pieces of the text [SEP]
 * truncated as Hugging Face's truncation does: with more than max_len - 2
 * pieces, the first max_len - 2 are kept, so n <= max_len. max_len >= 2;
 * all-MiniLM-L6-v2 under sentence-transformers uses 256 (max_seq_length of
 * sentence_bert_config.json); the model's own limit is 512.
 *   ids     [cap]     the ids; may be NULL only when cap is 0.
 *   n                 the number of ids.
 *   offsets [cap][2]  optional (NULL: not written): for each id the byte
 *                     range [begin, end) of text it comes from; (-1, -1) for
 *                     the [CLS] and [SEP] added around the text. A piece
 *                     spans its first character's source bytes to its last
 *                     one's (for labelling attention maps).
 * With ids NULL and cap 0 only *n is computed (ask for the size, then pass
 * the memory). ATTN_BAD_DIM if cap is smaller than the count (cap >= max_len
 * always suffices); ATTN_BAD_PARAM if text is not valid UTF-8 (naming the
 * byte offset) or max_len < 2; ATTN_OVERLAP if ids, offsets and text share
 * bytes. */
ATTN_API attn_status attn_wordpiece_encode(const attn_wordpiece *t, const char *text, int64_t max_len,
                                     int32_t *ids, int64_t cap, int64_t *n,
                                     int64_t *offsets);

/* ---- byte-level BPE (src/text/bpe.c) --------------------------------------------
 *
 * The byte-level BPE of GPT-2, giving the same ids as Hugging Face's Rust
 * tokenizers for SmolLM2 (its tokenizer.json: no normalizer; pre-tokenizer
 * Sequence[Digits(individual_digits), ByteLevel(add_prefix_space false,
 * use_regex)]; BPE without unk_token, dropout or byte fallback; ByteLevel
 * decoder), built from a vocabulary and merges, usually those of a GGUF file
 * (tokenizer.ggml.*, llama.cpp's names).
 *
 * Encoding a text (UTF-8), in the reference's order:
 *   1. Added tokens written in the text are cut out first and become their
 *      ids: USER_DEFINED tokens always, CONTROL tokens (<|im_start|>,
 *      <|im_end|>, <|endoftext|>, ...) only with parse_special; at the
 *      leftmost position where one starts, the longest wins. Each piece of
 *      text between them goes through steps 2-5 on its own.
 *   2. ATTN_BPE_PRE_SMOLLM: every numeric character (categories Nd, Nl, No
 *      of Unicode 17.0, Rust's char::is_numeric) becomes a piece of its own.
 *   3. Each piece is cut into words by the GPT-2 regex
 *        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *      matched from the left, the first alternative that matches winning,
 *      each as long as it can (Oniguruma's rules: \p{L}, \p{N} are the
 *      categories of Unicode 16.0, \s is White_Space, the contractions are
 *      case-sensitive, the " ?" is U+0020 only). So a run of whitespace
 *      before a non-space keeps its last character for the next word
 *      (" world"), and the end of a piece ends every run.
 *   4. The bytes of each word become GPT-2's byte characters (printable
 *      Latin-1 bytes stand for themselves, the other 68 for U+0100..U+0143
 *      in byte order: "Ġ" is the space, "Ċ" LF). A byte whose character the
 *      vocabulary lacks is dropped, as the reference does without unk_token
 *      (SmolLM2's vocabulary lacks 21 bytes: 0x04, 0x06, 0x13, 0x14, 0x16,
 *      0x1D, 0xC0, 0xC1, 0xF1, 0xF2, 0xF5-0xFF).
 *   5. BPE: the characters of the word are tokens; repeatedly the adjacent
 *      pair with the lowest merge rank (the leftmost of equal ranks) is
 *      replaced by its merge, until no adjacent pair has one.
 * Decoding maps each token's characters back to bytes (a token with a
 * character outside the 256 gives its UTF-8 as it is, as the reference
 * does); the bytes of a token may end inside a UTF-8 character, which the
 * stream decoder below handles.
 *
 * A built attn_bpe is immutable: any number of threads may use it at once.
 */

/* Longest token, in bytes. */
#define ATTN_BPE_MAX_TOKEN_BYTES 4096

typedef struct attn_bpe attn_bpe;

/* Pre-tokenizers (GGUF tokenizer.ggml.pre). */
typedef enum attn_bpe_pre {
    ATTN_BPE_PRE_GPT2 = 0,  /* steps 3-5 only: "gpt-2" */
    ATTN_BPE_PRE_SMOLLM = 1 /* digits split first: "smollm", "starcoder" */
} attn_bpe_pre;

/* Token types, as GGUF numbers them (tokenizer.ggml.token_type). CONTROL
 * and USER_DEFINED tokens are the added tokens of step 1; the others are
 * ordinary vocabulary entries. */
typedef enum attn_bpe_type {
    ATTN_BPE_TYPE_UNDEFINED = 0,
    ATTN_BPE_TYPE_NORMAL = 1,
    ATTN_BPE_TYPE_UNKNOWN = 2,
    ATTN_BPE_TYPE_CONTROL = 3,
    ATTN_BPE_TYPE_USER_DEFINED = 4,
    ATTN_BPE_TYPE_UNUSED = 5,
    ATTN_BPE_TYPE_BYTE = 6
} attn_bpe_type;

typedef enum attn_bpe_special {
    ATTN_BPE_SPECIAL_BOS = 0,
    ATTN_BPE_SPECIAL_EOS = 1,
    ATTN_BPE_SPECIAL_PAD = 2,
    ATTN_BPE_SPECIAL_UNK = 3
} attn_bpe_special;

/* A vocabulary: token id i is tokens[i]. Everything is copied. */
typedef struct attn_bpe_config {
    int64_t n_tokens;              /* 1 to INT32_MAX */
    const char *const *tokens;     /* [n_tokens] UTF-8, each 1 to ATTN_BPE_MAX_TOKEN_BYTES
                                      bytes without NUL, no two alike */
    const size_t *token_lens;      /* [n_tokens] their bytes; NULL: NUL-terminated */
    const int32_t *token_types;    /* [n_tokens] attn_bpe_type; NULL: all NORMAL */
    int64_t n_merges;              /* 0 to INT32_MAX */
    const char *const *merges;     /* [n_merges] "left right": one space between two
                                      tokens whose concatenation is a token; rank = index;
                                      no pair twice */
    const size_t *merge_lens;      /* [n_merges] their bytes; NULL: NUL-terminated */
    attn_bpe_pre pre;
    int32_t bos_id, eos_id, pad_id, unk_id; /* -1: none (only reported, never added) */
} attn_bpe_config;

/* No tokens, no merges, ATTN_BPE_PRE_GPT2, every special id -1. */
ATTN_API attn_bpe_config attn_bpe_config_default(void);

/* Builds a tokenizer from cfg; anything in it that breaks the rules above
 * is ATTN_BAD_PARAM naming the field and index. */
ATTN_API attn_status attn_bpe_create(const attn_bpe_config *cfg, attn_bpe **out);
/* Builds a tokenizer from a GGUF file's tokenizer.ggml.* keys: model (must
 * be "gpt2", else ATTN_UNSUPPORTED), pre ("gpt-2", "smollm" or "starcoder",
 * else ATTN_UNSUPPORTED), tokens, merges, token_type (optional) and
 * bos/eos/padding/unknown_token_id (optional). A missing or mistyped key, or
 * contents that break the rules of attn_bpe_config, is ATTN_BAD_FILE naming
 * the key and index. The tokenizer does not refer to g afterwards. */
ATTN_API attn_status attn_bpe_load_gguf(const attn_gguf *g, attn_bpe **out);
ATTN_API void attn_bpe_free(attn_bpe *t); /* accepts NULL */

/* Number of tokens; -1 for NULL. */
ATTN_API int64_t attn_bpe_vocab_size(const attn_bpe *t);
/* The token string of id (NUL-terminated, owned by t), or NULL if out of range. */
ATTN_API const char *attn_bpe_token(const attn_bpe *t, int32_t id);
/* The bytes id decodes to (owned by t; *len of them; not NUL-terminated
 * and possibly not whole UTF-8 characters), or NULL if out of range. */
ATTN_API const char *attn_bpe_token_bytes(const attn_bpe *t, int32_t id, size_t *len);
/* The type of id (attn_bpe_type), or -1 if out of range. */
ATTN_API int attn_bpe_token_type(const attn_bpe *t, int32_t id);
/* The id of a token string, or -1 (also for NULL arguments). */
ATTN_API int32_t attn_bpe_token_id(const attn_bpe *t, const char *token);
/* A special id of the configuration, or -1. */
ATTN_API int32_t attn_bpe_special_id(const attn_bpe *t, attn_bpe_special which);

/* Encodes text [len] (UTF-8; may hold U+0000; text may be NULL when len is
 * 0) into ids [cap], *n of them; nothing is added around the text (no BOS).
 * With ids NULL and cap 0 only *n is computed. ATTN_BAD_DIM if cap is
 * smaller than the count (cap >= len always suffices); ATTN_BAD_PARAM if
 * text is not valid UTF-8 (naming the byte offset); ATTN_OVERLAP if ids
 * shares bytes with text or n; ATTN_NO_MEMORY for the scratch of the longest
 * word (72 bytes per byte of that word). */
ATTN_API attn_status attn_bpe_encode(const attn_bpe *t, const char *text, size_t len,
                                     int parse_special, int32_t *ids, int64_t cap, int64_t *n);
/* Steps 2 and 3 alone on text [len] (no added tokens): the byte range
 * [spans[i][0], spans[i][1]) of each word, *n of them, in spans [cap][2]
 * (for checking the pre-tokenizer, or labelling words). The buffer and
 * errors as attn_bpe_encode (a word has at least one character, so
 * cap >= len suffices). */
ATTN_API attn_status attn_bpe_pretokenize(const attn_bpe *t, const char *text, size_t len,
                                          int64_t *spans, int64_t cap, int64_t *n);
/* The bytes of ids [n_ids] one after the other into buf [cap], *n of them
 * (no NUL added; the result may be invalid UTF-8 where a character was cut
 * between ids that are missing). With skip_special, CONTROL tokens give
 * nothing. With buf NULL and cap 0 only *n is computed; ATTN_BAD_DIM if cap
 * is too small; ATTN_BAD_PARAM for an id out of range (naming its index). */
ATTN_API attn_status attn_bpe_decode(const attn_bpe *t, const int32_t *ids, int64_t n_ids,
                                     int skip_special, char *buf, size_t cap, size_t *n);

/* Streaming decode, one id at a time, for text being generated: the bytes
 * of a token may end inside a UTF-8 character, which the next token
 * completes. The state holds up to 3 bytes of an unfinished character;
 * zero it to start (attn_bpe_stream s = {{0}, 0}). */
typedef struct attn_bpe_stream {
    unsigned char pending[4];
    int n_pending;
} attn_bpe_stream;
/* Appends the bytes of id to the pending ones and writes to buf [cap] the
 * longest part that is whole characters, *n bytes of valid UTF-8 (no NUL).
 * An unfinished character at the end stays pending. Bytes that cannot
 * begin or continue a character are replaced, each maximal invalid
 * sequence by one U+FFFD (as Python's and Rust's lossy decoders do), and
 * *invalid (may be NULL) is set to 1, else 0. With buf NULL and cap 0 only
 * *n is computed and s is unchanged; ATTN_BAD_DIM if cap is too small (at
 * most 3 * (3 + token bytes) are needed), ATTN_BAD_PARAM for an id out of
 * range; on error s is unchanged. */
ATTN_API attn_status attn_bpe_stream_push(const attn_bpe *t, attn_bpe_stream *s, int32_t id,
                                          char *buf, size_t cap, size_t *n, int *invalid);
/* Ends the stream: an unfinished character left pending becomes one
 * U+FFFD (*invalid = 1) in buf [cap] (3 bytes suffice); s is zeroed. */
ATTN_API attn_status attn_bpe_stream_flush(attn_bpe_stream *s, char *buf, size_t cap, size_t *n,
                                           int *invalid);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_TOK_H */
