/* test_explain.c - the attention explorer's library (attn/explain.h): the
 * escapes of explain_text.h (HTML text, JSON inside <script>, base64 of
 * float32) against hand-written expectations; the document's argument
 * checks; the page's JSON read back with the JSON reader (tokens, weights
 * bit for bit, maps, notes); the buffer and file outputs; out-of-memory
 * injection; rollout and Chefer's rules against hand-computed values and
 * an independent double-precision product. The page in a real browser is
 * tested by python/tests/test_explain_browser.py. */
#include "test.h"

#include "formats/json.h"
#include "viz/explain_text.h"

#include <attn/explain.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* s run through one escape into buf [cap]. */
static const char *escaped(void (*fn)(attn__json_out *, const char *), const char *s)
{
    static char buf[1024];
    attn__json_out o = {buf, sizeof buf, 0};
    fn(&o, s);
    T_CHECK(o.len < sizeof buf);
    return buf;
}

T_TEST(explain_json_escapes)
{
    const struct {
        const char *in, *out;
    } cases[] = {
        {"plain text", "\"plain text\""},
        {"</script><script>alert(1)</script>",
         "\"\\u003c/script\\u003e\\u003cscript\\u003ealert(1)\\u003c/script\\u003e\""},
        {"<!-- x --> & y", "\"\\u003c!-- x --\\u003e \\u0026 y\""},
        {"say \"hi\" \\ 'there'", "\"say \\\"hi\\\" \\\\ 'there'\""},
        {"\t\n\r\x01\x1f\x7f", "\"\\u0009\\u000a\\u000d\\u0001\\u001f\\u007f\""},
        {"a\xE2\x80\xA8" "b\xE2\x80\xA9" "c", "\"a\\u2028b\\u2029c\""},   /* U+2028, U+2029 */
        {"\xC2\x85", "\"\\u0085\""},                                      /* C1 control */
        {"caf\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\x98\x80", "\"caf\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\x98\x80\""},
        {"\xFF", "\"\\ufffd\""},                                          /* not UTF-8 */
        {"\xC0\xAF", "\"\\ufffd\\ufffd\""},                               /* overlong '/' */
        {"\xED\xA0\x80", "\"\\ufffd\\ufffd\\ufffd\""},                    /* a surrogate */
        {"x\xE2\x82", "\"x\\ufffd\\ufffd\""},                             /* truncated */
        {"", "\"\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = escaped(attn__explain_json_string, cases[i].in);
        if (strcmp(got, cases[i].out) != 0)
            t_fail(__FILE__, __LINE__, "case %zu: got %s, want %s", i, got, cases[i].out);
        t_checks++;
        T_CHECK(strpbrk(got, "<>&") == NULL);
        /* valid JSON that decodes to the input (for valid UTF-8 input) */
        attn__json_value *v = NULL;
        T_EQ_STATUS(attn__json_parse(got, strlen(got), NULL, "escaped", &v), ATTN_OK);
        if (v && attn__json_utf8_ok(cases[i].in, strlen(cases[i].in)))
            T_CHECK(v->kind == ATTN__JSON_STRING && strcmp(v->str, cases[i].in) == 0);
        attn__json_free(v);
    }
}

T_TEST(explain_html_escapes)
{
    const struct {
        const char *in, *out;
    } cases[] = {
        {"<b>Tom & \"Jerry\"</b> 'x'", "&lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;/b&gt; &#39;x&#39;"},
        {"</title><script>", "&lt;/title&gt;&lt;script&gt;"},
        {"tab\tline\nend", "tab\tline\nend"},
        {"bell\x07", "bell\xEF\xBF\xBD"},
        {"del\x7F c1\xC2\x9B", "del\xEF\xBF\xBD c1\xEF\xBF\xBD"},
        {"bad\xFE", "bad\xEF\xBF\xBD"},
        {"caf\xC3\xA9 \xE2\x80\xA8", "caf\xC3\xA9 \xE2\x80\xA8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = escaped(attn__explain_html_text, cases[i].in);
        if (strcmp(got, cases[i].out) != 0)
            t_fail(__FILE__, __LINE__, "case %zu: got %s, want %s", i, got, cases[i].out);
        t_checks++;
    }
}

T_TEST(explain_base64_floats)
{
    /* expectations from Python: base64.b64encode(struct.pack('<nf', ...)) */
    const struct {
        float x[3];
        int n;
        const char *out;
    } cases[] = {
        {{1.0f}, 1, "\"AACAPw==\""},
        {{1.0f, -2.0f}, 2, "\"AACAPwAAAMA=\""},
        {{0.5f, -0.25f, 3.0f}, 3, "\"AAAAPwAAgL4AAEBA\""},
        {{1e-45f}, 1, "\"AQAAAA==\""},
        {{0}, 0, "\"\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[64];
        attn__json_out o = {buf, sizeof buf, 0};
        attn__explain_base64_f32(&o, cases[i].x, cases[i].n);
        if (strcmp(buf, cases[i].out) != 0)
            t_fail(__FILE__, __LINE__, "case %zu: got %s, want %s", i, buf, cases[i].out);
        t_checks++;
    }
}

/* ---- the document ---------------------------------------------------------------------- */

enum { NQ = 3, NK = 4 };

static const char *const nasty[NK] = {"</script>", "<!--", "\"q\"", ("a\xE2\x80\xA8" "b")};
static const char *const plain[NQ] = {"x", "y", "z"};

/* A small document: sequences q (plain) and k (nasty), one group of 2
 * layers x 2 heads, a rollout map and a relevance map. */
static attn_explain *small_doc(float *w)
{
    attn_explain *e = NULL;
    T_EQ_STATUS(attn_explain_create("</title><script>t</script>", &e), ATTN_OK);
    if (!e) return NULL;
    int64_t sq = -1, sk = -1, g = -1, t = -1;
    T_EQ_STATUS(attn_explain_add_tokens(e, "queries", plain, NQ, &sq), ATTN_OK);
    T_EQ_STATUS(attn_explain_add_tokens(e, "keys", nasty, NK, &sk), ATTN_OK);
    T_EQ_INT(sq, 0);
    T_EQ_INT(sk, 1);
    T_EQ_STATUS(attn_explain_add_group(e, "group <0>", sq, sk, 2, 2, &g), ATTN_OK);
    T_EQ_INT(g, 0);
    for (int l = 0; l < 2; l++)
        for (int h = 0; h < 2; h++)
            T_EQ_STATUS(attn_explain_set_weights(e, g, l, h, w + (l * 2 + h) * NQ * NK), ATTN_OK);
    T_EQ_STATUS(attn_explain_add_target(e, "output \"1\" </script>", &t), ATTN_OK);
    T_EQ_INT(t, 0);
    float attr[NK] = {0.25f, -1, 0, 2};
    T_EQ_STATUS(attn_explain_add_map(e, g, ATTN_EXPLAIN_KIND_ROLLOUT, -1, w, NULL), ATTN_OK);
    T_EQ_STATUS(attn_explain_add_map(e, g, ATTN_EXPLAIN_KIND_RELEVANCE, t, w + NQ * NK, attr), ATTN_OK);
    T_EQ_STATUS(attn_explain_add_note(e, "note <i>1</i>"), ATTN_OK);
    T_EQ_STATUS(attn_explain_select(e, g, 1, 1), ATTN_OK);
    return e;
}

static void fill_weights(float *w, int n)
{
    uint64_t rng = 42;
    t_fill(&rng, w, n, 0, 1);
    w[5] = 1e-45f; /* a denormal survives bit for bit */
}

/* The JSON of the page in html (between the data element's tags). */
static attn__json_value *page_json(const char *html)
{
    const char *open = "<script type=\"application/json\" id=\"attn-data\">";
    const char *a = strstr(html, open), *b = a ? strstr(a, "</script>") : NULL;
    T_CHECK(a && b);
    if (!a || !b) return NULL;
    a += strlen(open);
    attn__json_value *v = NULL;
    T_EQ_STATUS(attn__json_parse(a, (size_t)(b - a), NULL, "page", &v), ATTN_OK);
    return v;
}

/* Decodes the base64 string v into x [n]; false on a bad length or byte. */
static bool unbase64(const attn__json_value *v, float *x, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (!v || v->kind != ATTN__JSON_STRING || v->len != (4 * n + 2) / 3 * 4) return false;
    unsigned char bytes[4 * 64];
    size_t k = 0;
    for (size_t i = 0; i < v->len; i += 4) {
        uint32_t acc = 0;
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            const char *p = v->str[i + j] == '=' ? NULL : strchr(abc, v->str[i + j]);
            if (v->str[i + j] == '=') pad++;
            else if (!p) return false;
            acc = acc << 6 | (uint32_t)(p ? p - abc : 0);
        }
        for (int j = 0; j < 3 - pad && k < sizeof bytes; j++) bytes[k++] = (unsigned char)(acc >> (16 - 8 * j));
    }
    if (k != 4 * n) return false;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)bytes[4 * i] | (uint32_t)bytes[4 * i + 1] << 8 |
                     (uint32_t)bytes[4 * i + 2] << 16 | (uint32_t)bytes[4 * i + 3] << 24;
        memcpy(&x[i], &u, 4);
    }
    return true;
}

