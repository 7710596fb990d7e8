/* gguf_write.h - a GGUF writer for the tests (gguf_write.c): builds file
 * images byte by byte, valid or deliberately broken, from the format's
 * definition (attn/gguf.h). Lengths and counts are written as given, so a
 * test can lie in any field. */
#ifndef ATTN_TEST_GGUF_WRITE_H
#define ATTN_TEST_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>

typedef struct t_gguf {
    unsigned char *b; /* [n] the image so far (malloc) */
    size_t n, cap;
} t_gguf;

void t_gguf_bytes(t_gguf *w, const void *p, size_t n);
void t_gguf_u8(t_gguf *w, uint8_t v);
void t_gguf_u16(t_gguf *w, uint16_t v);
void t_gguf_u32(t_gguf *w, uint32_t v);
void t_gguf_u64(t_gguf *w, uint64_t v);
void t_gguf_f32(t_gguf *w, float v);
void t_gguf_f64(t_gguf *w, double v);
/* A string: uint64 length, bytes (NUL-terminated s; t_gguf_strn for any). */
void t_gguf_str(t_gguf *w, const char *s);
void t_gguf_strn(t_gguf *w, const char *s, size_t n);
/* "GGUF", version, n_tensors, n_kv. */
void t_gguf_header(t_gguf *w, uint32_t version, uint64_t n_tensors, uint64_t n_kv);
/* A pair's key and value type; the value follows. */
void t_gguf_key(t_gguf *w, const char *key, uint32_t type);
/* An array header: element type, count; the elements follow. */
void t_gguf_array(t_gguf *w, uint32_t elem_type, uint64_t count);
/* A tensor info. */
void t_gguf_tensor(t_gguf *w, const char *name, uint32_t n_dims, const uint64_t *dims,
                   uint32_t type, uint64_t offset);
/* Zero bytes up to a multiple of alignment. */
void t_gguf_pad(t_gguf *w, size_t alignment);
void t_gguf_free(t_gguf *w);

#endif /* ATTN_TEST_GGUF_WRITE_H */
