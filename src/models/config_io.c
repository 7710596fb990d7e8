/* config_io.c - the walks over a model's config table (config_io.h):
 * defaults, range checks, the JSON writer and the strict JSON reader. */
#include "config_io.h"

#include "formats/json.h"

#include <stdio.h>
#include <string.h>

/* A member's value, by type: int64_t, double, or int (BOOL, ENUM, whose
 * enums the models check are int-sized). memcpy: no pointer casts. */
static int64_t get_i64(const void *cfg, const attn__cfg_field *f)
{
    int64_t v;
    memcpy(&v, (const char *)cfg + f->offset, sizeof v);
    return v;
}
static double get_f64(const void *cfg, const attn__cfg_field *f)
{
    double v;
    memcpy(&v, (const char *)cfg + f->offset, sizeof v);
    return v;
}
static int get_int(const void *cfg, const attn__cfg_field *f)
{
    int v;
    memcpy(&v, (const char *)cfg + f->offset, sizeof v);
    return v;
}
static void set_i64(void *cfg, const attn__cfg_field *f, int64_t v)
{
    memcpy((char *)cfg + f->offset, &v, sizeof v);
}
static void set_f64(void *cfg, const attn__cfg_field *f, double v)
{
    memcpy((char *)cfg + f->offset, &v, sizeof v);
}
static void set_int(void *cfg, const attn__cfg_field *f, int v)
{
    memcpy((char *)cfg + f->offset, &v, sizeof v);
}

void attn__cfg_defaults(const attn__cfg_table *t, void *cfg)
{
    memset(cfg, 0, t->size);
    for (int i = 0; i < t->n; i++) {
        const attn__cfg_field *f = &t->fields[i];
        if (f->type == ATTN__CFG_INT64) set_i64(cfg, f, (int64_t)f->def);
        else if (f->type == ATTN__CFG_DOUBLE) set_f64(cfg, f, f->def);
        else set_int(cfg, f, (int)f->def);
    }
}

static bool in_range(const attn__cfg_field *f, double v)
{
    bool lo_ok = f->bounds[0] == '(' ? v > f->lo : v >= f->lo;
    bool hi_ok = f->bounds[1] == ')' ? v < f->hi : v <= f->hi;
    return lo_ok && hi_ok; /* false for NaN */
}

/* The allowed values of an ENUM field, as numbers ("1 (encdec), 2 (decoder)")
 * or as JSON names ("\"encdec\", \"decoder\""). */
static void enum_list(const attn__cfg_field *f, bool numbers, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int v = (int)f->lo; v <= (int)f->hi && len < cap; v++) {
        const char *sep = v > (int)f->lo ? ", " : "", *name = f->names[v - (int)f->lo];
        int k = numbers ? snprintf(buf + len, cap - len, "%s%d (%s)", sep, v, name)
                        : snprintf(buf + len, cap - len, "%s\"%s\"", sep, name);
        if (k < 0) return;
        len += (size_t)k;
    }
}

static attn_status check_field(const attn__cfg_field *f, const void *cfg, const char *what,
                               attn_status dim_code, attn_status other_code)
{
    if (f->type == ATTN__CFG_INT64) {
        int64_t v = get_i64(cfg, f);
        if (in_range(f, (double)v)) return ATTN_OK;
        return attn_fail(dim_code, "%s: '%s' = %lld is outside [%lld, %lld]", what, f->key,
                         (long long)v, (long long)f->lo, (long long)f->hi);
    }
    if (f->type == ATTN__CFG_DOUBLE) {
        double v = get_f64(cfg, f);
        if (in_range(f, v)) return ATTN_OK;
        return attn_fail(other_code, "%s: '%s' = %g is outside %c%g, %g%c", what, f->key, v,
                         f->bounds[0], f->lo, f->hi, f->bounds[1]);
    }
    int v = get_int(cfg, f);
    if (in_range(f, (double)v)) return ATTN_OK;
    if (f->type == ATTN__CFG_BOOL)
        return attn_fail(other_code, "%s: '%s' = %d is not 0 or 1", what, f->key, v);
    char names[256];
    enum_list(f, true, names, sizeof names);
    return attn_fail(other_code, "%s: '%s' = %d is not one of %s", what, f->key, v, names);
}

attn_status attn__cfg_check(const attn__cfg_table *t, const void *cfg, const char *what,
                            attn_status dim_code, attn_status other_code)
{
    for (int i = 0; i < t->n; i++) {
        attn_status st = check_field(&t->fields[i], cfg, what, dim_code, other_code);
        if (st != ATTN_OK) return st;
    }
    return ATTN_OK;
}

/* ---- JSON ------------------------------------------------------------------------- */