static const char *str_at(const attn__json_value *arr, size_t i)
{
    return arr && arr->kind == ATTN__JSON_ARRAY && i < arr->count &&
                   arr->items[i].kind == ATTN__JSON_STRING
               ? arr->items[i].str
               : "";
}

static double num(const attn__json_value *o, const char *key)
{
    const attn__json_value *v = attn__json_get(o, key);
    return v && v->kind == ATTN__JSON_NUMBER ? v->number : -999;
}

T_TEST(explain_page_reads_back)
{
    float w[4 * NQ * NK];
    fill_weights(w, 4 * NQ * NK);
    attn_explain *e = small_doc(w);
    size_t n = 0, n2 = 0;
    T_EQ_STATUS(attn_explain_html(e, NULL, 0, &n), ATTN_OK);
    char *html = malloc(n + 1);
    memset(html, '#', n + 1);
    T_EQ_STATUS(attn_explain_html(e, html, n, &n2), ATTN_BAD_DIM); /* no room for the NUL */
    T_CHECK(html[0] == '#');
    T_EQ_STATUS(attn_explain_html(e, html, n + 1, &n2), ATTN_OK);
    T_EQ_INT(n2, n);
    T_EQ_INT(strlen(html), n);
    /* the page: one data script and one code script; the title escaped */
    int scripts = 0;
    for (const char *p = html; (p = strstr(p, "</script")) != NULL; p++) scripts++;
    T_EQ_INT(scripts, 2);
    T_CHECK(strstr(html, "<title>&lt;/title&gt;&lt;script&gt;t&lt;/script&gt;</title>") != NULL);
    T_CHECK(strstr(html, "<!--") == NULL);
    attn__json_value *v = page_json(html);
    const attn__json_value *seqs = attn__json_get(v, "seqs"), *groups = attn__json_get(v, "groups");
    const attn__json_value *maps = attn__json_get(v, "maps"), *start = attn__json_get(v, "start");
    T_CHECK(strcmp(str_at(attn__json_get(v, "notes"), 0), "note <i>1</i>") == 0);
    T_CHECK(strcmp(attn__json_get(v, "title") ? attn__json_get(v, "title")->str : "",
                   "</title><script>t</script>") == 0);
    T_CHECK(strcmp(str_at(attn__json_get(v, "targets"), 0), "output \"1\" </script>") == 0);
    T_CHECK(seqs && seqs->count == 2 && groups && groups->count == 1 && maps && maps->count == 2);
    for (int i = 0; seqs && i < NK; i++) {
        const attn__json_value *toks = attn__json_get(&seqs->items[1], "tokens");
        T_CHECK(strcmp(str_at(toks, (size_t)i), nasty[i]) == 0);
    }
    if (groups && groups->count == 1) {
        const attn__json_value *g = &groups->items[0];
        T_EQ_INT(num(g, "q"), 0);
        T_EQ_INT(num(g, "k"), 1);
        T_EQ_INT(num(g, "layers"), 2);
        T_EQ_INT(num(g, "heads"), 2);
        float back[4 * NQ * NK];
        T_CHECK(unbase64(attn__json_get(g, "w"), back, 4 * NQ * NK));
        T_CHECK(memcmp(back, w, sizeof w) == 0);
    }
    if (maps && maps->count == 2) {
        float m[NQ * NK], attr[NK], want_attr[NK] = {0.25f, -1, 0, 2};
        T_CHECK(strcmp(attn__json_get(&maps->items[0], "kind")->str, "rollout") == 0);
        T_EQ_INT(num(&maps->items[0], "target"), -1);
        T_CHECK(attn__json_get(&maps->items[0], "attr")->kind == ATTN__JSON_NULL);
        T_CHECK(strcmp(attn__json_get(&maps->items[1], "kind")->str, "relevance") == 0);
        T_EQ_INT(num(&maps->items[1], "target"), 0);
        T_CHECK(unbase64(attn__json_get(&maps->items[1], "m"), m, NQ * NK));
        T_CHECK(memcmp(m, w + NQ * NK, sizeof m) == 0);
        T_CHECK(unbase64(attn__json_get(&maps->items[1], "attr"), attr, NK));
        T_CHECK(memcmp(attr, want_attr, sizeof attr) == 0);
    }
    T_EQ_INT(num(start, "layer"), 1);
    T_EQ_INT(num(start, "head"), 1);
    T_EQ_INT(num(v, "max_tokens"), ATTN_EXPLAIN_MAX_TOKENS);
    attn__json_free(v);

    /* the file holds the same bytes; an existing file is replaced */
    const char *path = t_path("page.html");
    FILE *f = fopen(path, "wb");
    fputs("old", f);
    fclose(f);
    size_t bytes = 0;
    T_EQ_STATUS(attn_explain_write(e, path, &bytes), ATTN_OK);
    T_EQ_INT(bytes, n);
    char *back = malloc(n + 1);
    f = fopen(path, "rb");
    T_CHECK(f && fread(back, 1, n + 1, f) == n);
    if (f) fclose(f);
    T_CHECK(memcmp(back, html, n) == 0);
    free(back);
    free(html);
    attn_explain_free(e);
}

