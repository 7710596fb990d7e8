/* gguf.c - GGUF files (attn/gguf.h): mapping (or copying) a file and
 * validating it as untrusted input, lookups by key and by tensor name, and
 * tensors converted to float32 (F32, F16, BF16, Q8_0, Q4_1).
 *
 * The header is walked twice by the same code: the first walk checks
 * everything that can be checked from the bytes alone and measures what
 * the index needs (values of nested arrays, string elements, bytes of the
 * NUL-terminated copies of keys, names and string values); the second
 * fills one allocation of exactly that size. Checks that need the index
 * (unique keys and names, tensor offsets against the data section,
 * overlapping tensors) come after it. A failed file allocates nothing, or
 * frees the index before returning.
 *
 * Values are read with memcpy from the little-endian file image, so this
 * file needs a little-endian host.
 */
#include "core/carve.h"
#include "core/check.h"
#include "core/fileio.h"
#include "core/half.h"
#include "core/utf8.h"
#include "formats/json.h"

#include <attn/gguf.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf.c reads little-endian values with memcpy: it needs a little-endian host"
#endif

#define GG_DEFAULT_ALIGNMENT 32
#define GG_HEADER_BYTES 24 /* magic, version, two counts */
/* The smallest pair (key length 8, type 4, a one-byte value) and the
 * smallest tensor info (name length 8, n_dims 4, type 4, offset 8): counts
 * are checked against these before anything is read, so an empty key or
 * name still gets its own message. */
#define GG_MIN_PAIR 13
#define GG_MIN_TENSOR 24

/* ---- names and block sizes ------------------------------------------------------- */

