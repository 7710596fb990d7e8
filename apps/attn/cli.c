/* cli.c - the shared parts of the `attn` subcommands: option parsing with
 * --help, usage errors (exit 2) and failures (exit 1) with clear messages. */
#include "cli.h"

#include "core/fileio.h"
#include <attn/safetensors.h>

#include <errno.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *cli_prog = "attn";

int cli_usage_error(const char *cmd, const char *fmt, const char *arg)
{
    fprintf(stderr, "%s %s: ", cli_prog, cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry '%s %s --help'.\n", cli_prog, cmd);
    return 2;
}

int cli_fail(const char *cmd, attn_status st)
{
    fprintf(stderr, "%s %s: %s (%s)\n", cli_prog, cmd, attn_last_error(), attn_status_name(st));
    return 1;
}

/* ---- option parsing ---------------------------------------------------------------- */


static int parse_number(const char *cmd, const opt *o, const char *val)
{
    char *end = NULL;
    errno = 0;
    double x = strtod(val, &end);
    if (end == val || *end != '\0' || errno != 0 || !isfinite(x))
        return cli_usage_error(cmd, "'%s' needs a number", o->name);
    if (x < o->lo || x > o->hi) {
        fprintf(stderr, "%s %s: %s must be in [%g, %g], not %s\n", cli_prog, cmd, o->name, o->lo, o->hi, val);
        return 2;
    }
    if (o->kind == OPT_INT) {
        if (x != floor(x)) return cli_usage_error(cmd, "'%s' needs a whole number", o->name);
        *(int64_t *)o->dst = (int64_t)x;
    } else {
        *(double *)o->dst = x;
    }
    return 0;
}

static void print_help(const char *cmd, const char *synopsis, const opt *opts, int n)
{
    printf("usage: %s %s %s\n\n", cli_prog, cmd, synopsis);
    for (int i = 0; i < n; i++) {
        const char *arg = opts[i].kind == OPT_FLAG ? "" : opts[i].kind == OPT_STR ? " S" : " N";
        printf("  %s%-*s %s\n", opts[i].name, (int)(22 - strlen(opts[i].name)), arg, opts[i].help);
    }
    printf("  --help                 this text\n");
}

/* Parses argv into opts; positional arguments are collected in pos.
 * Returns -1 after --help, 0 on success, 2 on a usage error. */
int cli_parse(const char *cmd, const char *synopsis, int argc, char **argv, const opt *opts,
                 int n, char **pos, int *n_pos, int max_pos)
{
    *n_pos = 0;
    for (int a = 0; a < argc; a++) {
        const char *s = argv[a];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            print_help(cmd, synopsis, opts, n);
            return -1;
        }
        int k = 0;
        while (k < n && strcmp(opts[k].name, s) != 0) k++;
        /* a listed short option ("-n") is an option; other words are positional */
        int positional = k == n && (strncmp(s, "--", 2) != 0 || s[2] == '\0');
        if (strcmp(s, "--") == 0) {
            if (++a == argc) break;
            s = argv[a];
        }
        if (positional) {
            if (*n_pos == max_pos) return cli_usage_error(cmd, "unexpected argument '%s'", s);
            pos[(*n_pos)++] = (char *)s;
            continue;
        }
        if (k == n) return cli_usage_error(cmd, "unknown option '%s'", s);
        if (opts[k].kind == OPT_FLAG) {
            *(int *)opts[k].dst = 1;
            continue;
        }
        if (a + 1 == argc) return cli_usage_error(cmd, "'%s' needs a value", s);
        const char *val = argv[++a];
        if (opts[k].kind == OPT_STR) {
            *(const char **)opts[k].dst = val;
        } else {
            int rc = parse_number(cmd, &opts[k], val);
            if (rc) return rc;
        }
    }
    return 0;
}

int cli_pick(const char *cmd, const char *opt_name, const char *val, const char *const *names,
                int n, int *out)
{
    for (int i = 0; i < n; i++)
        if (names[i] && strcmp(names[i], val) == 0) {
            *out = i;
            return 0;
        }
    fprintf(stderr, "%s %s: %s '%s' is not one of:", cli_prog, cmd, opt_name, val);
    for (int i = 0; i < n; i++)
        if (names[i]) fprintf(stderr, " %s", names[i]);
    fprintf(stderr, "\n");
    return 2;
}

