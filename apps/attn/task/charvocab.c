/* charvocab.c - the character vocabulary (charvocab.h): byte <-> id, string
 * encode / decode with capacity checks, and printable labels. */
#include "charvocab.h"

#include <string.h>

int32_t task_charvocab_id(unsigned char c)
{
    return c >= 32 && c <= 126 ? TASK_CHAR_FIRST + (int32_t)(c - 32) : TASK_CHAR_UNK;
}

attn_status task_charvocab_encode(const char *s, int32_t *ids, int64_t cap, int64_t *n)
{
    if (s == NULL) return attn_fail(ATTN_NULL_ARG, "task_charvocab_encode: argument 's' is NULL");
    if (n == NULL) return attn_fail(ATTN_NULL_ARG, "task_charvocab_encode: argument 'n' is NULL");
    if (cap < 0)
        return attn_fail(ATTN_BAD_DIM, "task_charvocab_encode: argument 'cap' is %lld; it must be >= 0",
                         (long long)cap);
    size_t len = strlen(s);
    if (ids == NULL && cap == 0) {
        *n = (int64_t)len;
        return ATTN_OK;
    }
    if (ids == NULL) return attn_fail(ATTN_NULL_ARG, "task_charvocab_encode: argument 'ids' is NULL");
    if ((uint64_t)len > (uint64_t)cap)
        return attn_fail(ATTN_BAD_PARAM,
                         "task_charvocab_encode: argument 'cap' is %lld; the string needs %zu ids",
                         (long long)cap, len);
    for (size_t i = 0; i < len; i++) ids[i] = task_charvocab_id((unsigned char)s[i]);
    *n = (int64_t)len;
    return ATTN_OK;
}

/* Checks ids [n] up to the first EOS; returns the characters they decode to,
 * or -1 after recording the error. */
static int64_t decoded_length(const int32_t *ids, int64_t n)
{
    int64_t chars = 0;
    for (int64_t i = 0; i < n && ids[i] != TASK_CHAR_EOS; i++) {
        if (ids[i] < 0 || ids[i] >= TASK_CHARVOCAB_SIZE) {
            attn_fail(ATTN_BAD_PARAM,
                      "task_charvocab_decode: argument 'ids[%lld]' is %ld; it must be in [0, %d)",
                      (long long)i, (long)ids[i], TASK_CHARVOCAB_SIZE);
            return -1;
        }
        chars += ids[i] != TASK_CHAR_PAD && ids[i] != TASK_CHAR_BOS;
    }
    return chars;
}

attn_status task_charvocab_decode(const int32_t *ids, int64_t n, char *out, size_t cap,
                                  size_t *len)
{
    if (ids == NULL && n != 0)
        return attn_fail(ATTN_NULL_ARG, "task_charvocab_decode: argument 'ids' is NULL");
    if (out == NULL) return attn_fail(ATTN_NULL_ARG, "task_charvocab_decode: argument 'out' is NULL");
    if (n < 0)
        return attn_fail(ATTN_BAD_DIM, "task_charvocab_decode: argument 'n' is %lld; it must be >= 0",
                         (long long)n);
    int64_t chars = decoded_length(ids, n);
    if (chars < 0) return ATTN_BAD_PARAM;
    if ((uint64_t)chars >= (uint64_t)cap)
        return attn_fail(ATTN_BAD_PARAM,
                         "task_charvocab_decode: argument 'cap' is %zu; the text needs %lld bytes",
                         cap, (long long)chars + 1);
    size_t k = 0;
    for (int64_t i = 0; i < n && ids[i] != TASK_CHAR_EOS; i++) {
        if (ids[i] == TASK_CHAR_UNK) out[k++] = '?';
        if (ids[i] >= TASK_CHAR_FIRST) out[k++] = (char)(32 + ids[i] - TASK_CHAR_FIRST);
    }
    out[k] = '\0';
    if (len != NULL) *len = k;
    return ATTN_OK;
}

const char *task_charvocab_label(int32_t id)
{
    static const char *const specials[TASK_CHAR_FIRST] = {"<pad>", "<s>", "</s>", "<unk>"};
    static const char *const printable[TASK_CHARVOCAB_SIZE - TASK_CHAR_FIRST] = {
        " ", "!", "\"", "#", "$", "%", "&", "'", "(", ")", "*", "+", ",", "-", ".", "/",
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", ":", ";", "<", "=", ">", "?",
        "@", "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O",
        "P", "Q", "R", "S", "T", "U", "V", "W", "X", "Y", "Z", "[", "\\", "]", "^", "_",
        "`", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o",
        "p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z", "{", "|", "}", "~"};
    if (id < 0 || id >= TASK_CHARVOCAB_SIZE) return "<bad>";
    return id < TASK_CHAR_FIRST ? specials[id] : printable[id - TASK_CHAR_FIRST];
}