const char *attn_gguf_type_name(attn_gguf_type t)
{
    static const char *const names[] = {"UINT8", "INT8",  "UINT16", "INT16",  "UINT32",
                                         "INT32", "FLOAT32", "BOOL", "STRING", "ARRAY",
                                         "UINT64", "INT64", "FLOAT64"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

const char *attn_gguf_tensor_type_name(attn_gguf_tensor_type t)
{
    switch (t) {
#define NAME(name, value, block, bytes) \
    case ATTN_GGUF_TENSOR_TYPE_##name:  \
        return #name;
        ATTN_GGUF_TENSOR_TYPE_TABLE(NAME)
#undef NAME
    }
    return NULL;
}

/* Elements and bytes of a block of type t; false outside the table. */
static bool block_of(uint32_t t, int64_t *elems, size_t *bytes)
{
    switch ((attn_gguf_tensor_type)t) {
#define BLOCK(name, value, block, size) \
    case ATTN_GGUF_TENSOR_TYPE_##name:  \
        *elems = block;                 \
        *bytes = size;                  \
        return true;
        ATTN_GGUF_TENSOR_TYPE_TABLE(BLOCK)
#undef BLOCK
    }
    return false;
}

attn_status attn_gguf_tensor_type_block(attn_gguf_tensor_type t, int64_t *block_elems,
                                        size_t *block_bytes)
{
    const char *fn = "attn_gguf_tensor_type_block";
    ATTN__NOT_NULL(fn, block_elems);
    ATTN__NOT_NULL(fn, block_bytes);
    int64_t e;
    size_t b;
    if (!block_of((uint32_t)t, &e, &b))
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 't' is %d, which is not a GGUF tensor type",
                         fn, (int)t);
    *block_elems = e;
    *block_bytes = b;
    return ATTN_OK;
}

/* Bytes of a scalar value type; 0 for STRING, ARRAY and unknown types. */
static size_t scalar_size(uint32_t type)
{
    static const unsigned char size[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return type < sizeof size ? size[type] : 0;
}

/* ---- the file and its index ------------------------------------------------------- */

struct attn_gguf_value {
    const char *key;               /* the pair it belongs to (for messages) */
    uint32_t type;                 /* attn_gguf_type */
    uint32_t elem_type;            /* arrays: the element type */
    uint64_t count;                /* arrays: elements; strings: bytes */
    const unsigned char *data;     /* the value's bytes (arrays: the first element) */
    const char *str;               /* strings of pairs: a NUL-terminated copy */
    const unsigned char **elems;   /* arrays of strings: [count] each string's length field */
    struct attn_gguf_value *items; /* arrays of arrays: [count] */
};

typedef struct gg_kv {
    const char *key;
    attn_gguf_value v;
} gg_kv;

struct attn_gguf {
    const unsigned char *image; /* [size] the file */
    size_t size;
    bool mapped;                /* image is an mmap, else an attn_alloc copy */
    uint32_t version;
    size_t alignment, data_offset;
    int64_t n_kv, n_tensors;
    gg_kv *kv;                  /* [n_kv] in file order */
    attn_gguf_tensor_info *t;   /* [n_tensors] in file order */
    size_t *kv_slots, *t_slots; /* hash tables: index + 1 by hash, 0 empty */
    size_t kv_mask, t_mask;
};

/* One walk over the header. The first (fill false) checks and counts
 * n_nodes, n_elems and n_pool; the second hands them out from the index. */
typedef struct walk {
    const char *prefix;
    const unsigned char *img;
    size_t size, pos;
    bool fill;
    size_t n_nodes, n_elems, n_pool;
    attn_gguf_value *nodes;
    const unsigned char **elems;
    char *pool;
    const char *key;  /* the pair being read, for messages (not NUL-terminated) */
    int key_len;
    const char *key_copy; /* its copy in the pool (second walk) */
    uint32_t version;
    uint64_t n_tensors, n_kv;
    size_t alignment;
} walk;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static attn_status bad_at(const walk *w, size_t at, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return attn_fail(ATTN_BAD_FILE, "%s: byte %zu: %s", w->prefix, at, msg);
}

static size_t left(const walk *w) { return w->size - w->pos; }

static attn_status need(const walk *w, uint64_t n, const char *what)
{
    if (n <= left(w)) return ATTN_OK;
    return bad_at(w, w->pos, "%s needs %llu bytes; the file ends %zu bytes later", what,
                  (unsigned long long)n, left(w));
}

static attn_status rd_u32(walk *w, const char *what, uint32_t *v)
{
    attn_status st = need(w, 4, what);
    if (st != ATTN_OK) return st;
    memcpy(v, w->img + w->pos, 4);
    w->pos += 4;
    return ATTN_OK;
}

static attn_status rd_u64(walk *w, const char *what, uint64_t *v)
{
    attn_status st = need(w, 8, what);
    if (st != ATTN_OK) return st;
    memcpy(v, w->img + w->pos, 8);
    w->pos += 8;
    return ATTN_OK;
}

/* A string: *s at its bytes, *len their count (checked against the file). */
static attn_status rd_str(walk *w, const char *what, const unsigned char **s, uint64_t *len)
{
    attn_status st = rd_u64(w, what, len);
    if (st != ATTN_OK) return st;
    if (*len > left(w))
        return bad_at(w, w->pos - 8, "%s is %llu bytes long; the file ends %zu bytes later", what,
                      (unsigned long long)*len, left(w));
    *s = w->img + w->pos;
    w->pos += (size_t)*len;
    return ATTN_OK;
}

/* A NUL-terminated copy of s [len] from the pool (counted in the first walk). */
static const char *pool_copy(walk *w, const unsigned char *s, size_t len)
{
    char *p = w->fill ? w->pool + w->n_pool : NULL;
    if (p != NULL) {
        if (len > 0) memcpy(p, s, len);
        p[len] = '\0';
    }
    w->n_pool += len + 1;
    return p;
}

/* A key or tensor name: 1 to max bytes of UTF-8 without NUL. */
static attn_status check_name(const walk *w, size_t at, const char *what, const unsigned char *s,
                              uint64_t len, size_t max)
{
    if (len == 0) return bad_at(w, at, "%s is empty", what);
    if (len > max)
        return bad_at(w, at, "%s is %llu bytes long; at most %zu are allowed", what,
                      (unsigned long long)len, max);
    if (memchr(s, 0, (size_t)len) != NULL) return bad_at(w, at, "%s contains a NUL byte", what);
    if (!attn__json_utf8_ok((const char *)s, (size_t)len))
        return bad_at(w, at, "%s is not valid UTF-8", what);
    return ATTN_OK;
}

/* ---- metadata values ------------------------------------------------------------------ */

static attn_status walk_value(walk *w, uint32_t type, int depth, attn_gguf_value *v);

/* The elements of an array of count elements of type elem at w->pos. */
static attn_status walk_elements(walk *w, uint32_t elem, uint64_t count, int depth,
                                 attn_gguf_value *v)
{
    size_t size = scalar_size(elem);
    if (size > 0) {
        size_t at = w->pos;
        if (elem == ATTN_GGUF_TYPE_BOOL)
            for (uint64_t i = 0; i < count; i++)
                if (w->img[at + i] > 1)
                    return bad_at(w, at + (size_t)i, "element %llu of the BOOL array '%.*s' is %u; "
                                  "it must be 0 or 1", (unsigned long long)i, w->key_len, w->key,
                                  w->img[at + i]);
        w->pos += (size_t)count * size;
        return ATTN_OK;
    }
    if (elem == ATTN_GGUF_TYPE_STRING) {
        if (v != NULL) v->elems = w->elems + w->n_elems;
        w->n_elems += (size_t)count;
        for (uint64_t i = 0; i < count; i++) {
            char what[300];
            snprintf(what, sizeof what, "string %llu of '%.*s'", (unsigned long long)i,
                     w->key_len, w->key);
            const unsigned char *s = NULL;
            uint64_t len = 0;
            if (v != NULL) v->elems[i] = w->img + w->pos;
            attn_status st = rd_str(w, what, &s, &len);
            if (st != ATTN_OK) return st;
        }
        return ATTN_OK;
    }
    attn_gguf_value *items = w->fill ? w->nodes + w->n_nodes : NULL;
    if (v != NULL) v->items = items;
    w->n_nodes += (size_t)count;
    for (uint64_t i = 0; i < count; i++) {
        attn_status st = walk_value(w, ATTN_GGUF_TYPE_ARRAY, depth + 1, items ? &items[i] : NULL);
        if (st != ATTN_OK) return st;
    }
    return ATTN_OK;
}

static attn_status walk_array(walk *w, int depth, attn_gguf_value *v)
{
    size_t at = w->pos;
    if (depth >= ATTN_GGUF_MAX_DEPTH)
        return bad_at(w, at, "'%.*s' nests arrays deeper than %d levels", w->key_len, w->key,
                      ATTN_GGUF_MAX_DEPTH);
    char what[300];
    snprintf(what, sizeof what, "the array header of '%.*s'", w->key_len, w->key);
    uint32_t elem;
    uint64_t count;
    attn_status st = rd_u32(w, what, &elem);
    if (st == ATTN_OK) st = rd_u64(w, what, &count);
    if (st != ATTN_OK) return st;
    if (elem > ATTN_GGUF_TYPE_FLOAT64)
        return bad_at(w, at, "the array '%.*s' has element type %u, which is not a GGUF type "
                      "(0-12)", w->key_len, w->key, elem);
    size_t least = elem == ATTN_GGUF_TYPE_STRING ? 8 : elem == ATTN_GGUF_TYPE_ARRAY ? 12
                                                                                    : scalar_size(elem);
    if (count > left(w) / least)
        return bad_at(w, at, "the array '%.*s' of %llu %s elements cannot fit in the %zu bytes "
                      "left", w->key_len, w->key, (unsigned long long)count,
                      attn_gguf_type_name((attn_gguf_type)elem), left(w));
    if (v != NULL) {
        v->elem_type = elem;
        v->count = count;
        v->data = w->img + w->pos;
    }
    return walk_elements(w, elem, count, depth, v);
}

/* A value of type type at w->pos; v (second walk only) receives it. */
static attn_status walk_value(walk *w, uint32_t type, int depth, attn_gguf_value *v)
{
    if (v != NULL) {
        memset(v, 0, sizeof *v);
        v->key = w->key_copy;
        v->type = type;
    }
    size_t at = w->pos, size = scalar_size(type);
    char what[300];
    snprintf(what, sizeof what, "the value of '%.*s'", w->key_len, w->key);
    if (size > 0) {
        attn_status st = need(w, size, what);
        if (st != ATTN_OK) return st;
        if (type == ATTN_GGUF_TYPE_BOOL && w->img[at] > 1)
            return bad_at(w, at, "the BOOL '%.*s' is %u; it must be 0 or 1", w->key_len, w->key,
                          w->img[at]);
        if (v != NULL) v->data = w->img + at;
        w->pos += size;
        return ATTN_OK;
    }
    if (type == ATTN_GGUF_TYPE_STRING) {
        const unsigned char *s = NULL;
        uint64_t len = 0;
        attn_status st = rd_str(w, what, &s, &len);
        if (st != ATTN_OK) return st;
        const char *copy = depth == 0 ? pool_copy(w, s, (size_t)len) : NULL;
        if (v != NULL) {
            v->count = len;
            v->data = s;
            v->str = copy;
        }
        return ATTN_OK;
    }
    if (type == ATTN_GGUF_TYPE_ARRAY) return walk_array(w, depth, v);
    return bad_at(w, at - 4, "the value type of '%.*s' is %u, which is not a GGUF type (0-12)",
                  w->key_len, w->key, type);
}

/* general.alignment: a UINT32 power of two. */
static attn_status take_alignment(walk *w, uint32_t type, size_t at)
{
    if (type != ATTN_GGUF_TYPE_UINT32)
        return bad_at(w, at, "general.alignment is a %s; it must be a UINT32",
                      attn_gguf_type_name((attn_gguf_type)type));
    uint32_t a;
    memcpy(&a, w->img + at, 4);
    if (a == 0 || (a & (a - 1)) != 0)
        return bad_at(w, at, "general.alignment is %u; it must be a power of two", a);
    w->alignment = a;
    return ATTN_OK;
}

/* Pair i (its key, type and value) into kv (second walk only). */
static attn_status walk_pair(walk *w, uint64_t i, gg_kv *kv)
{
    char what[64];
    snprintf(what, sizeof what, "the key of pair %llu", (unsigned long long)i);
    size_t at = w->pos;
    const unsigned char *k = NULL;
    uint64_t klen = 0;
    attn_status st = rd_str(w, what, &k, &klen);
    if (st == ATTN_OK) st = check_name(w, at, what, k, klen, ATTN_GGUF_MAX_KEY_BYTES);
    if (st != ATTN_OK) return st;
    w->key = (const char *)k;
    w->key_len = klen > 200 ? 200 : (int)klen;
    const char *key = pool_copy(w, k, (size_t)klen);
    w->key_copy = key;
    snprintf(what, sizeof what, "the value type of pair %llu", (unsigned long long)i);
    uint32_t type;
    st = rd_u32(w, what, &type);
    size_t value_at = w->pos;
    if (st == ATTN_OK) st = walk_value(w, type, 0, kv != NULL ? &kv->v : NULL);
    if (st != ATTN_OK) return st;
    if (kv != NULL) kv->key = key;
    if (klen == 17 && memcmp(k, "general.alignment", 17) == 0)
        return take_alignment(w, type, value_at);
    return ATTN_OK;
}

/* ---- tensor infos ---------------------------------------------------------------- */

/* The dims of tensor info t (n_dims read): element count and sizes. */
static attn_status tensor_sizes(const walk *w, size_t at, const char *name, int name_len,
                                uint32_t type, attn_gguf_tensor_info *t)
{
    int64_t block;
    size_t block_bytes;
    if (!block_of(type, &block, &block_bytes))
        return bad_at(w, at, "tensor '%.*s' has type %u, which is not a known GGUF tensor type",
                      name_len, name, type);
    t->type = (attn_gguf_tensor_type)type;
    if (t->dims[0] % block != 0)
        return bad_at(w, at, "tensor '%.*s': dims[0] = %lld is not a whole number of %s blocks "
                      "of %lld elements", name_len, name, (long long)t->dims[0],
                      attn_gguf_tensor_type_name(t->type), (long long)block);
    t->n_rows = 1;
    for (int d = 1; d < ATTN_GGUF_MAX_DIMS; d++)
        if (!attn__mul(t->n_rows, t->dims[d], &t->n_rows))
            return bad_at(w, at, "tensor '%.*s': its element count overflows", name_len, name);
    int64_t row_bytes, bytes;
    if (!attn__mul(t->n_rows, t->dims[0], &t->numel) ||
        !attn__mul(t->dims[0] / block, (int64_t)block_bytes, &row_bytes) ||
        !attn__mul(row_bytes, t->n_rows, &bytes))
        return bad_at(w, at, "tensor '%.*s': its element count overflows", name_len, name);
    t->row_bytes = (size_t)row_bytes;
    t->bytes = (size_t)bytes;
    return ATTN_OK;
}

/* Tensor info i into t (second walk only); t->offset holds the offset from
 * the data section until the layout is checked. */
static attn_status walk_tensor(walk *w, uint64_t i, attn_gguf_tensor_info *t)
{
    char what[64];
    snprintf(what, sizeof what, "the name of tensor %llu", (unsigned long long)i);
    size_t at = w->pos;
    const unsigned char *s = NULL;
    uint64_t len = 0;
    attn_status st = rd_str(w, what, &s, &len);
    if (st == ATTN_OK) st = check_name(w, at, what, s, len, ATTN_GGUF_MAX_NAME_BYTES);
    if (st != ATTN_OK) return st;
    const char *name = (const char *)s;
    int nl = len > 200 ? 200 : (int)len;
    attn_gguf_tensor_info info;
    memset(&info, 0, sizeof info);
    info.name = pool_copy(w, s, (size_t)len);
    snprintf(what, sizeof what, "the dims of tensor %llu", (unsigned long long)i);
    uint32_t n_dims, type;
    st = rd_u32(w, what, &n_dims);
    if (st != ATTN_OK) return st;
    if (n_dims > ATTN_GGUF_MAX_DIMS)
        return bad_at(w, w->pos - 4, "tensor '%.*s' has %u dims; at most %d are supported", nl,
                      name, n_dims, ATTN_GGUF_MAX_DIMS);
    info.n_dims = (int)n_dims;
    for (int d = 0; d < ATTN_GGUF_MAX_DIMS; d++) {
        uint64_t dim = 1;
        if ((uint32_t)d < n_dims && (st = rd_u64(w, what, &dim)) != ATTN_OK) return st;
        if (dim > (uint64_t)INT64_MAX)
            return bad_at(w, w->pos - 8, "tensor '%.*s': dims[%d] = %llu is not below 2^63", nl,
                          name, d, (unsigned long long)dim);
        info.dims[d] = (int64_t)dim;
    }
    snprintf(what, sizeof what, "the type and offset of tensor %llu", (unsigned long long)i);
    size_t type_at = w->pos;
    uint64_t offset;
    st = rd_u32(w, what, &type);
    if (st == ATTN_OK) st = rd_u64(w, what, &offset);
    if (st == ATTN_OK) st = tensor_sizes(w, type_at, name, nl, type, &info);
    if (st != ATTN_OK) return st;
    if (offset > SIZE_MAX) offset = SIZE_MAX; /* beyond any file: the layout check names it */
    info.offset = (size_t)offset;
    if (t != NULL) *t = info;
    return ATTN_OK;
}

/* ---- the whole header -------------------------------------------------------------- */

static attn_status walk_header(walk *w, gg_kv *kv, attn_gguf_tensor_info *t)
{
    w->pos = 0;
    w->n_nodes = w->n_elems = w->n_pool = 0;
    w->alignment = GG_DEFAULT_ALIGNMENT;
    w->key = "";
    w->key_len = 0;
    if (w->size < GG_HEADER_BYTES)
        return bad_at(w, 0, "the file has %zu bytes; a GGUF header needs %d", w->size,
                      GG_HEADER_BYTES);
    if (memcmp(w->img, "GGUF", 4) != 0)
        return bad_at(w, 0, "the magic is not \"GGUF\" (the file starts %02x %02x %02x %02x)",
                      w->img[0], w->img[1], w->img[2], w->img[3]);
    w->pos = 4;
    rd_u32(w, "the version", &w->version);
    rd_u64(w, "the tensor count", &w->n_tensors);
    rd_u64(w, "the metadata count", &w->n_kv);
    if (w->version != 2 && w->version != 3) {
        const char *why = w->version == 1 ? " (version 1, with 32-bit counts, is not supported)"
                          : w->version != 0 && (w->version & 0xFFFF) == 0 ? " (a big-endian file?)" : "";
        return bad_at(w, 4, "version %u; only versions 2 and 3 are supported%s", w->version, why);
    }
    if (w->n_kv > left(w) / GG_MIN_PAIR)
        return bad_at(w, 16, "%llu metadata pairs cannot fit in the %zu bytes left",
                      (unsigned long long)w->n_kv, left(w));
    if (w->n_tensors > left(w) / GG_MIN_TENSOR)
        return bad_at(w, 8, "%llu tensors cannot fit in the %zu bytes left",
                      (unsigned long long)w->n_tensors, left(w));
    for (uint64_t i = 0; i < w->n_kv; i++) {
        attn_status st = walk_pair(w, i, kv != NULL ? &kv[i] : NULL);
        if (st != ATTN_OK) return st;
    }
    for (uint64_t i = 0; i < w->n_tensors; i++) {
        attn_status st = walk_tensor(w, i, t != NULL ? &t[i] : NULL);
        if (st != ATTN_OK) return st;
    }
    return ATTN_OK;
}

/* ---- the index ---------------------------------------------------------------------- */

/* Index slot of key s in slots [mask + 1], where name(i) is item i's name. */
static size_t find_slot(const size_t *slots, size_t mask, const char *s,
                        const char *(*name)(const attn_gguf *, size_t), const attn_gguf *g)
{
    for (size_t i = attn__hash_bytes(s, strlen(s)) & mask;; i = (i + 1) & mask)
        if (slots[i] == 0 || strcmp(name(g, slots[i] - 1), s) == 0) return i;
}

static const char *kv_name(const attn_gguf *g, size_t i) { return g->kv[i].key; }
static const char *tensor_name(const attn_gguf *g, size_t i) { return g->t[i].name; }

static attn_status build_tables(const char *prefix, attn_gguf *g)
{
    for (int64_t i = 0; i < g->n_kv; i++) {
        size_t s = find_slot(g->kv_slots, g->kv_mask, g->kv[i].key, kv_name, g);
        if (g->kv_slots[s] != 0)
            return attn_fail(ATTN_BAD_FILE, "%s: the key '%.200s' appears twice (pairs %zu and %lld)",
                             prefix, g->kv[i].key, g->kv_slots[s] - 1, (long long)i);
        g->kv_slots[s] = (size_t)i + 1;
    }
    for (int64_t i = 0; i < g->n_tensors; i++) {
        size_t s = find_slot(g->t_slots, g->t_mask, g->t[i].name, tensor_name, g);
        if (g->t_slots[s] != 0)
            return attn_fail(ATTN_BAD_FILE, "%s: two tensors are named '%.200s' (tensors %zu and "
                             "%lld)", prefix, g->t[i].name, g->t_slots[s] - 1, (long long)i);
        g->t_slots[s] = (size_t)i + 1;
    }
    return ATTN_OK;
}

static int by_offset(const void *a, const void *b)
{
    const attn_gguf_tensor_info *x = *(const attn_gguf_tensor_info *const *)a;
    const attn_gguf_tensor_info *y = *(const attn_gguf_tensor_info *const *)b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

/* Every tensor aligned, inside the data section, and no two overlapping;
 * then offsets become file offsets. order [n_tensors] is scratch. */
static attn_status check_layout(const char *prefix, attn_gguf *g, const attn_gguf_tensor_info **order)
{
    size_t data_size = g->size >= g->data_offset ? g->size - g->data_offset : 0;
    if (g->n_tensors > 0 && g->data_offset > g->size)
        return attn_fail(ATTN_BAD_FILE, "%s: the data section would start at byte %zu, beyond the "
                         "end of the %zu-byte file", prefix, g->data_offset, g->size);
    for (int64_t i = 0; i < g->n_tensors; i++) {
        attn_gguf_tensor_info *t = &g->t[i];
        if (t->offset % g->alignment != 0)
            return attn_fail(ATTN_BAD_FILE, "%s: tensor '%.200s': offset %zu is not a multiple of "
                             "the alignment %zu", prefix, t->name, t->offset, g->alignment);
        if (t->offset > data_size || t->bytes > data_size - t->offset)
            return attn_fail(ATTN_BAD_FILE, "%s: tensor '%.200s': its %zu bytes at offset %zu end "
                             "beyond the %zu bytes of the data section", prefix, t->name,
                             t->bytes, t->offset, data_size);
        order[i] = t;
    }
    if (g->n_tensors > 1) qsort(order, (size_t)g->n_tensors, sizeof *order, by_offset);
    const attn_gguf_tensor_info *prev = NULL;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const attn_gguf_tensor_info *t = order[i];
        if (t->bytes == 0) continue;
        if (prev != NULL && prev->offset + prev->bytes > t->offset)
            return attn_fail(ATTN_BAD_FILE, "%s: tensors '%.200s' and '%.200s' overlap (data bytes "
                             "[%zu, %zu) and [%zu, %zu))", prefix, prev->name, t->name,
                             prev->offset, prev->offset + prev->bytes, t->offset,
                             t->offset + t->bytes);
        prev = t;
    }
    for (int64_t i = 0; i < g->n_tensors; i++) {
        g->t[i].offset += g->data_offset;
        g->t[i].data = g->image + g->t[i].offset;
    }
    return ATTN_OK;
}

/* The index of a walked image: one allocation holding everything. */
static attn_status build_index(walk *w, attn_gguf **out)
{
    size_t n_kv = (size_t)w->n_kv, n_t = (size_t)w->n_tensors, total = 0;
    size_t kv_cap = attn__table_size(n_kv), t_cap = attn__table_size(n_t);
    if (!attn__part_add(&total, 1, sizeof(attn_gguf)) || !attn__part_add(&total, n_kv, sizeof(gg_kv)) ||
        !attn__part_add(&total, n_t, sizeof(attn_gguf_tensor_info)) ||
        !attn__part_add(&total, w->n_nodes, sizeof(attn_gguf_value)) ||
        !attn__part_add(&total, w->n_elems, sizeof(unsigned char *)) ||
        !attn__part_add(&total, kv_cap + t_cap, sizeof(size_t)) ||
        !attn__part_add(&total, n_t, sizeof(attn_gguf_tensor_info *)) || !attn__part_add(&total, w->n_pool, 1))
        return attn_fail(ATTN_NO_MEMORY, "%s: the index of the file overflows size_t", w->prefix);
    unsigned char *block = attn_calloc(1, total), *p = block;
    if (block == NULL)
        return attn_fail(ATTN_NO_MEMORY, "%s: no memory for the %zu-byte index", w->prefix, total);
    attn_gguf *g = attn__part_take(&p, 1, sizeof *g);
    g->kv = attn__part_take(&p, n_kv, sizeof(gg_kv));
    g->t = attn__part_take(&p, n_t, sizeof(attn_gguf_tensor_info));
    w->nodes = attn__part_take(&p, w->n_nodes, sizeof(attn_gguf_value));
    w->elems = attn__part_take(&p, w->n_elems, sizeof(unsigned char *));
    g->kv_slots = attn__part_take(&p, kv_cap, sizeof(size_t));
    g->t_slots = attn__part_take(&p, t_cap, sizeof(size_t));
    const attn_gguf_tensor_info **order = attn__part_take(&p, n_t, sizeof *order);
    w->pool = attn__part_take(&p, w->n_pool, 1);
    w->fill = true;
    attn_status st = walk_header(w, g->kv, g->t); /* repeats the first walk: cannot fail */
    g->image = w->img;
    g->size = w->size;
    g->version = w->version;
    g->alignment = w->alignment;
    g->n_kv = (int64_t)n_kv;
    g->n_tensors = (int64_t)n_t;
    g->kv_mask = kv_cap - 1;
    g->t_mask = t_cap - 1;
    g->data_offset = w->pos + (w->alignment - w->pos % w->alignment) % w->alignment;
    if (st == ATTN_OK) st = build_tables(w->prefix, g);
    if (st == ATTN_OK) st = check_layout(w->prefix, g, order);
    if (st != ATTN_OK) {
        attn_release(block);
        return st;
    }
    *out = g;
    return ATTN_OK;
}

/* Validates image [size] and, on success, makes the new file own it. */
static attn_status parse_image(const char *prefix, const unsigned char *image, size_t size,
                               bool mapped, attn_gguf **out)
{
    walk w;
    memset(&w, 0, sizeof w);
    w.prefix = prefix;
    w.img = image;
    w.size = size;
    attn_status st = walk_header(&w, NULL, NULL);
    if (st == ATTN_OK && w.pos > SIZE_MAX - w.alignment)
        st = bad_at(&w, w.pos, "the data section's offset overflows");
    if (st == ATTN_OK) st = build_index(&w, out);
    if (st == ATTN_OK) (*out)->mapped = mapped;
    return st;
}

/* ---- loading ---------------------------------------------------------------------------- */

attn_status attn_gguf_load_memory(const void *data, size_t size, attn_gguf **out)
{
    const char *fn = "attn_gguf_load_memory";
    if (data == NULL && size > 0) return attn_fail(ATTN_NULL_ARG, "%s: argument 'data' is NULL", fn);
    ATTN__NOT_NULL(fn, out);
    unsigned char *image = attn_alloc(size > 0 ? size : 1);
    if (image == NULL) return attn_fail(ATTN_NO_MEMORY, "%s: no memory for a %zu-byte copy", fn, size);
    if (size > 0) memcpy(image, data, size);
    attn_status st = parse_image(fn, image, size, false, out);
    if (st != ATTN_OK) attn_release(image);
    return st;
}

/* Maps the regular file at path (opened by attn__open_input: never a FIFO
 * or a device) read-only into *image [*size] (NULL for an empty file). */
static attn_status map_file(const char *prefix, const char *path, const unsigned char **image,
                            size_t *size)
{
    int fd = -1;
    struct stat sb;
    attn_status st = attn__open_input(prefix, path, &fd, &sb);
    if (st != ATTN_OK) {
        *image = NULL;
        *size = 0;
        return st;
    }
    if ((uintmax_t)sb.st_size > SIZE_MAX / 2)
        st = attn_fail(ATTN_BAD_FILE, "%s: %jd bytes are more than this machine can map", prefix,
                       (intmax_t)sb.st_size);
    *image = NULL;
    *size = st == ATTN_OK ? (size_t)sb.st_size : 0;
    if (st == ATTN_OK && *size > 0) {
        void *p = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) st = attn_fail(ATTN_IO, "%s: cannot map: %s", prefix, strerror(errno));
        else *image = p;
    }
    close(fd);
    return st;
}

attn_status attn_gguf_load(const char *path, attn_gguf **out)
{
    ATTN__NOT_NULL("attn_gguf_load", path);
    ATTN__NOT_NULL("attn_gguf_load", out);
    char prefix[300];
    snprintf(prefix, sizeof prefix, "attn_gguf_load: '%.200s'", path);
    const unsigned char *image;
    size_t size;
    attn_status st = map_file(prefix, path, &image, &size);
    if (st == ATTN_OK) st = parse_image(prefix, image, size, true, out);
    if (st != ATTN_OK && image != NULL) munmap((void *)image, size);
    return st;
}

void attn_gguf_free(attn_gguf *g)
{
    if (g == NULL) return;
    if (g->mapped && g->image != NULL) munmap((void *)g->image, g->size);
    else if (!g->mapped) attn_release((void *)g->image);
    attn_release(g);
}

uint32_t attn_gguf_version(const attn_gguf *g) { return g != NULL ? g->version : 0; }
size_t attn_gguf_alignment(const attn_gguf *g) { return g != NULL ? g->alignment : 0; }
size_t attn_gguf_data_offset(const attn_gguf *g) { return g != NULL ? g->data_offset : 0; }

/* ---- metadata getters ------------------------------------------------------------------- */

int64_t attn_gguf_kv_count(const attn_gguf *g) { return g != NULL ? g->n_kv : 0; }

attn_status attn_gguf_kv(const attn_gguf *g, int64_t index, const char **key, attn_gguf_type *type)
{
    const char *fn = "attn_gguf_kv";
    ATTN__NOT_NULL(fn, g);
    ATTN__NOT_NULL(fn, key);
    ATTN__NOT_NULL(fn, type);
    if (index < 0 || index >= g->n_kv)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'index' is %lld; the file has %lld pairs",
                         fn, (long long)index, (long long)g->n_kv);
    *key = g->kv[index].key;
    *type = (attn_gguf_type)g->kv[index].v.type;
    return ATTN_OK;
}