attn_ctx *cli_make_ctx(const char *cmd, int64_t threads)
{
    attn_ctx *ctx = NULL;
    attn_status st = attn_ctx_create((int)threads, &ctx);
    if (st != ATTN_OK) {
        cli_fail(cmd, st);
        return NULL;
    }
    return ctx;
}

/* Creates dir (at most ATTN__PATH_MAX - 1 bytes) and the directories
 * leading to it; 0, or 1 after a message. */
static int make_dirs(const char *dir)
{
    char buf[ATTN__PATH_MAX];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/' && p[-1] != '/') {
            *p = '\0';
            mkdir(buf, 0777);
            *p = '/';
        }
    struct stat sb;
    const char *why = NULL;
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        why = strerror(errno);
    else if (stat(buf, &sb) != 0)
        why = strerror(errno);
    else if (!S_ISDIR(sb.st_mode))
        why = "it exists and is not a directory";
    else if (access(buf, W_OK) != 0)
        why = strerror(errno);
    if (why) {
        fprintf(stderr, "%s: cannot write to directory '%s': %s\n", cli_prog, buf, why);
        return 1;
    }
    return 0;
}

/* The first match of pattern (a glob) for which ok holds, into out [cap]. */
static int first_match(const char *pattern, int (*ok)(const char *path), char *out, size_t cap)
{
    glob_t g;
    int found = 0;
    if (glob(pattern, 0, NULL, &g) != 0) return 0;
    for (size_t i = 0; i < g.gl_pathc && !found; i++)
        if (strlen(g.gl_pathv[i]) < cap && ok(g.gl_pathv[i])) {
            snprintf(out, cap, "%s", g.gl_pathv[i]);
            found = 1;
        }
    globfree(&g);
    return found;
}

static int find_in_venvs(const char *venv_glob, int (*ok)(const char *path), char *out, size_t cap)
{
    char pat[4096 + 256], exe[4096];
    snprintf(pat, sizeof pat, ".venv/%s", venv_glob);
    if (first_match(pat, ok, out, cap)) return 1;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    char *slash = n > 0 ? (exe[n] = '\0', strrchr(exe, '/')) : NULL;
    if (slash == NULL) return 0;
    *slash = '\0';
    snprintf(pat, sizeof pat, "%s/../.venv/%s", exe, venv_glob);
    return first_match(pat, ok, out, cap);
}

int cli_locate_model(const char *cmd, const char *given, const char *env_var, const char *venv_glob,
                     int (*ok)(const char *path), char *out, size_t cap)
{
    const char *env = getenv(env_var);
    const char *path = given ? given : env && *env ? env : NULL;
    if (path == NULL) return find_in_venvs(venv_glob, ok, out, cap) ? 0 : -1;
    if (strlen(path) >= cap) return cli_usage_error(cmd, "%s", "the model path is too long");
    snprintf(out, cap, "%s", path);
    return 0;
}

int cli_ensure_dir(const char *cmd, const char *opt_name, const char *dir)
{
    attn_status st = attn__path_check(opt_name, "the path", dir);
    if (st != ATTN_OK) return cli_fail(cmd, st);
    return make_dirs(dir);
}

int cli_prepare_output(const char *cmd, const char *opt_name, const char *path)
{
    attn_status st = attn__path_check(opt_name, "the path", path);
    if (st != ATTN_OK) return cli_fail(cmd, st);
    const char *slash = strrchr(path, '/');
    if (slash && slash != path) {
        char dir[ATTN__PATH_MAX];
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
        if (make_dirs(dir)) return 1;
    }
    st = attn__output_target(opt_name, path, NULL, NULL);
    return st == ATTN_OK ? 0 : cli_fail(cmd, st);
}

int cli_is_rnn_checkpoint(const char *path)
{
    attn_safetensors *f = NULL;
    if (!path || attn_safetensors_load(path, &f) != ATTN_OK) return 0;
    const char *tag = attn_safetensors_metadata(f, "attn.format");
    int rnn = tag && strcmp(tag, "attn-rnn-checkpoint-1") == 0;
    attn_safetensors_free(f);
    return rnn;
}
