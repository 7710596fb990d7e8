/* safetensors.c - safetensors files (attn/safetensors.h): reading a whole file into
 * memory and validating it as untrusted input before anything is handed
 * out, converting float tensors to float32, and writing files atomically
 * (temporary file, fsync, rename). The layout and every check are listed
 * in docs/checkpoint.md; the file rules (regular files only, atomic
 * replacement) are those of core/fileio.h.
 *
 * The format is little-endian and tensor bytes are handed out and written
 * as they lie in memory, so this file needs a little-endian host.
 */
#include "formats/json.h"
#include "core/fileio.h"
#include "core/half.h"

#include <attn/safetensors.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c reads and writes tensor bytes as-is: it needs a little-endian host"
#endif

/* The reference implementation's cap on the header length. */
#define ST_MAX_HEADER 100000000u

/* Every attn_dtype is a safetensors dtype, with the same name. */
static const attn_dtype dtypes[] = {
#define DTYPE(name, value, bytes) ATTN_DTYPE_##name,
    ATTN_DTYPE_TABLE(DTYPE)
#undef DTYPE
};
enum { N_DTYPES = sizeof dtypes / sizeof dtypes[0] };

typedef struct st_tensor {
    attn_safetensors_info info;
    size_t begin, end; /* data_offsets: bytes of the data section */
} st_tensor;

struct attn_safetensors {
    unsigned char *image;           /* [size] the whole file */
    size_t size;
    attn__json_value *header;       /* the header object */
    const attn__json_value *meta;   /* its __metadata__ member, or NULL */
    size_t meta_index;              /* that member's index in the header */
    int64_t n;
    st_tensor t[];                  /* [n] in header order */
};

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static attn_status bad(const char *prefix, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return attn_fail(ATTN_BAD_FILE, "%s: %s", prefix, msg);
}