int64_t attn_gguf_kv_index(const attn_gguf *g, const char *key)
{
    if (g == NULL || key == NULL) return -1;
    return (int64_t)g->kv_slots[find_slot(g->kv_slots, g->kv_mask, key, kv_name, g)] - 1;
}

/* The value of key, or ATTN_BAD_FILE if the file lacks it. */
static attn_status lookup(const char *fn, const attn_gguf *g, const char *key,
                          const attn_gguf_value **v)
{
    ATTN__NOT_NULL(fn, g);
    ATTN__NOT_NULL(fn, key);
    int64_t i = attn_gguf_kv_index(g, key);
    if (i < 0) return attn_fail(ATTN_BAD_FILE, "%s: the file has no key '%.200s'", fn, key);
    *v = &g->kv[i].v;
    return ATTN_OK;
}

/* The integer of type type at p, into *s (signed types) or *u (unsigned
 * ones, *is_signed false); false if type is not an integer type. */
static bool read_int(uint32_t type, const unsigned char *p, int64_t *s, uint64_t *u, bool *is_signed)
{
    union {
        uint8_t u8; int8_t i8; uint16_t u16; int16_t i16;
        uint32_t u32; int32_t i32; uint64_t u64; int64_t i64;
    } x;
    size_t size = scalar_size(type);
    if (type == ATTN_GGUF_TYPE_FLOAT32 || type == ATTN_GGUF_TYPE_FLOAT64 ||
        type == ATTN_GGUF_TYPE_BOOL || size == 0)
        return false;
    memcpy(&x, p, size);
    *is_signed = true;
    switch (type) {
    case ATTN_GGUF_TYPE_INT8: *s = x.i8; break;
    case ATTN_GGUF_TYPE_INT16: *s = x.i16; break;
    case ATTN_GGUF_TYPE_INT32: *s = x.i32; break;
    case ATTN_GGUF_TYPE_INT64: *s = x.i64; break;
    case ATTN_GGUF_TYPE_UINT8: *u = x.u8; *is_signed = false; break;
    case ATTN_GGUF_TYPE_UINT16: *u = x.u16; *is_signed = false; break;
    case ATTN_GGUF_TYPE_UINT32: *u = x.u32; *is_signed = false; break;
    default: *u = x.u64; *is_signed = false; break;
    }
    return true;
}

