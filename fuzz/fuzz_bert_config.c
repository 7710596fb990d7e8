/* fuzz_bert_config.c - libFuzzer target for the BERT config.json reader
 * (src/models/bert/config.c): any input is accepted with every field in its documented
 * range, or rejected with ATTN_BAD_FILE (ATTN_NO_MEMORY) and a message. */
#include <attn/bert.h>

#include <stdlib.h>

static void check(int ok)
{
    if (!ok) abort();
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    attn_bert_config c;
    attn_status st = attn_bert_config_from_json((const char *)data, size, &c);
    if (st != ATTN_OK) {
        check((st == ATTN_BAD_FILE || st == ATTN_NO_MEMORY) && attn_last_error()[0] != '\0');
        return 0;
    }
    check(c.vocab_size >= 1 && c.hidden_size >= 1 && c.n_layers >= 1 && c.n_heads >= 1);
    check(c.hidden_size % c.n_heads == 0);
    return 0;
}