T_TEST(explain_write_errors)
{
    float w[4 * NQ * NK];
    fill_weights(w, 4 * NQ * NK);
    attn_explain *e = small_doc(w);
    T_EQ_STATUS(attn_explain_write(e, t_tmpdir(), NULL), ATTN_IO); /* a directory */
    T_CHECK(strstr(attn_last_error(), "is a directory, not a regular file") != NULL);
    const char *fifo = t_path("page.fifo");
    T_EQ_INT(mkfifo(fifo, 0600), 0);
    T_EQ_STATUS(attn_explain_write(e, fifo, NULL), ATTN_IO); /* refused, left as it is */
    T_CHECK(strstr(attn_last_error(), "is a FIFO, not a regular file") != NULL);
    struct stat sb;
    T_CHECK(lstat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode));
    const char *missing = t_path("no/such/dir/page.html");
    T_EQ_STATUS(attn_explain_write(e, missing, NULL), ATTN_IO);
    T_CHECK(stat(missing, &sb) != 0);
    T_EQ_STATUS(attn_explain_write(e, NULL, NULL), ATTN_NULL_ARG);
    attn_explain *empty = NULL;
    T_EQ_STATUS(attn_explain_create("no groups", &empty), ATTN_OK);
    size_t n = 0;
    T_EQ_STATUS(attn_explain_html(empty, NULL, 0, &n), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_explain_write(empty, t_path("empty.html"), NULL), ATTN_BAD_PARAM);
    T_CHECK(stat(t_path("empty.html"), &sb) != 0 && stat(t_path("empty.html.tmp"), &sb) != 0);
    char buf[8];
    T_EQ_STATUS(attn_explain_html(e, NULL, 8, &n), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_explain_html(e, buf, 8, NULL), ATTN_NULL_ARG);
    attn_explain_free(empty);
    attn_explain_free(e);
    attn_explain_free(NULL);
}