typedef struct scalar {
    uint64_t u;
    int64_t i;
    double f;
} scalar;

/* The value of type type at p converted for a getter of kind want ('u'
 * uint, 'i' int, 'f' float, 'b' bool) into *out, or ATTN_BAD_FILE naming
 * fn and what (the key or element) if it has another type or does not fit. */
static attn_status convert(const char *fn, const char *what, uint32_t type, const unsigned char *p,
                           char want, scalar *out)
{
    const char *tn = attn_gguf_type_name((attn_gguf_type)type);
    int64_t s = 0;
    uint64_t u = 0;
    bool is_signed;
    switch (want) {
    case 'u':
    case 'i':
        if (!read_int(type, p, &s, &u, &is_signed))
            return attn_fail(ATTN_BAD_FILE, "%s: %s is a %s; expected an integer", fn, what, tn);
        if (want == 'u' && is_signed && s < 0)
            return attn_fail(ATTN_BAD_FILE, "%s: %s is %lld; expected a value >= 0", fn, what,
                             (long long)s);
        if (want == 'i' && !is_signed && u > (uint64_t)INT64_MAX)
            return attn_fail(ATTN_BAD_FILE, "%s: %s is %llu, beyond int64_t", fn, what,
                             (unsigned long long)u);
        out->u = is_signed ? (uint64_t)s : u;
        out->i = is_signed ? s : (int64_t)u;
        return ATTN_OK;
    case 'f':
        if (type == ATTN_GGUF_TYPE_FLOAT32) {
            float f;
            memcpy(&f, p, 4);
            out->f = f;
        } else if (type == ATTN_GGUF_TYPE_FLOAT64) {
            memcpy(&out->f, p, 8);
        } else {
            return attn_fail(ATTN_BAD_FILE, "%s: %s is a %s; expected FLOAT32 or FLOAT64", fn,
                             what, tn);
        }
        return ATTN_OK;
    default: /* 'b' */
        if (type != ATTN_GGUF_TYPE_BOOL)
            return attn_fail(ATTN_BAD_FILE, "%s: %s is a %s; expected a BOOL", fn, what, tn);
        out->u = p[0];
        return ATTN_OK;
    }
}

