/* charvocab.h - the character vocabulary of the dates model (and of any
 * character-level task of `attn`): four special ids, then printable ASCII.
 *
 *   id 0 <pad>   1 <s> (BOS)   2 </s> (EOS)   3 <unk>
 *   id 4 + (c - 32) for the printable character c in 32 (' ') .. 126 ('~')
 *   vocabulary size 99
 */
#ifndef TASK_CHARVOCAB_H
#define TASK_CHARVOCAB_H

#include <attn/attn.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    TASK_CHAR_PAD = 0,
    TASK_CHAR_BOS = 1,
    TASK_CHAR_EOS = 2,
    TASK_CHAR_UNK = 3,
    TASK_CHAR_FIRST = 4, /* the id of ' ' */
    TASK_CHARVOCAB_SIZE = 99
};

/* The id of one byte: TASK_CHAR_UNK outside printable ASCII. */
int32_t task_charvocab_id(unsigned char c);

/* ids [strlen(s)] = the ids of the bytes of s (no BOS or EOS added); *n =
 * strlen(s). Ask for the size with ids == NULL and cap == 0 (sets *n only).
 * ATTN_NULL_ARG, ATTN_BAD_DIM (cap < 0), ATTN_BAD_PARAM (cap < strlen(s));
 * on error ids is untouched. */
attn_status task_charvocab_encode(const char *s, int32_t *ids, int64_t cap, int64_t *n);

/* out [cap] = the characters of ids [n] up to the first EOS (or all n), PAD
 * and BOS skipped, UNK written as '?', and a NUL; *len (may be NULL) = the
 * characters written. ATTN_NULL_ARG, ATTN_BAD_DIM (n < 0), ATTN_BAD_PARAM
 * (an id before the first EOS outside [0, 99), or cap too small); on error
 * out is untouched. ids may be NULL when n == 0. */
attn_status task_charvocab_decode(const int32_t *ids, int64_t n, char *out, size_t cap,
                                  size_t *len);

/* A printable label of an id for maps and dumps: "<pad>", "<s>", "</s>",
 * "<unk>", the character itself ("a", " "), or "<bad>" outside the
 * vocabulary. Never NULL; a static string. */
const char *task_charvocab_label(int32_t id);

#ifdef __cplusplus
}
#endif

#endif /* TASK_CHARVOCAB_H */
