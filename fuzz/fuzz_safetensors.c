/* fuzz_safetensors.c - libFuzzer target for the safetensors reader
 * (src/formats/safetensors.c). Any input must open or fail with ATTN_BAD_FILE.
 * An opened file is walked completely: every tensor's size agrees with its
 * dtype and shape, is found again by name, is read (all its bytes) and,
 * for float dtypes, converted with attn_safetensors_read_f32; together the tensors
 * cover exactly the bytes after the header. A failed check aborts. */
#include <attn/safetensors.h>

#include <stdlib.h>
#include <string.h>

static void check(int ok)
{
    if (!ok) abort();
}

static size_t element_size(attn_dtype d)
{
    switch (d) {
    case ATTN_DTYPE_F64: case ATTN_DTYPE_I64: return 8;
    case ATTN_DTYPE_F32: case ATTN_DTYPE_I32: return 4;
    case ATTN_DTYPE_F16: case ATTN_DTYPE_BF16: return 2;
    case ATTN_DTYPE_U8: case ATTN_DTYPE_BOOL: return 1;
    }
    abort();
}

/* One tensor: checked, read and converted; returns its bytes. */
static size_t visit(const attn_safetensors *f, int64_t i)
{
    attn_safetensors_info info, again;
    check(attn_safetensors_get(f, i, &info) == ATTN_OK);
    check(info.bytes == (size_t)info.numel * element_size(info.dtype));
    check(attn_safetensors_find(f, info.name, &again) == ATTN_OK && again.data == info.data);
    unsigned char *copy = malloc(info.bytes + 1);
    memcpy(copy, info.data, info.bytes);
    free(copy);
    float *dst = malloc((size_t)info.numel * sizeof(float) + 1);
    attn_status st = attn_safetensors_read_f32(f, info.name, info.ndim, info.shape, dst);
    int is_float = info.dtype == ATTN_DTYPE_F32 || info.dtype == ATTN_DTYPE_F16 ||
                   info.dtype == ATTN_DTYPE_BF16 || info.dtype == ATTN_DTYPE_F64;
    check(st == (is_float ? ATTN_OK : ATTN_BAD_FILE));
    free(dst);
    return info.bytes;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    attn_safetensors *f = NULL;
    attn_status st = attn_safetensors_load_memory(data, size, &f);
    if (st != ATTN_OK) {
        check(st == ATTN_BAD_FILE && f == NULL && attn_last_error()[0] != '\0');
        return 0;
    }
    uint64_t n_header = 0;
    for (int i = 7; i >= 0; i--) n_header = n_header << 8 | data[i];
    size_t total = 0;
    for (int64_t i = 0; i < attn_safetensors_count(f); i++) total += visit(f, i);
    check(total == size - 8 - n_header);
    const char *format = attn_safetensors_metadata(f, "format");
    check(format == NULL || strlen(format) < size);
    attn_safetensors_free(f);
    return 0;
}