static attn_status get_scalar(const char *fn, const attn_gguf *g, const char *key, char want,
                              const void *out, scalar *v)
{
    const attn_gguf_value *val = NULL;
    attn_status st = lookup(fn, g, key, &val);
    if (st != ATTN_OK) return st;
    ATTN__NOT_NULL(fn, out);
    char what[260];
    snprintf(what, sizeof what, "the key '%.200s'", key);
    return convert(fn, what, val->type, val->data, want, v);
}

attn_status attn_gguf_get_uint(const attn_gguf *g, const char *key, uint64_t *out)
{
    scalar v;
    attn_status st = get_scalar("attn_gguf_get_uint", g, key, 'u', out, &v);
    if (st == ATTN_OK) *out = v.u;
    return st;
}

attn_status attn_gguf_get_int(const attn_gguf *g, const char *key, int64_t *out)
{
    scalar v;
    attn_status st = get_scalar("attn_gguf_get_int", g, key, 'i', out, &v);
    if (st == ATTN_OK) *out = v.i;
    return st;
}

attn_status attn_gguf_get_float(const attn_gguf *g, const char *key, double *out)
{
    scalar v;
    attn_status st = get_scalar("attn_gguf_get_float", g, key, 'f', out, &v);
    if (st == ATTN_OK) *out = v.f;
    return st;
}