T_TEST(explain_argument_checks)
{
    attn_explain *e = NULL;
    T_EQ_STATUS(attn_explain_create(NULL, &e), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_explain_create("t", NULL), ATTN_NULL_ARG);
    char *long_text = malloc(ATTN_EXPLAIN_MAX_TEXT + 2);
    memset(long_text, 'a', ATTN_EXPLAIN_MAX_TEXT + 1);
    long_text[ATTN_EXPLAIN_MAX_TEXT + 1] = '\0';
    T_EQ_STATUS(attn_explain_create(long_text, &e), ATTN_BAD_PARAM);
    T_CHECK(e == NULL);
    T_EQ_STATUS(attn_explain_create("t", &e), ATTN_OK);
    T_EQ_STATUS(attn_explain_add_note(e, long_text), ATTN_BAD_PARAM);
    long_text[ATTN_EXPLAIN_MAX_TEXT] = '\0';
    T_EQ_STATUS(attn_explain_add_note(e, long_text), ATTN_OK); /* exactly the limit */
    free(long_text);
    int64_t s = -5, g = -5, t = -5;
    const char **many = calloc(ATTN_EXPLAIN_MAX_TOKENS + 1, sizeof *many);
    for (int i = 0; i <= ATTN_EXPLAIN_MAX_TOKENS; i++) many[i] = "w";
    T_EQ_STATUS(attn_explain_add_tokens(e, "s", many, 0, &s), ATTN_BAD_DIM);
    T_EQ_STATUS(attn_explain_add_tokens(e, "s", many, ATTN_EXPLAIN_MAX_TOKENS + 1, &s), ATTN_BAD_DIM);
    T_CHECK(strstr(attn_last_error(), "ATTN_EXPLAIN_MAX_TOKENS") != NULL);
    T_EQ_INT(s, -5);
    many[7] = NULL;
    T_EQ_STATUS(attn_explain_add_tokens(e, "s", many, 10, &s), ATTN_NULL_ARG);
    T_CHECK(strstr(attn_last_error(), "tokens[7]") != NULL);
    T_EQ_STATUS(attn_explain_add_tokens(e, "s", many, 3, &s), ATTN_OK);
    free(many);
    T_EQ_STATUS(attn_explain_add_group(e, "g", 1, 0, 1, 1, &g), ATTN_BAD_PARAM); /* no seq 1 */
    T_EQ_STATUS(attn_explain_add_group(e, "g", 0, 0, 0, 1, &g), ATTN_BAD_DIM);
    T_EQ_STATUS(attn_explain_add_group(e, "g", 0, 0, 1, 4097, &g), ATTN_BAD_DIM);
    T_EQ_INT(g, -5);
    T_EQ_STATUS(attn_explain_add_group(e, "g", 0, 0, 2, 1, &g), ATTN_OK);
    float w[9] = {0, 1, 0, 0, 1, 0, 0, 0, 1};
    T_EQ_STATUS(attn_explain_set_weights(e, 1, 0, 0, w), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_explain_set_weights(e, 0, 2, 0, w), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_explain_set_weights(e, 0, 0, 1, w), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_explain_set_weights(e, 0, 0, 0, NULL), ATTN_NULL_ARG);
    w[4] = NAN;
    T_EQ_STATUS(attn_explain_set_weights(e, 0, 0, 0, w), ATTN_BAD_PARAM);
    T_CHECK(strstr(attn_last_error(), "w[4]") != NULL);
    w[4] = 1;
    T_EQ_STATUS(attn_explain_add_map(e, 0, ATTN_EXPLAIN_KIND_RELEVANCE, 0, w, NULL), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_explain_add_target(e, "out", &t), ATTN_OK);
    T_EQ_STATUS(attn_explain_add_map(e, 0, ATTN_EXPLAIN_KIND_ROLLOUT, 0, w, NULL), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_explain_add_map(e, 0, (attn_explain_kind)7, -1, w, NULL), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_explain_add_map(e, 0, ATTN_EXPLAIN_KIND_ROLLOUT, -1, w, NULL), ATTN_OK);
    T_EQ_STATUS(attn_explain_add_map(e, 0, ATTN_EXPLAIN_KIND_ROLLOUT, -1, w, NULL), ATTN_BAD_PARAM);
    float attr[3] = {0, INFINITY, 0};
    T_EQ_STATUS(attn_explain_add_map(e, 0, ATTN_EXPLAIN_KIND_RELEVANCE, t, w, attr), ATTN_BAD_PARAM);
    T_CHECK(strstr(attn_last_error(), "attr[1]") != NULL);
    T_EQ_STATUS(attn_explain_select(e, 0, 2, 0), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_explain_select(e, 0, 1, 1), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_explain_select(e, 3, 0, 0), ATTN_BAD_PARAM);
    T_EQ_STATUS(attn_explain_select(e, 0, 1, 0), ATTN_OK);
    T_EQ_STATUS(attn_explain_add_note(NULL, "x"), ATTN_NULL_ARG);
    attn_explain_free(e);
}