/* "[2, 3]" into buf. */
static const char *shape_text(char *buf, size_t cap, const int64_t *shape, int ndim)
{
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && k < cap; d++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

/* ---- one header entry ------------------------------------------------------------ */

static attn_status entry_dtype(const char *prefix, const char *name, const attn__json_value *v,
                               st_tensor *t)
{
    if (v->kind != ATTN__JSON_STRING)
        return bad(prefix, "tensor '%.80s': dtype is %s; it must be a string", name,
                   attn__json_kind_name(v->kind));
    for (int i = 0; i < N_DTYPES; i++) {
        if (strcmp(v->str, attn_dtype_name(dtypes[i])) == 0 && strlen(v->str) == v->len) {
            t->info.dtype = dtypes[i];
            return ATTN_OK;
        }
    }
    return bad(prefix,
               "tensor '%.80s': unknown dtype \"%.20s\" (known: F32 F16 BF16 F64 I64 I32 U8 BOOL)",
               name, v->str);
}

/* Array v of n non-negative integers into out[n]; `field` names it. */
static attn_status entry_ints(const char *prefix, const char *name, const char *field,
                              const attn__json_value *v, int64_t *out)
{
    char what[400];
    for (size_t i = 0; i < v->count; i++) {
        snprintf(what, sizeof what, "%s: tensor '%.80s': %s[%zu]", prefix, name, field, i);
        attn_status st = attn__json_int64(&v->items[i], what, &out[i]);
        if (st != ATTN_OK) return st;
        if (out[i] < 0)
            return bad(prefix, "tensor '%.80s': %s[%zu] is %lld; it must be non-negative", name,
                       field, i, (long long)out[i]);
    }
    return ATTN_OK;
}

static attn_status entry_shape(const char *prefix, const char *name, const attn__json_value *v,
                               st_tensor *t)
{
    if (v->kind != ATTN__JSON_ARRAY)
        return bad(prefix, "tensor '%.80s': shape is %s; it must be an array of integers", name,
                   attn__json_kind_name(v->kind));
    if (v->count > ATTN_SAFETENSORS_MAX_DIMS)
        return bad(prefix, "tensor '%.80s': shape has %zu dims; at most %d are supported", name,
                   v->count, ATTN_SAFETENSORS_MAX_DIMS);
    attn_status st = entry_ints(prefix, name, "shape", v, t->info.shape);
    if (st != ATTN_OK) return st;
    t->info.ndim = (int)v->count;
    int64_t numel = 1;
    for (int d = 0; d < t->info.ndim; d++) {
        int64_t dim = t->info.shape[d];
        if (dim != 0 && numel > INT64_MAX / dim) {
            char s[200];
            return bad(prefix, "tensor '%.80s': the element count of shape %s overflows int64",
                       name, shape_text(s, sizeof s, t->info.shape, t->info.ndim));
        }
        numel *= dim;
    }
    t->info.numel = numel;
    return ATTN_OK;
}

static attn_status entry_offsets(const char *prefix, const char *name, const attn__json_value *v,
                                 size_t data_size, st_tensor *t)
{
    int64_t off[2];
    char s[200];
    if (v->kind != ATTN__JSON_ARRAY || v->count != 2)
        return bad(prefix, "tensor '%.80s': data_offsets must be an array of 2 integers", name);
    attn_status st = entry_ints(prefix, name, "data_offsets", v, off);
    if (st != ATTN_OK) return st;
    if (off[0] > off[1])
        return bad(prefix, "tensor '%.80s': data_offsets [%lld, %lld] are reversed (begin > end)",
                   name, (long long)off[0], (long long)off[1]);
    if ((uint64_t)off[1] > data_size)
        return bad(prefix,
                   "tensor '%.80s': data_offsets [%lld, %lld] end beyond the %zu bytes of data",
                   name, (long long)off[0], (long long)off[1], data_size);
    int64_t size = (int64_t)attn_dtype_size(t->info.dtype), need;
    if (t->info.numel > INT64_MAX / size)
        return bad(prefix, "tensor '%.80s': the byte size of shape %s overflows int64", name,
                   shape_text(s, sizeof s, t->info.shape, t->info.ndim));
    need = t->info.numel * size;
    if (off[1] - off[0] != need)
        return bad(prefix,
                   "tensor '%.80s': data_offsets [%lld, %lld] hold %lld bytes but %s shape %s "
                   "needs %lld",
                   name, (long long)off[0], (long long)off[1], (long long)(off[1] - off[0]),
                   attn_dtype_name(t->info.dtype),
                   shape_text(s, sizeof s, t->info.shape, t->info.ndim), (long long)need);
    t->begin = (size_t)off[0];
    t->end = (size_t)off[1];
    return ATTN_OK;
}

/* Header member m (a tensor) into t; data [data_size] is the data section. */
static attn_status parse_entry(const char *prefix, const attn__json_value *m,
                               const unsigned char *data, size_t data_size, st_tensor *t)
{
    static const char *const fields[3] = {"dtype", "shape", "data_offsets"};
    const char *name = m->key;
    if (m->key_len == 0) return bad(prefix, "a tensor has an empty name");
    if (strlen(name) != m->key_len)
        return bad(prefix, "tensor '%.80s': the name contains a NUL character", name);
    if (m->kind != ATTN__JSON_OBJECT)
        return bad(prefix, "tensor '%.80s': the entry is %s; it must be an object", name,
                   attn__json_kind_name(m->kind));
    for (size_t i = 0; i < m->count; i++) {
        const char *k = m->items[i].key;
        if (strcmp(k, fields[0]) && strcmp(k, fields[1]) && strcmp(k, fields[2]))
            return bad(prefix, "tensor '%.80s': unexpected field \"%.40s\"", name, k);
    }
    const attn__json_value *v[3];
    for (int i = 0; i < 3; i++) {
        v[i] = attn__json_get(m, fields[i]);
        if (v[i] == NULL) return bad(prefix, "tensor '%.80s': missing field \"%s\"", name, fields[i]);
    }
    memset(t, 0, sizeof *t);
    t->info.name = name;
    attn_status st = entry_dtype(prefix, name, v[0], t);
    if (st == ATTN_OK) st = entry_shape(prefix, name, v[1], t);
    if (st == ATTN_OK) st = entry_offsets(prefix, name, v[2], data_size, t);
    if (st != ATTN_OK) return st;
    t->info.data = data + t->begin;
    t->info.bytes = t->end - t->begin;
    return ATTN_OK;
}

static attn_status check_metadata(const char *prefix, const attn__json_value *m)
{
    if (m->kind != ATTN__JSON_OBJECT)
        return bad(prefix, "__metadata__ is %s; it must be an object of strings",
                   attn__json_kind_name(m->kind));
    for (size_t i = 0; i < m->count; i++) {
        const attn__json_value *v = &m->items[i];
        if (strlen(v->key) != v->key_len)
            return bad(prefix, "a __metadata__ key contains a NUL character");
        if (v->kind != ATTN__JSON_STRING)
            return bad(prefix, "__metadata__ value of \"%.60s\" is %s; it must be a string",
                       v->key, attn__json_kind_name(v->kind));
        if (strlen(v->str) != v->len)
            return bad(prefix, "__metadata__ value of \"%.60s\" contains a NUL character", v->key);
    }
    return ATTN_OK;
}

/* ---- the whole layout -------------------------------------------------------------- */

static int by_begin(const void *a, const void *b)
{
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* Sorted by offset, the tensors must tile [0, data_size) exactly. */
static attn_status check_layout(const char *prefix, const st_tensor *t, int64_t n, size_t data_size)
{
    if (n == 0) {
        if (data_size == 0) return ATTN_OK;
        return bad(prefix, "data bytes [0, %zu) belong to no tensor (the header lists none)",
                   data_size);
    }
    const st_tensor **order = attn_calloc((size_t)n, sizeof *order);
    if (order == NULL) return attn_fail(ATTN_NO_MEMORY, "%s: no memory to sort %lld tensors", prefix, (long long)n);
    for (int64_t i = 0; i < n; i++) order[i] = &t[i];
    qsort(order, (size_t)n, sizeof *order, by_begin);
    attn_status st = ATTN_OK;
    size_t pos = 0;
    for (int64_t i = 0; i < n && st == ATTN_OK; i++) {
        const st_tensor *o = order[i];
        if (o->begin < pos)
            st = bad(prefix, "tensors '%.80s' and '%.80s' overlap (data bytes [%zu, %zu))",
                     order[i - 1]->info.name, o->info.name, o->begin, pos);
        else if (o->begin > pos && i == 0)
            st = bad(prefix, "data bytes [0, %zu) before tensor '%.80s' belong to no tensor",
                     o->begin, o->info.name);
        else if (o->begin > pos)
            st = bad(prefix, "data bytes [%zu, %zu) between tensors '%.80s' and '%.80s' belong "
                     "to no tensor", pos, o->begin, order[i - 1]->info.name, o->info.name);
        pos = o->end;
    }
    if (st == ATTN_OK && pos != data_size)
        st = bad(prefix, "data bytes [%zu, %zu) after the last tensor '%.80s' belong to no tensor",
                 pos, data_size, order[n - 1]->info.name);
    attn_release(order);
    return st;
}

/* ---- reading ----------------------------------------------------------------------- */

/* Checks the header length field; *n_header receives it. */
static attn_status check_lengths(const char *prefix, const unsigned char *image, size_t size,
                                 size_t *n_header)
{
    if (size < 8)
        return bad(prefix, "the file is %zu bytes; too short for the 8-byte header length", size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | image[i];
    if (n > ST_MAX_HEADER)
        return bad(prefix, "header length %llu exceeds the limit of %u bytes",
                   (unsigned long long)n, ST_MAX_HEADER);
    if (n > size - 8)
        return bad(prefix, "header length %llu is larger than the %zu bytes after it",
                   (unsigned long long)n, size - 8);
    if (n == 0 || image[8] != '{')
        return bad(prefix, "header is not a JSON object (it must start with '{')");
    *n_header = (size_t)n;
    return ATTN_OK;
}

/* Every header member into f->t (f->header set). */
static attn_status parse_members(const char *prefix, attn_safetensors *f, size_t n_header)
{
    const unsigned char *data = f->image + 8 + n_header;
    size_t data_size = f->size - 8 - n_header;
    int64_t k = 0;
    for (size_t i = 0; i < f->header->count; i++) {
        const attn__json_value *m = &f->header->items[i];
        attn_status st;
        if (m == f->meta) st = check_metadata(prefix, m);
        else st = parse_entry(prefix, m, data, data_size, &f->t[k++]);
        if (st != ATTN_OK) return st;
    }
    return check_layout(prefix, f->t, f->n, data_size);
}

/* Validates image [size] and, on success, makes *out own it. */
static attn_status parse_image(const char *prefix, unsigned char *image, size_t size,
                               attn_safetensors **out)
{
    size_t n_header = 0;
    attn_status st = check_lengths(prefix, image, size, &n_header);
    if (st != ATTN_OK) return st;
    char what[360];
    snprintf(what, sizeof what, "%s: header JSON", prefix);
    attn__json_limits lim = attn__json_limits_default();
    lim.max_bytes = ST_MAX_HEADER;
    attn__json_value *header;
    st = attn__json_parse((const char *)image + 8, n_header, &lim, what, &header);
    if (st != ATTN_OK) return st;
    const attn__json_value *meta = attn__json_get(header, "__metadata__");
    size_t n = header->count - (meta != NULL);
    attn_safetensors *f = attn_alloc(sizeof *f + n * sizeof f->t[0]);
    if (f == NULL) {
        attn__json_free(header);
        return attn_fail(ATTN_NO_MEMORY, "%s: no memory for %zu tensors", prefix, n);
    }
    f->image = image;
    f->size = size;
    f->header = header;
    f->meta = meta;
    f->meta_index = meta != NULL ? (size_t)(meta - header->items) : 0;
    f->n = (int64_t)n;
    st = parse_members(prefix, f, n_header);
    if (st != ATTN_OK) {
        attn__json_free(header);
        attn_release(f);
        return st;
    }
    *out = f;
    return ATTN_OK;
}


attn_status attn_safetensors_load(const char *path, attn_safetensors **out)
{
    if (path == NULL) return attn_fail(ATTN_NULL_ARG, "attn_safetensors_load: argument 'path' is NULL");
    if (out == NULL) return attn_fail(ATTN_NULL_ARG, "attn_safetensors_load: argument 'out' is NULL");
    char prefix[300];
    snprintf(prefix, sizeof prefix, "attn_safetensors_load: '%.200s'", path);
    char *image = NULL;
    size_t size = 0;
    attn_status st = attn__read_file(prefix, path, SIZE_MAX - 1, &image, &size);
    if (st != ATTN_OK) return st;
    st = parse_image(prefix, (unsigned char *)image, size, out);
    if (st != ATTN_OK) attn_release(image);
    return st;
}

attn_status attn_safetensors_load_memory(const void *data, size_t size, attn_safetensors **out)
{
    const char *prefix = "attn_safetensors_load_memory";
    if (data == NULL && size > 0)
        return attn_fail(ATTN_NULL_ARG, "%s: argument 'data' is NULL", prefix);
    if (out == NULL) return attn_fail(ATTN_NULL_ARG, "%s: argument 'out' is NULL", prefix);
    unsigned char *image = attn_alloc(size > 0 ? size : 1);
    if (image == NULL)
        return attn_fail(ATTN_NO_MEMORY, "%s: no memory for a %zu-byte copy", prefix, size);
    if (size > 0) memcpy(image, data, size);
    attn_status st = parse_image(prefix, image, size, out);
    if (st != ATTN_OK) attn_release(image);
    return st;
}

void attn_safetensors_free(attn_safetensors *f)
{
    if (f == NULL) return;
    attn__json_free(f->header);
    attn_release(f->image);
    attn_release(f);
}

int64_t attn_safetensors_count(const attn_safetensors *f) { return f != NULL ? f->n : 0; }

attn_status attn_safetensors_get(const attn_safetensors *f, int64_t index, attn_safetensors_info *info)
{
    if (f == NULL) return attn_fail(ATTN_NULL_ARG, "attn_safetensors_get: argument 'f' is NULL");
    if (info == NULL) return attn_fail(ATTN_NULL_ARG, "attn_safetensors_get: argument 'info' is NULL");
    if (index < 0 || index >= f->n)
        return attn_fail(ATTN_BAD_PARAM, "attn_safetensors_get: argument 'index' is %lld; the file has %lld tensors",
                         (long long)index, (long long)f->n);
    *info = f->t[index].info;
    return ATTN_OK;
}

/* The tensor called name, or NULL. */
static const st_tensor *lookup(const attn_safetensors *f, const char *name)
{
    const attn__json_value *m = attn__json_get(f->header, name);
    if (m == NULL || m == f->meta) return NULL;
    size_t i = (size_t)(m - f->header->items);
    if (f->meta != NULL && i > f->meta_index) i--;
    return &f->t[i];
}

attn_status attn_safetensors_find(const attn_safetensors *f, const char *name, attn_safetensors_info *info)
{
    if (f == NULL) return attn_fail(ATTN_NULL_ARG, "attn_safetensors_find: argument 'f' is NULL");
    if (name == NULL) return attn_fail(ATTN_NULL_ARG, "attn_safetensors_find: argument 'name' is NULL");
    if (info == NULL) return attn_fail(ATTN_NULL_ARG, "attn_safetensors_find: argument 'info' is NULL");
    const st_tensor *t = lookup(f, name);
    if (t == NULL) return attn_fail(ATTN_BAD_FILE, "attn_safetensors_find: missing tensor '%.200s'", name);
    *info = t->info;
    return ATTN_OK;
}

const char *attn_safetensors_metadata(const attn_safetensors *f, const char *key)
{
    if (f == NULL || key == NULL || f->meta == NULL) return NULL;
    const attn__json_value *v = attn__json_get(f->meta, key);
    return v != NULL ? v->str : NULL;
}

/* ---- float32 conversion ----------------------------------------------------------- */

/* dst [numel] = the float tensor t converted; false if t is not a float. */
static bool convert(const attn_safetensors_info *t, float *dst)
{
    const unsigned char *src = t->data;
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
    case ATTN_DTYPE_F32:
        if (n > 0) memcpy(dst, src, n * sizeof(float));
        return true;
    case ATTN_DTYPE_F16:
    case ATTN_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = t->dtype == ATTN_DTYPE_F16 ? attn__f16_to_f32(h) : attn__bf16_to_f32(h);
        }
        return true;
    case ATTN_DTYPE_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, src + 8 * i, 8);
            dst[i] = (float)d; /* round to nearest; beyond float range gives +-Inf */
        }
        return true;
    default:
        return false;
    }
}