attn_status attn_gguf_get_bool(const attn_gguf *g, const char *key, int *out)
{
    scalar v;
    attn_status st = get_scalar("attn_gguf_get_bool", g, key, 'b', out, &v);
    if (st == ATTN_OK) *out = (int)v.u;
    return st;
}

/* A value of the wrong kind (a STRING or an ARRAY expected). */
static attn_status wrong_type(const char *fn, const char *key, uint32_t type, const char *want)
{
    return attn_fail(ATTN_BAD_FILE, "%s: the key '%.200s' is a %s; expected %s", fn, key,
                     attn_gguf_type_name((attn_gguf_type)type), want);
}

attn_status attn_gguf_get_string(const attn_gguf *g, const char *key, const char **s, size_t *len)
{
    const char *fn = "attn_gguf_get_string";
    const attn_gguf_value *v = NULL;
    attn_status st = lookup(fn, g, key, &v);
    if (st != ATTN_OK) return st;
    ATTN__NOT_NULL(fn, s);
    if (v->type != ATTN_GGUF_TYPE_STRING) return wrong_type(fn, key, v->type, "a STRING");
    *s = v->str;
    if (len != NULL) *len = (size_t)v->count;
    return ATTN_OK;
}

attn_status attn_gguf_get_array(const attn_gguf *g, const char *key, const attn_gguf_value **array)
{
    const char *fn = "attn_gguf_get_array";
    const attn_gguf_value *v = NULL;
    attn_status st = lookup(fn, g, key, &v);
    if (st != ATTN_OK) return st;
    ATTN__NOT_NULL(fn, array);
    if (v->type != ATTN_GGUF_TYPE_ARRAY) return wrong_type(fn, key, v->type, "an ARRAY");
    *array = v;
    return ATTN_OK;
}