/* Fails the k-th allocation of building the document and writing its page,
 * for every k: ATTN_NO_MEMORY and nothing leaks. */
T_TEST(explain_out_of_memory)
{
    float w[4 * NQ * NK];
    fill_weights(w, 4 * NQ * NK);
    const char *path = t_path("oom.html");
    long k = 1;
    for (;; k++) {
        t_counting c = {0, 0, k};
        attn_set_allocator(t_count_alloc, t_count_free, &c);
        attn_explain *e = NULL;
        attn_status st = attn_explain_create("oom", &e);
        int64_t sq = 0, sk = 0, g = 0;
        if (st == ATTN_OK) st = attn_explain_add_tokens(e, "q", plain, NQ, &sq);
        if (st == ATTN_OK) st = attn_explain_add_tokens(e, "k", nasty, NK, &sk);
        if (st == ATTN_OK) st = attn_explain_add_group(e, "g", sq, sk, 2, 2, &g);
        if (st == ATTN_OK) st = attn_explain_add_map(e, g, ATTN_EXPLAIN_KIND_ROLLOUT, -1, w, w);
        if (st == ATTN_OK) st = attn_explain_add_note(e, "n");
        if (st == ATTN_OK) st = attn_explain_write(e, path, NULL);
        float r[NQ * NQ];
        if (st == ATTN_OK) st = attn_explain_rollout(w, 1, 1, NQ, r);
        attn_explain_free(e);
        attn_set_allocator(NULL, NULL, NULL);
        T_EQ_INT(c.live, 0);
        if (c.calls < k) {
            T_EQ_STATUS(st, ATTN_OK);
            break;
        }
        T_EQ_STATUS(st, ATTN_NO_MEMORY);
    }
    T_CHECK(k > 8);
}