static void write_value(attn__json_out *o, const attn__cfg_field *f, const void *cfg)
{
    if (f->type == ATTN__CFG_INT64) {
        attn__json_out_int(o, get_i64(cfg, f));
    } else if (f->type == ATTN__CFG_DOUBLE) {
        attn__json_out_double(o, get_f64(cfg, f)); /* finite: checked */
    } else if (f->type == ATTN__CFG_BOOL) {
        attn__json_out_int(o, get_int(cfg, f));
    } else {
        const char *name = f->names[get_int(cfg, f) - (int)f->lo];
        attn__json_out_string(o, name, strlen(name));
    }
}

attn_status attn__cfg_to_json(const attn__cfg_table *t, const void *cfg, const char *fn,
                              char *buf, size_t cap)
{
    char what[128];
    snprintf(what, sizeof what, "%s: config", fn);
    attn_status st = attn__cfg_check(t, cfg, what, ATTN_BAD_DIM, ATTN_BAD_PARAM);
    if (st != ATTN_OK) return st;
    attn__json_out o = {buf, cap, 0};
    attn__json_out_raw(&o, "{", 1);
    for (int i = 0; i < t->n; i++) {
        const attn__cfg_field *f = &t->fields[i];
        if (i > 0) attn__json_out_raw(&o, ", ", 2);
        attn__json_out_string(&o, f->key, strlen(f->key));
        attn__json_out_raw(&o, ": ", 2);
        write_value(&o, f, cfg);
    }
    attn__json_out_raw(&o, "}", 1);
    if (o.len >= cap)
        return attn_fail(ATTN_BAD_DIM, "%s: argument 'cap' %zu is too small (%zu needed)", fn,
                         cap, o.len + 1);
    return ATTN_OK;
}

/* One member of the object into its field: present, of the JSON kind the
 * field's type is written as, integral where it must be, a known name. */
static attn_status read_field(const attn__json_value *root, const attn__cfg_field *f,
                              const char *what, void *cfg)
{
    const attn__json_value *v = attn__json_get(root, f->key);
    attn__json_kind want = f->type == ATTN__CFG_ENUM ? ATTN__JSON_STRING : ATTN__JSON_NUMBER;
    if (!v) return attn_fail(ATTN_BAD_FILE, "%s: missing field '%s'", what, f->key);
    if (v->kind != want)
        return attn_fail(ATTN_BAD_FILE, "%s: field '%s' is %s, not %s", what, f->key,
                         attn__json_kind_name(v->kind), attn__json_kind_name(want));
    if (f->type == ATTN__CFG_DOUBLE) {
        set_f64(cfg, f, v->number);
        return ATTN_OK;
    }
    if (f->type == ATTN__CFG_ENUM) {
        for (int x = (int)f->lo; x <= (int)f->hi; x++)
            if (strcmp(f->names[x - (int)f->lo], v->str) == 0) {
                set_int(cfg, f, x);
                return ATTN_OK;
            }
        char names[256];
        enum_list(f, false, names, sizeof names);
        return attn_fail(ATTN_BAD_FILE, "%s: '%s' = \"%.40s\" is unknown (not one of %s)", what,
                         f->key, v->str, names);
    }
    int64_t x = 0;
    attn_status st = attn__json_int64(v, what, &x);
    if (st != ATTN_OK) return st;
    if (f->type == ATTN__CFG_INT64) {
        set_i64(cfg, f, x);
        return ATTN_OK;
    }
    if (x != 0 && x != 1) /* BOOL: checked here, before it is narrowed to an int */
        return attn_fail(ATTN_BAD_FILE, "%s: '%s' = %lld is not 0 or 1", what, f->key,
                         (long long)x);
    set_int(cfg, f, (int)x);
    return ATTN_OK;
}

static attn_status read_object(const attn__cfg_table *t, const attn__json_value *root,
                               const char *what, void *cfg)
{
    if (root->kind != ATTN__JSON_OBJECT) return attn_fail(ATTN_BAD_FILE, "%s: not an object", what);
    for (size_t i = 0; i < root->count; i++) {
        int k = 0;
        while (k < t->n && strcmp(t->fields[k].key, root->items[i].key) != 0) k++;
        if (k == t->n)
            return attn_fail(ATTN_BAD_FILE, "%s: unknown field '%.60s'", what, root->items[i].key);
    }
    for (int i = 0; i < t->n; i++) {
        attn_status st = read_field(root, &t->fields[i], what, cfg);
        if (st != ATTN_OK) return st;
    }
    return attn__cfg_check(t, cfg, what, ATTN_BAD_FILE, ATTN_BAD_FILE);
}

attn_status attn__cfg_from_json(const attn__cfg_table *t, const char *json, const char *what,
                                void *cfg)
{
    attn__json_value *root = NULL;
    attn_status st = attn__json_parse(json, strlen(json), NULL, what, &root);
    if (st != ATTN_OK) return st;
    st = read_object(t, root, what, cfg);
    attn__json_free(root);
    return st;
}