/* ---- arrays --------------------------------------------------------------------------------- */

int64_t attn_gguf_array_count(const attn_gguf_value *array)
{
    return array != NULL ? (int64_t)array->count : -1;
}

attn_gguf_type attn_gguf_array_type(const attn_gguf_value *array)
{
    return array != NULL ? (attn_gguf_type)array->elem_type : ATTN_GGUF_TYPE_ARRAY;
}

static attn_status check_index(const char *fn, const attn_gguf_value *a, int64_t index, const void *out)
{
    ATTN__NOT_NULL(fn, a);
    ATTN__NOT_NULL(fn, out);
    if (index < 0 || (uint64_t)index >= a->count)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'index' is %lld; the array '%.200s' has "
                         "%llu elements", fn, (long long)index, a->key,
                         (unsigned long long)a->count);
    return ATTN_OK;
}

static attn_status array_scalar(const char *fn, const attn_gguf_value *a, int64_t index, char want,
                                const void *out, scalar *v)
{
    attn_status st = check_index(fn, a, index, out);
    if (st != ATTN_OK) return st;
    char what[260];
    snprintf(what, sizeof what, "element %lld of '%.200s'", (long long)index, a->key);
    size_t size = scalar_size(a->elem_type);
    if (size == 0) /* strings and arrays: never numbers */
        return convert(fn, what, a->elem_type, NULL, want, v);
    return convert(fn, what, a->elem_type, a->data + (size_t)index * size, want, v);
}

attn_status attn_gguf_array_uint(const attn_gguf_value *array, int64_t index, uint64_t *out)
{
    scalar v;
    attn_status st = array_scalar("attn_gguf_array_uint", array, index, 'u', out, &v);
    if (st == ATTN_OK) *out = v.u;
    return st;
}

attn_status attn_gguf_array_int(const attn_gguf_value *array, int64_t index, int64_t *out)
{
    scalar v;
    attn_status st = array_scalar("attn_gguf_array_int", array, index, 'i', out, &v);
    if (st == ATTN_OK) *out = v.i;
    return st;
}

attn_status attn_gguf_array_float(const attn_gguf_value *array, int64_t index, double *out)
{
    scalar v;
    attn_status st = array_scalar("attn_gguf_array_float", array, index, 'f', out, &v);
    if (st == ATTN_OK) *out = v.f;
    return st;
}

attn_status attn_gguf_array_bool(const attn_gguf_value *array, int64_t index, int *out)
{
    scalar v;
    attn_status st = array_scalar("attn_gguf_array_bool", array, index, 'b', out, &v);
    if (st == ATTN_OK) *out = (int)v.u;
    return st;
}

static attn_status wrong_element(const char *fn, const attn_gguf_value *a, const char *want)
{
    return attn_fail(ATTN_BAD_FILE, "%s: the elements of '%.200s' are %s; expected %s", fn, a->key,
                     attn_gguf_type_name((attn_gguf_type)a->elem_type), want);
}

attn_status attn_gguf_array_string(const attn_gguf_value *array, int64_t index, const char **s,
                                   size_t *len)
{
    const char *fn = "attn_gguf_array_string";
    attn_status st = check_index(fn, array, index, s);
    if (st != ATTN_OK) return st;
    ATTN__NOT_NULL(fn, len);
    if (array->elem_type != ATTN_GGUF_TYPE_STRING) return wrong_element(fn, array, "STRING");
    uint64_t n;
    memcpy(&n, array->elems[index], 8);
    *s = (const char *)array->elems[index] + 8;
    *len = (size_t)n;
    return ATTN_OK;
}