/* ---- rollout and relevance ---------------------------------------------------------------- */

T_TEST(explain_rules_hand_computed)
{
    /* head mean: plain, and of the positive part of grad * a */
    float a[2 * 2 * 2] = {0.25f, 0.75f, 1, 0, /* head 0 */ 0.75f, 0.25f, 0.5f, 0.5f};
    float g[2 * 2 * 2] = {2, -1, 1, 5, /* head 1 */ -4, 4, 1, 3};
    float m[4];
    T_EQ_STATUS(attn_explain_head_mean(a, NULL, 2, 2, 2, m), ATTN_OK);
    const float want_mean[4] = {0.5f, 0.5f, 0.75f, 0.25f};
    const float want_grad[4] = {0.25f, 0.5f, 0.75f, 0.75f}; /* (0.5+0)/2, (0+1)/2, (1+.5)/2, (0+1.5)/2 */
    for (int i = 0; i < 4; i++) T_NEAR(m[i], want_mean[i], 1e-7);
    T_EQ_STATUS(attn_explain_head_mean(a, g, 2, 2, 2, m), ATTN_OK);
    for (int i = 0; i < 4; i++) T_NEAR(m[i], want_grad[i], 1e-7);

    /* self rule twice on R = I, with R_xy: R += abar R */
    float abar[4] = {0.5f, 0.5f, 0, 1}, r[4] = {1, 0, 0, 1}, rxy[2 * 3] = {1, 0, 2, 0, 1, -1};
    T_EQ_STATUS(attn_explain_self_rule(abar, 2, r, rxy, 3), ATTN_OK);
    const float r1[4] = {1.5f, 0.5f, 0, 2}, rxy1[6] = {1.5f, 0.5f, 2.5f, 0, 2, -2};
    for (int i = 0; i < 4; i++) T_NEAR(r[i], r1[i], 1e-7);
    for (int i = 0; i < 6; i++) T_NEAR(rxy[i], rxy1[i], 1e-7);
    T_EQ_STATUS(attn_explain_self_rule(abar, 2, r, NULL, 0), ATTN_OK);
    const float r2[4] = {2.25f, 1.75f, 0, 4};
    for (int i = 0; i < 4; i++) T_NEAR(r[i], r2[i], 1e-7);

    /* cross rule: Rbar_tt = rownorm(R_tt - I) + I: row 0 of R - I is 0 and
       stays 0, row 1 = [0.5, 0.5]; R_ss = I; abar [[1, 2], [3, 4]]:
       r_ts += [[1, 0.5], [0, 1.5]] abar = [[2.5, 4], [4.5, 6]] */
    float rtt[4] = {1, 0, 0.25f, 1.25f}, rss[4] = {1, 0, 0, 1}, ab[4] = {1, 2, 3, 4};
    float rts[4] = {1, 1, 1, 1};
    T_EQ_STATUS(attn_explain_cross_rule(ab, rtt, 2, rss, 2, rts), ATTN_OK);
    const float want_ts[4] = {3.5f, 5, 5.5f, 7};
    for (int i = 0; i < 4; i++) T_NEAR(rts[i], want_ts[i], 1e-6);
    /* a non-identity R_ss is normalised the same way: [[1, 0], [1, 3]] ->
       [[1, 0], [1/3, 5/3]]; with R_tt = I: r_ts = abar Rbar_ss */
    float rss2[4] = {1, 0, 1, 3}, eye[4] = {1, 0, 0, 1}, rts2[4] = {0, 0, 0, 0};
    T_EQ_STATUS(attn_explain_cross_rule(ab, eye, 2, rss2, 2, rts2), ATTN_OK);
    const float want2[4] = {1 + 2.0f / 3, 10.0f / 3, 3 + 4.0f / 3, 20.0f / 3};
    for (int i = 0; i < 4; i++) T_NEAR(rts2[i], want2[i], 1e-6);

    /* errors */
    T_EQ_STATUS(attn_explain_head_mean(NULL, NULL, 1, 1, 1, m), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_explain_head_mean(a, NULL, 0, 1, 1, m), ATTN_BAD_DIM);
    T_EQ_STATUS(attn_explain_self_rule(abar, 0, r, NULL, 0), ATTN_BAD_DIM);
    T_EQ_STATUS(attn_explain_self_rule(abar, 2, r, rxy, 0), ATTN_BAD_DIM);
    T_EQ_STATUS(attn_explain_cross_rule(ab, rtt, 2, NULL, 2, rts), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_explain_rollout(a, 0, 1, 2, m), ATTN_BAD_DIM);
    T_EQ_STATUS(attn_explain_rollout(a, 1, 1, (int64_t)1 << 62, m), ATTN_OVERFLOW);
}

