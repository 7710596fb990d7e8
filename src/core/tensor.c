/* tensor.c - the element types (names and sizes, from ATTN_DTYPE_TABLE)
 * and contiguous tensor views. */
#include "core/core.h"

const char *attn_dtype_name(attn_dtype d)
{
    switch (d) {
#define NAME(name, value, bytes) \
    case ATTN_DTYPE_##name:      \
        return #name;
        ATTN_DTYPE_TABLE(NAME)
#undef NAME
    }
    return "?";
}

size_t attn_dtype_size(attn_dtype d)
{
    switch (d) {
#define SIZE(name, value, bytes) \
    case ATTN_DTYPE_##name:      \
        return bytes;
        ATTN_DTYPE_TABLE(SIZE)
#undef SIZE
    }
    return 0;
}

attn_tensor attn_tensor_make(void *data, attn_dtype dtype, int64_t d0, int64_t d1, int64_t d2,
                             int64_t d3)
{
    attn_tensor t;
    t.data = data;
    t.dtype = dtype;
    t.dim[0] = d0;
    t.dim[1] = d1;
    t.dim[2] = d2;
    t.dim[3] = d3;
    t.stride[3] = 1;
    t.stride[2] = d3;
    t.stride[1] = d2 * d3;
    t.stride[0] = d1 * d2 * d3;
    return t;
}
