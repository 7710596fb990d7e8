/* fuzz_resume_meta.c - libFuzzer target for the training config a
 * checkpoint stores for `attn train --resume` (apps/attn/task/train.c
 * task_train_cfg_from_meta). The input is a list of "key=value" lines,
 * written here as the __metadata__ of a safetensors header (the JSON writer
 * escapes them) and loaded with attn_safetensors_load_memory, which may
 * reject it (ATTN_BAD_FILE: not UTF-8, a key twice). A loaded file's config
 * is read into a sentinel-filled struct: success must give every field from
 * its value (as strtod reads the decimal text) inside its documented range,
 * integers (digits and a sign only) where they must be, and no other field
 * changed; failure must be ATTN_BAD_FILE with a message and the struct
 * untouched. */
#include "formats/json.h"
#include "task/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void check(int ok)
{
    if (!ok) abort();
}

/* The header {"__metadata__":{...}} of the lines of data [size], with its
 * 8-byte length in front, into a new allocation; *n its size. */
static char *make_file(const char *data, size_t size, size_t *n)
{
    attn__json_out o = {NULL, 0, 0};
    for (int pass = 0; pass < 2; pass++) {
        o.len = 0;
        attn__json_out_raw(&o, "{\"__metadata__\":{", 17);
        const char *p = data, *end = data + size;
        for (int first = 1; p < end; first = 0) {
            const char *nl = memchr(p, '\n', (size_t)(end - p)), *line_end = nl ? nl : end;
            const char *eq = memchr(p, '=', (size_t)(line_end - p)), *k_end = eq ? eq : line_end;
            if (!first) attn__json_out_raw(&o, ",", 1);
            if (!attn__json_out_string(&o, p, (size_t)(k_end - p))) attn__json_out_raw(&o, "\"?\"", 3);
            attn__json_out_raw(&o, ":", 1);
            const char *v = eq ? eq + 1 : line_end;
            if (!attn__json_out_string(&o, v, (size_t)(line_end - v))) attn__json_out_raw(&o, "\"?\"", 3);
            p = nl ? nl + 1 : end;
        }
        attn__json_out_raw(&o, "}}", 2);
        if (pass == 0) {
            o.cap = o.len + 9;
            o.buf = malloc(o.cap);
        }
    }
    memmove(o.buf + 8, o.buf, o.len);
    for (int i = 0; i < 8; i++) o.buf[i] = (char)((uint64_t)o.len >> (8 * i));
    *n = o.len + 8;
    return o.buf;
}

/* Key k's value read as a number: in [lo, hi], and only the characters of
 * a decimal number (of an integer if `whole`). */
static double value(const attn_safetensors *f, const char *k, double lo, double hi, int whole)
{
    const char *s = attn_safetensors_metadata(f, k);
    check(s != NULL && s[0] != '\0' && strspn(s, whole ? "0123456789+-" : "0123456789+-.eE") == strlen(s));
    char *end;
    double x = strtod(s, &end);
    check(*end == '\0' && x >= lo && x <= hi && (!whole || x == floor(x)));
    return x;
}

static void check_config(const attn_safetensors *f, const task_train_cfg *c, const task_train_cfg *before)
{
    check(c->steps == (int64_t)value(f, "train.steps", 0, 1e9, 1));
    check(c->batch == (int64_t)value(f, "train.batch", 1, 1e6, 1));
    check(c->warmup == (int64_t)value(f, "train.warmup", 0, 1e9, 1));
    check(c->lr == value(f, "train.lr", 0, 10, 0));
    check(c->min_lr == value(f, "train.min_lr", 0, 10, 0));
    check(c->weight_decay == value(f, "train.weight_decay", 0, 10, 0));
    check(c->clip == value(f, "train.clip", 0, 1e6, 0));
    check(c->label_smoothing == value(f, "train.label_smoothing", 0, 1, 0));
    check((int)c->schedule == (int)value(f, "train.schedule", 0, 2, 1));
    check(c->data_seed == (uint64_t)value(f, "train.data_seed", 0, 4e9, 1));
    check(c->seed == (uint64_t)value(f, "train.seed", 0, 4e9, 1));
    /* the rest is untouched */
    task_train_cfg rest;
    memcpy(&rest, c, sizeof rest);
    rest.steps = before->steps, rest.batch = before->batch, rest.warmup = before->warmup;
    rest.lr = before->lr, rest.min_lr = before->min_lr, rest.weight_decay = before->weight_decay;
    rest.clip = before->clip, rest.label_smoothing = before->label_smoothing;
    rest.schedule = before->schedule, rest.data_seed = before->data_seed, rest.seed = before->seed;
    check(memcmp(&rest, before, sizeof rest) == 0);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    size_t n = 0;
    char *file = make_file((const char *)data, size, &n);
    attn_safetensors *f = NULL;
    attn_status st = attn_safetensors_load_memory(file, n, &f);
    free(file);
    if (st != ATTN_OK) {
        check(st == ATTN_BAD_FILE && attn_last_error()[0] != '\0');
        return 0;
    }
    task_train_cfg before, c;
    memset(&before, 0xA5, sizeof before);
    memcpy(&c, &before, sizeof c);
    st = task_train_cfg_from_meta(f, &c);
    if (st == ATTN_OK) check_config(f, &c, &before);
    else check(st == ATTN_BAD_FILE && attn_last_error()[0] != '\0' && memcmp(&c, &before, sizeof c) == 0);
    attn_safetensors_free(f);
    return 0;
}