/* Rollout of random row-stochastic layers against the product of
 * (0.5 mean_h A + 0.5 I), formed here in double in the other order
 * (left to right from the first layer's transpose). */
T_TEST(explain_rollout_vs_double_product)
{
    enum { L = 3, H = 2, N = 5 };
    float a[L * H * N * N], r[N * N];
    uint64_t rng = 11;
    t_fill(&rng, a, L * H * N * N, 0.01, 1);
    for (int row = 0; row < L * H * N; row++) { /* softmax-like rows */
        double s = 0;
        for (int j = 0; j < N; j++) s += a[row * N + j];
        for (int j = 0; j < N; j++) a[row * N + j] = (float)(a[row * N + j] / s);
    }
    T_EQ_STATUS(attn_explain_rollout(a, L, H, N, r), ATTN_OK);
    /* want^T = M_0^T M_1^T M_2^T, accumulated as p = p M_l^T */
    double p[N * N], next[N * N];
    for (int i = 0; i < N * N; i++) p[i] = i % (N + 1) == 0;
    for (int l = 0; l < L; l++) {
        double m[N * N];
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                double mean = 0;
                for (int h = 0; h < H; h++) mean += a[((l * H + h) * N + i) * N + j] / H;
                m[i * N + j] = 0.5 * mean + (i == j ? 0.5 : 0);
            }
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                double acc = 0;
                for (int k = 0; k < N; k++) acc += p[i * N + k] * m[j * N + k];
                next[i * N + j] = acc;
            }
        memcpy(p, next, sizeof p);
    }
    double err = 0;
    for (int i = 0; i < N; i++) {
        double sum = 0;
        for (int j = 0; j < N; j++) {
            err = fmax(err, fabs(r[i * N + j] - p[j * N + i]));
            sum += r[i * N + j];
        }
        T_NEAR(sum, 1.0, 1e-6);
    }
    T_LE(err, 1e-7);
}
