/* attn/text.h - the WordPiece tokenizer of uncased BERT models (e.g.
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

#ifdef __cplusplus
}
#endif

#endif /* ATTN_TOK_H */
