/* dtype.c - names and sizes of the element types (ATTN_DTYPE_TABLE). */
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