attn_status attn_safetensors_read_f32(const attn_safetensors *f, const char *name, int ndim,
                             const int64_t *shape, float *dst)
{
    const char *fn = "attn_safetensors_read_f32";
    if (f == NULL) return attn_fail(ATTN_NULL_ARG, "%s: argument 'f' is NULL", fn);
    if (name == NULL) return attn_fail(ATTN_NULL_ARG, "%s: argument 'name' is NULL", fn);
    if (ndim < 0 || ndim > ATTN_SAFETENSORS_MAX_DIMS)
        return attn_fail(ATTN_BAD_DIM, "%s: argument 'ndim' is %d; it must be in [0, %d]", fn,
                         ndim, ATTN_SAFETENSORS_MAX_DIMS);
    if (shape == NULL && ndim > 0) return attn_fail(ATTN_NULL_ARG, "%s: argument 'shape' is NULL", fn);
    const st_tensor *t = lookup(f, name);
    if (t == NULL) return attn_fail(ATTN_BAD_FILE, "%s: missing tensor '%.200s'", fn, name);
    bool same = t->info.ndim == ndim;
    for (int d = 0; d < ndim && same; d++) same = t->info.shape[d] == shape[d];
    if (!same) {
        char has[200], want[200];
        return attn_fail(ATTN_BAD_FILE, "%s: tensor '%.80s' has shape %s; expected %s", fn, name,
                         shape_text(has, sizeof has, t->info.shape, t->info.ndim),
                         shape_text(want, sizeof want, shape, ndim));
    }
    if (dst == NULL && t->info.numel > 0)
        return attn_fail(ATTN_NULL_ARG, "%s: argument 'dst' is NULL", fn);
    if (!convert(&t->info, dst))
        return attn_fail(ATTN_BAD_FILE, "%s: tensor '%.80s' has dtype %s, which cannot be read as float32",
                         fn, name, attn_dtype_name(t->info.dtype));
    return ATTN_OK;
}

