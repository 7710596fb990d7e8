/* status.c - status code names and strings, and the per-thread detail
 * message that names the argument behind the last failure. */
#include "core/core.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[512];

const char *attn_status_name(attn_status s)
{
    switch (s) {
#define NAME_CASE(name, value, text) \
    case ATTN_##name:                \
        return "ATTN_" #name;
        ATTN_STATUS_TABLE(NAME_CASE)
#undef NAME_CASE
    }
    return "ATTN_UNKNOWN";
}

const char *attn_status_string(attn_status s)
{
    switch (s) {
#define TEXT_CASE(name, value, text) \
    case ATTN_##name:                \
        return text;
        ATTN_STATUS_TABLE(TEXT_CASE)
#undef TEXT_CASE
    }
    return "unknown status code";
}

const char *attn_last_error(void) { return last_error; }

void attn__clear_error(void) { last_error[0] = '\0'; }

attn_status attn_fail(attn_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return s;
}
