/* gguf_write.c - the tests' GGUF writer (gguf_write.h): little-endian
 * fields appended to a growing buffer. */
#include "gguf_write.h"

#include <stdlib.h>
#include <string.h>

void t_gguf_bytes(t_gguf *w, const void *p, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = 2 * (w->n + n) + 64;
        w->b = realloc(w->b, w->cap);
        if (w->b == NULL) abort(); /* a test machine without memory: nothing to report */
    }
    if (n > 0) memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void le(t_gguf *w, uint64_t v, int bytes)
{
    unsigned char b[8];
    for (int i = 0; i < bytes; i++) b[i] = (unsigned char)(v >> (8 * i));
    t_gguf_bytes(w, b, (size_t)bytes);
}

void t_gguf_u8(t_gguf *w, uint8_t v) { le(w, v, 1); }
void t_gguf_u16(t_gguf *w, uint16_t v) { le(w, v, 2); }
void t_gguf_u32(t_gguf *w, uint32_t v) { le(w, v, 4); }
void t_gguf_u64(t_gguf *w, uint64_t v) { le(w, v, 8); }

void t_gguf_f32(t_gguf *w, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    le(w, u, 4);
}

void t_gguf_f64(t_gguf *w, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    le(w, u, 8);
}

void t_gguf_strn(t_gguf *w, const char *s, size_t n)
{
    t_gguf_u64(w, n);
    t_gguf_bytes(w, s, n);
}

void t_gguf_str(t_gguf *w, const char *s) { t_gguf_strn(w, s, strlen(s)); }

void t_gguf_header(t_gguf *w, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    t_gguf_bytes(w, "GGUF", 4);
    t_gguf_u32(w, version);
    t_gguf_u64(w, n_tensors);
    t_gguf_u64(w, n_kv);
}

void t_gguf_key(t_gguf *w, const char *key, uint32_t type)
{
    t_gguf_str(w, key);
    t_gguf_u32(w, type);
}

void t_gguf_array(t_gguf *w, uint32_t elem_type, uint64_t count)
{
    t_gguf_u32(w, elem_type);
    t_gguf_u64(w, count);
}

void t_gguf_tensor(t_gguf *w, const char *name, uint32_t n_dims, const uint64_t *dims,
                   uint32_t type, uint64_t offset)
{
    t_gguf_str(w, name);
    t_gguf_u32(w, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) t_gguf_u64(w, dims[d]);
    t_gguf_u32(w, type);
    t_gguf_u64(w, offset);
}

void t_gguf_pad(t_gguf *w, size_t alignment)
{
    static const unsigned char zero[64];
    while (w->n % alignment != 0) {
        size_t k = alignment - w->n % alignment;
        t_gguf_bytes(w, zero, k < sizeof zero ? k : sizeof zero);
    }
}

void t_gguf_free(t_gguf *w)
{
    free(w->b);
    w->b = NULL;
    w->n = w->cap = 0;
}