/* ---- writing ------------------------------------------------------------------------ */

static int by_string(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first name of names[n] that occurs twice (sorts names), or NULL. */
static const char *find_repeat(const char **names, int64_t n)
{
    if (n > 1) qsort(names, (size_t)n, sizeof *names, by_string);
    for (int64_t i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0) return names[i];
    return NULL;
}

/* Entry e (index i): checked, its byte size into *bytes. */
static attn_status check_entry(const attn_safetensors_entry *e, int64_t i, size_t *bytes)
{
    const char *fn = "attn_safetensors_save";
    long long li = (long long)i;
    if (e->name == NULL) return attn_fail(ATTN_NULL_ARG, "%s: entries[%lld].name is NULL", fn, li);
    if (e->name[0] == '\0' || strcmp(e->name, "__metadata__") == 0 ||
        !attn__json_utf8_ok(e->name, strlen(e->name)))
        return attn_fail(ATTN_BAD_PARAM,
                         "%s: entries[%lld].name \"%.80s\" is empty, reserved or not UTF-8", fn, li,
                         e->name);
    if (attn_dtype_size(e->dtype) == 0) return attn_fail(ATTN_BAD_DTYPE, "%s: entries[%lld].dtype is %d", fn, li, (int)e->dtype);
    if (e->ndim < 0 || e->ndim > ATTN_SAFETENSORS_MAX_DIMS)
        return attn_fail(ATTN_BAD_DIM, "%s: entries[%lld].ndim is %d; it must be in [0, %d]", fn,
                         li, e->ndim, ATTN_SAFETENSORS_MAX_DIMS);
    int64_t total = (int64_t)attn_dtype_size(e->dtype);
    for (int k = 0; k < e->ndim; k++) {
        if (e->shape[k] < 0)
            return attn_fail(ATTN_BAD_DIM, "%s: entries[%lld].shape[%d] is %lld", fn, li, k,
                             (long long)e->shape[k]);
        if (e->shape[k] != 0 && total > INT64_MAX / e->shape[k])
            return attn_fail(ATTN_OVERFLOW, "%s: entries[%lld] byte size overflows int64", fn, li);
        total *= e->shape[k];
    }
    if ((uint64_t)total > SIZE_MAX)
        return attn_fail(ATTN_OVERFLOW, "%s: entries[%lld] is larger than memory", fn, li);
    if (e->data == NULL && total > 0)
        return attn_fail(ATTN_NULL_ARG, "%s: entries[%lld].data is NULL", fn, li);
    *bytes = (size_t)total;
    return ATTN_OK;
}

static attn_status check_meta(const char *const *keys, const char *const *values, int64_t n)
{
    const char *fn = "attn_safetensors_save";
    if (n > 0 && (keys == NULL || values == NULL))
        return attn_fail(ATTN_NULL_ARG, "%s: argument '%s' is NULL", fn,
                         keys == NULL ? "meta_keys" : "meta_values");
    for (int64_t i = 0; i < n; i++) {
        if (keys[i] == NULL || values[i] == NULL)
            return attn_fail(ATTN_NULL_ARG, "%s: meta_%s[%lld] is NULL", fn,
                             keys[i] == NULL ? "keys" : "values", (long long)i);
        if (!attn__json_utf8_ok(keys[i], strlen(keys[i])) ||
            !attn__json_utf8_ok(values[i], strlen(values[i])))
            return attn_fail(ATTN_BAD_PARAM, "%s: meta_keys[%lld] or its value is not UTF-8", fn,
                             (long long)i);
    }
    return ATTN_OK;
}

/* Data offsets in the file: largest elements first (8, 4, 2, 1 bytes), in
 * entry order within a size, so every tensor is aligned to its element
 * size (the data section starts at a multiple of 8). */
static bool layout(const attn_safetensors_entry *e, int64_t n, const size_t *bytes, uint64_t *begin,
                   uint64_t *total)
{
    uint64_t pos = 0;
    for (size_t size = 8; size >= 1; size /= 2) {
        for (int64_t i = 0; i < n; i++) {
            if (attn_dtype_size(e[i].dtype) != size) continue;
            if (bytes[i] > (uint64_t)INT64_MAX - pos) return false;
            begin[i] = pos;
            pos += bytes[i];
        }
    }
    *total = pos;
    return true;
}

/* The header JSON (unpadded) into o. */
static void write_header(attn__json_out *o, const attn_safetensors_entry *e, int64_t n, const size_t *bytes,
                         const uint64_t *begin, const char *const *keys,
                         const char *const *values, int64_t n_meta)
{
    attn__json_out_raw(o, "{", 1);
    if (n_meta > 0) {
        attn__json_out_raw(o, "\"__metadata__\":{", 16);
        for (int64_t i = 0; i < n_meta; i++) {
            if (i > 0) attn__json_out_raw(o, ",", 1);
            attn__json_out_string(o, keys[i], strlen(keys[i]));
            attn__json_out_raw(o, ":", 1);
            attn__json_out_string(o, values[i], strlen(values[i]));
        }
        attn__json_out_raw(o, "}", 1);
    }
    for (int64_t i = 0; i < n; i++) {
        if (i > 0 || n_meta > 0) attn__json_out_raw(o, ",", 1);
        attn__json_out_string(o, e[i].name, strlen(e[i].name));
        attn__json_out_raw(o, ":{\"dtype\":", 10);
        attn__json_out_string(o, attn_dtype_name(e[i].dtype), strlen(attn_dtype_name(e[i].dtype)));
        attn__json_out_raw(o, ",\"shape\":[", 10);
        for (int d = 0; d < e[i].ndim; d++) {
            if (d > 0) attn__json_out_raw(o, ",", 1);
            attn__json_out_int(o, e[i].shape[d]);
        }
        attn__json_out_raw(o, "],\"data_offsets\":[", 18);
        attn__json_out_int(o, (int64_t)begin[i]);
        attn__json_out_raw(o, ",", 1);
        attn__json_out_int(o, (int64_t)(begin[i] + bytes[i]));
        attn__json_out_raw(o, "]}", 2);
    }
    attn__json_out_raw(o, "}", 1);
}

/* Everything attn_safetensors_save allocates. */
typedef struct save_plan {
    uint64_t *begin;    /* [n] each entry's data offset */
    size_t *bytes;      /* [n] each entry's data bytes */
    const char **names; /* [max(n, n_meta)] for the repeat checks */
    char *header;       /* [n_header + 1] the padded header JSON */
    size_t n_header;
} save_plan;

static void plan_free(save_plan *p)
{
    attn_release(p->begin);
    attn_release(p->header);
}

/* Checks every entry and metadata key, and lays out the data. */
static attn_status plan_data(save_plan *p, const attn_safetensors_entry *e, int64_t n,
                             const char *const *keys, int64_t n_meta)
{
    int64_t m = n > n_meta ? n : n_meta;
    if ((uint64_t)m > SIZE_MAX / 32)
        return attn_fail(ATTN_OVERFLOW, "attn_safetensors_save: %lld entries are too many", (long long)m);
    if (m == 0) return ATTN_OK;
    /* one block: begin [n], bytes [n], names [m], each aligned after the last */
    p->begin = attn_alloc((size_t)n * (sizeof(uint64_t) + sizeof(size_t)) +
                          (size_t)m * sizeof(char *));
    if (p->begin == NULL)
        return attn_fail(ATTN_NO_MEMORY, "attn_safetensors_save: no memory for %lld entries", (long long)m);
    p->bytes = (size_t *)(p->begin + n);
    p->names = (const char **)(p->bytes + n);
    for (int64_t i = 0; i < n; i++) {
        attn_status st = check_entry(&e[i], i, &p->bytes[i]);
        if (st != ATTN_OK) return st;
        p->names[i] = e[i].name;
    }
    const char *twice = find_repeat(p->names, n);
    if (twice != NULL)
        return attn_fail(ATTN_BAD_PARAM, "attn_safetensors_save: two entries are named \"%.80s\"", twice);
    for (int64_t i = 0; i < n_meta; i++) p->names[i] = keys[i];
    twice = find_repeat(p->names, n_meta);
    if (twice != NULL)
        return attn_fail(ATTN_BAD_PARAM, "attn_safetensors_save: metadata key \"%.80s\" appears twice", twice);
    uint64_t total;
    if (!layout(e, n, p->bytes, p->begin, &total))
        return attn_fail(ATTN_OVERFLOW, "attn_safetensors_save: the data section overflows int64");
    return ATTN_OK;
}

/* The header, measured, then written and padded with spaces so that the
 * data starts at a multiple of 8 (as the reference writer does). */
static attn_status plan_header(save_plan *p, const attn_safetensors_entry *e, int64_t n,
                               const char *const *keys, const char *const *values,
                               int64_t n_meta)
{
    attn__json_out o = {NULL, 0, 0};
    write_header(&o, e, n, p->bytes, p->begin, keys, values, n_meta);
    size_t len = o.len, padded = len + (8 - len % 8) % 8;
    if (padded > ST_MAX_HEADER)
        return attn_fail(ATTN_BAD_PARAM, "attn_safetensors_save: the header would be %zu bytes; the limit is %u",
                         padded, ST_MAX_HEADER);
    p->header = attn_alloc(padded + 1);
    if (p->header == NULL)
        return attn_fail(ATTN_NO_MEMORY, "attn_safetensors_save: no memory for a %zu-byte header", padded);
    o.buf = p->header;
    o.cap = padded + 1;
    o.len = 0;
    write_header(&o, e, n, p->bytes, p->begin, keys, values, n_meta);
    memset(p->header + len, ' ', padded - len);
    p->n_header = padded;
    return ATTN_OK;
}

/* Writes the planned file through an atomic replacement of path. */
static attn_status save_planned(const save_plan *p, const char *path, const attn_safetensors_entry *e,
                                int64_t n)
{
    attn__atomic a;
    attn_status st = attn__atomic_open("attn_safetensors_save", path, &a);
    if (st != ATTN_OK) return st;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)p->n_header >> (8 * i));
    attn__atomic_write(&a, len8, 8);
    attn__atomic_write(&a, p->header, p->n_header);
    /* the data in the order layout() gave it */
    for (size_t size = 8; size >= 1; size /= 2)
        for (int64_t i = 0; i < n; i++)
            if (attn_dtype_size(e[i].dtype) == size) attn__atomic_write(&a, e[i].data, p->bytes[i]);
    return attn__atomic_commit(&a);
}

