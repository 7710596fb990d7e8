/* example.c - the smallest complete use of attn: causal self-attention over
 * a built-in 5-token example, printing the output and the attention weights
 * recomputed from the LSE. Run by the README's main command. */
#include <attn/attn.h>

#include <stdio.h>

enum { S = 5, H = 2, D = 4 };

static int check(attn_status st, const char *what)
{
    if (st == ATTN_OK) return 0;
    fprintf(stderr, "%s: %s (%s)\n", what, attn_status_string(st), attn_last_error());
    return 1;
}

int main(void)
{
    static const char *tokens[S] = {"the", "cat", "sat", "on", "mats"};
    float q[S][H][D], k[S][H][D], v[S][H][D], o[S][H][D], lse[H][S], w[H][S][S];
    for (int s = 0; s < S; s++) /* deterministic, distinct rows */
        for (int h = 0; h < H; h++)
            for (int d = 0; d < D; d++) {
                q[s][h][d] = (float)((s + 1) * (d + 1 + h) % 7) / 7.0f - 0.4f;
                k[s][h][d] = (float)((s + 2) * (d + 3 - h) % 5) / 5.0f - 0.3f;
                v[s][h][d] = (float)(s * D + d) / (S * D);
            }
    attn_ctx *ctx = NULL;
    if (check(attn_ctx_create(0, &ctx), "attn_ctx_create")) return 1;
    attn_tensor tq = attn_tensor_make(q, ATTN_DTYPE_F32, 1, S, H, D);
    attn_tensor tk = attn_tensor_make(k, ATTN_DTYPE_F32, 1, S, H, D);
    attn_tensor tv = attn_tensor_make(v, ATTN_DTYPE_F32, 1, S, H, D);
    attn_tensor to = attn_tensor_make(o, ATTN_DTYPE_F32, 1, S, H, D);
    attn_tensor tl = attn_tensor_make(lse, ATTN_DTYPE_F32, 1, H, S, 1);
    attn_tensor tw = attn_tensor_make(w, ATTN_DTYPE_F32, 1, H, S, S);
    int n_threads = attn_ctx_threads(ctx);
    attn_sdpa_params p = attn_sdpa_params_default();
    p.causal = 1;
    int bad = check(attn_sdpa_forward(ctx, &tq, &tk, &tv, &p, &to, &tl), "attn_sdpa_forward") ||
              check(attn_sdpa_weights(ctx, &tq, &tk, &tl, &p, NULL, 0, NULL, 0, 0, &tw),
                    "attn_sdpa_weights");
    attn_ctx_free(ctx);
    if (bad) return 1;

    printf("causal self-attention, %d tokens, %d heads, head dim %d, %d threads\n\n", S, H, D,
           n_threads);
    for (int h = 0; h < H; h++) {
        printf("head %d: attention weights (row = query, column = key)\n      ", h);
        for (int j = 0; j < S; j++) printf("%7s", tokens[j]);
        printf("\n");
        for (int i = 0; i < S; i++) {
            printf("%6s", tokens[i]);
            for (int j = 0; j < S; j++) printf("%7.3f", w[h][i][j]);
            printf("\n");
        }
        printf("head %d: output O (row = query)\n", h);
        for (int i = 0; i < S; i++) {
            printf("%6s", tokens[i]);
            for (int d = 0; d < D; d++) printf("%8.4f", o[i][h][d]);
            printf("   lse %.4f\n", lse[h][i]);
        }
        printf("\n");
    }
    return 0;
}
