/* version.c - the library's version string, from the macros of attn/attn.h
 * as this library was compiled with them. */
#include "core/core.h"

#define STR_(x) #x
#define STR(x) STR_(x)

const char *attn_version(void)
{
    return STR(ATTN_VERSION_MAJOR) "." STR(ATTN_VERSION_MINOR) "." STR(ATTN_VERSION_PATCH);
}