attn_status attn_safetensors_save(const char *path, const attn_safetensors_entry *entries, int64_t n,
                         const char *const *meta_keys, const char *const *meta_values,
                         int64_t n_meta)
{
    const char *fn = "attn_safetensors_save";
    if (path == NULL) return attn_fail(ATTN_NULL_ARG, "%s: argument 'path' is NULL", fn);
    if (path[0] == '\0') return attn_fail(ATTN_BAD_PARAM, "%s: argument 'path' is empty", fn);
    if (n < 0) return attn_fail(ATTN_BAD_PARAM, "%s: argument 'n' is %lld", fn, (long long)n);
    if (n_meta < 0)
        return attn_fail(ATTN_BAD_PARAM, "%s: argument 'n_meta' is %lld", fn, (long long)n_meta);
    if (entries == NULL && n > 0) return attn_fail(ATTN_NULL_ARG, "%s: argument 'entries' is NULL", fn);
    attn_status st = check_meta(meta_keys, meta_values, n_meta);
    if (st != ATTN_OK) return st;
    save_plan p;
    memset(&p, 0, sizeof p);
    st = plan_data(&p, entries, n, meta_keys, n_meta);
    if (st == ATTN_OK) st = plan_header(&p, entries, n, meta_keys, meta_values, n_meta);
    if (st == ATTN_OK) st = save_planned(&p, path, entries, n);
    plan_free(&p);
    return st;
}
