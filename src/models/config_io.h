/* config_io.h - a model's configuration described once (config_io.c): a
 * table of its fields, which each model's config.c builds from an X-macro
 * list, and the four things that walk it: the defaults, the range checks,
 * the JSON writer and the strict JSON reader. A model's public config
 * struct stays as it is; the table says where each field lies in it. */
#ifndef ATTN_MODELS_CONFIG_IO_H
#define ATTN_MODELS_CONFIG_IO_H

#include <attn/attn.h>

#include <stddef.h>

typedef enum {
    ATTN__CFG_INT64,  /* int64_t: an integer in [lo, hi] (JSON number) */
    ATTN__CFG_DOUBLE, /* double: in lo..hi, each end open or closed (JSON number) */
    ATTN__CFG_BOOL,   /* int: 0 or 1 (JSON number) */
    ATTN__CFG_ENUM    /* an int-sized enum: lo..hi, names[v - lo] (JSON string) */
} attn__cfg_type;

typedef struct {
    const char *key;     /* the JSON key: the struct member's name */
    attn__cfg_type type;
    size_t offset;       /* offsetof the member */
    double lo, hi;       /* the allowed range */
    const char *bounds;  /* "[]", "[)", "(]" or "()": which ends are open */
    double def;          /* the default */
    const char *const *names; /* ENUM: the hi - lo + 1 names; else NULL */
} attn__cfg_field;

typedef struct {
    const attn__cfg_field *fields;
    int n;
    size_t size; /* sizeof the config struct */
} attn__cfg_table;

/* One table row from a model's X-macro row X(name, type, lo, hi, bounds,
 * def, names) of the config struct type T. */
#define ATTN__CFG_FIELD(T, name, type, lo, hi, bounds, def, names) \
    {#name, ATTN__CFG_##type, offsetof(T, name), lo, hi, bounds, def, names},

/* cfg = every field's default (and zero padding). */
void attn__cfg_defaults(const attn__cfg_table *t, void *cfg);

/* ATTN_OK if every field of cfg is in its range; otherwise the first field
 * out of range fails, INT64 fields with dim_code and the others with
 * other_code, with "<what>: '<key>' = <value> is outside <range>" (or the
 * names allowed). */
attn_status attn__cfg_check(const attn__cfg_table *t, const void *cfg, const char *what,
                            attn_status dim_code, attn_status other_code);

/* The JSON object of cfg, {"key": value, ...} in table order, into buf
 * [cap] with its NUL. cfg is checked first (ATTN_BAD_DIM, ATTN_BAD_PARAM,
 * messages "<fn>: config: ..."); a short cap is ATTN_BAD_DIM. */
attn_status attn__cfg_to_json(const attn__cfg_table *t, const void *cfg, const char *fn,
                              char *buf, size_t cap);

/* Reads json strictly into cfg: an object with exactly the table's keys
 * (unknown and missing keys rejected), each of its type (integers
 * integral, enums by name) and in its range. Every failure is
 * ATTN_BAD_FILE with a message starting "<what>: ". cfg may be partly
 * written on failure (callers read into a scratch copy). */
attn_status attn__cfg_from_json(const attn__cfg_table *t, const char *json, const char *what,
                                void *cfg);

#endif /* ATTN_MODELS_CONFIG_IO_H */
