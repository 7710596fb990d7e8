/* attn.c - the `attn` command-line program: one table of subcommands, each
 * in apps/attn/cmd_*.c. The only code of the project that prints or exits.
 * Exit status: 0 success, 1 failure, 2 bad usage.
 *
 *   attn train [options]        attn translate --model F [options] TEXT...
 *   attn eval --model F         attn info [--model F]
 *   attn compare [options]      attn embed / similarity / bert-map [options]
 *   attn chat [options]         attn generate [options] PROMPT
 *   attn tokenize [--model F] TEXT
 *   attn explain --out F.html [options] TEXT [TEXT2]
 *   mpirun -np P attn ring --seq N --heads H --dim D [--causal] [--check]
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static void main_help(FILE *out)
{
    fprintf(out, "usage: %s COMMAND [options]\n\n"
           "commands:\n"
           "  train       train the encoder-decoder (or decoder-only) model on the built-in dates task\n"
           "  translate   translate dates with a trained model, drawing cross-attention maps\n"
           "  eval        held-out exact match of a trained model\n"
           "  info        the config and size of a checkpoint; without --model, the CPU and kernels\n"
           "  compare     train the transformer and the GRU + Bahdanau model side by side\n"
           "  embed       sentence embeddings with all-MiniLM-L6-v2\n"
           "  similarity  cosine similarity of sentences, or a query ranked against a file\n"
           "  bert-map    the attention map of any layer and head of the BERT model, as a PNG\n"
           "  chat        a conversation with SmolLM2-135M-Instruct (one line per turn on stdin)\n"
           "  generate    one reply of the chat model to a prompt\n"
           "  tokenize    the token ids of a text under the chat model's tokenizer\n"
           "  explain     the attention explorer: one HTML page with head, model and matrix views,\n"
           "              rollout and relevance (MiniLM, the date translator, the GRU or the chat model)\n"
#if ATTN_CLI_RING
           "  ring        ring attention over MPI ranks (run under mpirun)\n"
#endif
           "\n"
           "'%s COMMAND --help' describes each.\n", cli_prog, cli_prog);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        main_help(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        main_help(stdout);
        return 0;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"train", cmd_train},         {"translate", cmd_translate},
                {"eval", cmd_eval},           {"info", cmd_info},
                {"compare", cmd_compare},     {"embed", cmd_embed},
                {"similarity", cmd_similarity}, {"bert-map", cmd_bert_map},
                {"chat", cmd_chat},           {"generate", cmd_generate},
                {"tokenize", cmd_tokenize},   {"explain", cmd_explain},
#if ATTN_CLI_RING
                {"ring", cmd_ring},
#endif
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(cmd, cmds[i].name) == 0) return cmds[i].fn(argc - 2, argv + 2);
    fprintf(stderr, "%s: unknown command '%s'\n", cli_prog, cmd);
    main_help(stderr);
    return 2;
}