attn_status attn_gguf_array_array(const attn_gguf_value *array, int64_t index,
                                  const attn_gguf_value **out)
{
    const char *fn = "attn_gguf_array_array";
    attn_status st = check_index(fn, array, index, out);
    if (st != ATTN_OK) return st;
    if (array->elem_type != ATTN_GGUF_TYPE_ARRAY) return wrong_element(fn, array, "ARRAY");
    *out = &array->items[index];
    return ATTN_OK;
}

/* ---- tensors ---------------------------------------------------------------------------------- */

int64_t attn_gguf_tensor_count(const attn_gguf *g) { return g != NULL ? g->n_tensors : 0; }

attn_status attn_gguf_tensor_get(const attn_gguf *g, int64_t index, attn_gguf_tensor_info *info)
{
    const char *fn = "attn_gguf_tensor_get";
    ATTN__NOT_NULL(fn, g);
    ATTN__NOT_NULL(fn, info);
    if (index < 0 || index >= g->n_tensors)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'index' is %lld; the file has %lld tensors",
                         fn, (long long)index, (long long)g->n_tensors);
    *info = g->t[index];
    return ATTN_OK;
}

attn_status attn_gguf_tensor_find(const attn_gguf *g, const char *name, attn_gguf_tensor_info *info)
{
    const char *fn = "attn_gguf_tensor_find";
    ATTN__NOT_NULL(fn, g);
    ATTN__NOT_NULL(fn, name);
    ATTN__NOT_NULL(fn, info);
    size_t i = g->t_slots[find_slot(g->t_slots, g->t_mask, name, tensor_name, g)];
    if (i == 0) return attn_fail(ATTN_BAD_FILE, "%s: missing tensor '%.200s'", fn, name);
    *info = g->t[i - 1];
    return ATTN_OK;
}

/* ---- conversion to float32 ------------------------------------------------------------------- */

/* dst [32] = one Q8_0 block at b. */
static void q8_0_block(const unsigned char *b, float *dst)
{
    uint16_t h;
    memcpy(&h, b, 2);
    float d = attn__f16_to_f32(h);
    for (int j = 0; j < 32; j++) dst[j] = d * (float)(int8_t)b[2 + j];
}

/* dst [32] = one Q4_1 block at b: low nibbles are elements 0-15, high 16-31. */
static void q4_1_block(const unsigned char *b, float *dst)
{
    uint16_t hd, hm;
    memcpy(&hd, b, 2);
    memcpy(&hm, b + 2, 2);
    float d = attn__f16_to_f32(hd), m = attn__f16_to_f32(hm);
    for (int j = 0; j < 16; j++) {
        float lo = d * (float)(b[4 + j] & 0x0F), hi = d * (float)(b[4 + j] >> 4);
        dst[j] = lo + m;
        dst[j + 16] = hi + m;
    }
}

/* dst [n] from n elements of type at src; false if attn cannot convert type. */
static bool convert_elements(attn_gguf_tensor_type type, const unsigned char *src, size_t n, float *dst)
{
    switch (type) {
    case ATTN_GGUF_TENSOR_TYPE_F32:
        if (n > 0) memcpy(dst, src, n * sizeof(float));
        return true;
    case ATTN_GGUF_TENSOR_TYPE_F16:
    case ATTN_GGUF_TENSOR_TYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = type == ATTN_GGUF_TENSOR_TYPE_F16 ? attn__f16_to_f32(h) : attn__bf16_to_f32(h);
        }
        return true;
    case ATTN_GGUF_TENSOR_TYPE_Q8_0:
        for (size_t i = 0; i < n / 32; i++) q8_0_block(src + 34 * i, dst + 32 * i);
        return true;
    case ATTN_GGUF_TENSOR_TYPE_Q4_1:
        for (size_t i = 0; i < n / 32; i++) q4_1_block(src + 20 * i, dst + 32 * i);
        return true;
    default:
        return false;
    }
}

static attn_status unsupported(const char *fn, attn_gguf_tensor_type type)
{
    const char *name = attn_gguf_tensor_type_name(type);
    return attn_fail(ATTN_UNSUPPORTED, "%s: tensor type %s (%d) cannot be converted to float32 "
                     "(supported: F32, F16, BF16, Q8_0, Q4_1)", fn, name != NULL ? name : "?",
                     (int)type);
}

attn_status attn_gguf_dequantize(attn_gguf_tensor_type type, const void *src, int64_t n, float *dst)
{
    const char *fn = "attn_gguf_dequantize";
    int64_t block;
    size_t block_bytes;
    if (!block_of((uint32_t)type, &block, &block_bytes))
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'type' is %d, which is not a GGUF tensor "
                         "type", fn, (int)type);
    if (n < 0 || n % block != 0)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'n' is %lld; it must be a non-negative "
                         "multiple of the %s block size %lld", fn, (long long)n,
                         attn_gguf_tensor_type_name(type), (long long)block);
    if (n > 0) {
        ATTN__NOT_NULL(fn, src);
        ATTN__NOT_NULL(fn, dst);
    }
    if (!convert_elements(type, src, (size_t)n, dst)) return unsupported(fn, type);
    return ATTN_OK;
}

attn_status attn_gguf_read_rows(const attn_gguf_tensor_info *t, int64_t row0, int64_t n_rows,
                                float *dst)
{
    const char *fn = "attn_gguf_read_rows";
    ATTN__NOT_NULL(fn, t);
    if (row0 < 0 || n_rows < 0 || row0 > t->n_rows || n_rows > t->n_rows - row0)
        return attn_fail(ATTN_BAD_PARAM, "%s: rows [%lld, %lld + %lld) are not inside the %lld "
                         "rows of tensor '%.200s'", fn, (long long)row0, (long long)row0,
                         (long long)n_rows, (long long)t->n_rows, t->name ? t->name : "?");
    if (n_rows > 0 && t->dims[0] > 0) ATTN__NOT_NULL(fn, dst);
    size_t n = (size_t)(n_rows * t->dims[0]);
    const unsigned char *src = n > 0 ? (const unsigned char *)t->data + (size_t)row0 * t->row_bytes
                                     : NULL;
    if (!convert_elements(t->type, src, n, dst)) return unsupported(fn, t->type);
    return ATTN_OK;
}
