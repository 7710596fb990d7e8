/* libs.c - a program built against an installed attn (tests/install/run.sh)
 * that calls each library above the core once and checks the result:
 *   attn_formats  a safetensors image made here, read back as float32
 *   attn_text     a WordPiece vocabulary, one text encoded to known ids
 *   attn_nn       a linear layer (attn's GEMM) against the same product in double
 *   attn_viz      a heatmap written as PNG into the directory argv[1]
 *   attn_explain  an explorer page of one 2 x 2 map, measured and written
 * Prints "libs ok: ..." and exits 0 when every check holds. */
#include <attn/explain.h>
#include <attn/nn.h>
#include <attn/safetensors.h>
#include <attn/text.h>
#include <attn/viz.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

static int failed(const char *what, attn_status st)
{
    fprintf(stderr, "libs: %s: %s (%s)\n", what, attn_status_name(st), attn_last_error());
    return 1;
}

/* A file of one F32 tensor x [2, 2] = {1, 2, 3, 4}: an 8-byte little-endian
 * header length, the JSON header, then the data. */
static int check_formats(void)
{
    static const char header[] = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";
    const float x[4] = {1.0f, 2.0f, 3.0f, 4.0f};
    unsigned char image[8 + sizeof header + sizeof x];
    size_t n_header = sizeof header - 1;
    for (int i = 0; i < 8; i++) image[i] = (unsigned char)(n_header >> (8 * i));
    memcpy(image + 8, header, n_header);
    for (int i = 0; i < 4; i++) { /* little-endian whatever the host */
        uint32_t bits;
        memcpy(&bits, &x[i], 4);
        for (int byte = 0; byte < 4; byte++)
            image[8 + n_header + 4 * (size_t)i + (size_t)byte] = (unsigned char)(bits >> (8 * byte));
    }
    attn_safetensors *f = NULL;
    attn_status st = attn_safetensors_load_memory(image, 8 + n_header + sizeof x, &f);
    if (st != ATTN_OK) return failed("attn_safetensors_load_memory", st);
    const int64_t shape[2] = {2, 2};
    float back[4] = {0};
    st = attn_safetensors_read_f32(f, "x", 2, shape, back);
    attn_safetensors_free(f);
    if (st != ATTN_OK) return failed("attn_safetensors_read_f32", st);
    if (memcmp(back, x, sizeof x) != 0) {
        fprintf(stderr, "libs: safetensors read back %g %g %g %g, not 1 2 3 4\n", back[0], back[1],
                back[2], back[3]);
        return 1;
    }
    return 0;
}

/* "Hello worlds" -> [CLS] hello world ##s [SEP] (lowercased, split into pieces). */
static int check_text(void)
{
    static const char vocab[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\n##s\n";
    attn_wordpiece *t = NULL;
    attn_status st = attn_wordpiece_load_memory(vocab, sizeof vocab - 1, &t);
    if (st != ATTN_OK) return failed("attn_wordpiece_load_memory", st);
    int32_t ids[8];
    int64_t n = 0;
    st = attn_wordpiece_encode(t, "Hello worlds", 8, ids, 8, &n, NULL);
    attn_wordpiece_free(t);
    if (st != ATTN_OK) return failed("attn_wordpiece_encode", st);
    const int32_t want[5] = {2, 4, 5, 6, 3};
    if (n != 5 || memcmp(ids, want, sizeof want) != 0) {
        fprintf(stderr, "libs: \"Hello worlds\" encoded to %lld ids, not [2 4 5 6 3]\n", (long long)n);
        return 1;
    }
    return 0;
}

/* y [2, 3] = x [2, 4] w^T + b, w [3, 4]. */
static int check_nn(void)
{
    const float x[2][4] = {{1, -2, 0.5f, 3}, {0.25f, 1, -1, 2}};
    const float w[3][4] = {{0.5f, 1, -1, 2}, {-0.25f, 0, 3, 1}, {1, 1, 1, 1}};
    const float b[3] = {0.1f, -0.2f, 0.3f};
    float y[2][3];
    attn_ctx *ctx = NULL;
    attn_status st = attn_ctx_create(2, &ctx);
    if (st != ATTN_OK) return failed("attn_ctx_create", st);
    st = attn_nn_linear_forward(ctx, &x[0][0], 2, 4, &w[0][0], b, 3, &y[0][0]);
    attn_ctx_free(ctx);
    if (st != ATTN_OK) return failed("attn_nn_linear_forward", st);
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 3; c++) {
            double want = b[c];
            for (int i = 0; i < 4; i++) want += (double)x[r][i] * w[c][i];
            if (fabs(want - y[r][c]) > 1e-5) {
                fprintf(stderr, "libs: linear y[%d][%d] = %g, want %g\n", r, c, y[r][c], want);
                return 1;
            }
        }
    return 0;
}

/* A 2 x 3 map written to dir/map.png: the file must start with PNG's signature. */
static int check_viz(const char *dir)
{
    const float w[6] = {0.1f, 0.5f, 0.9f, 1.0f, 0.0f, 0.3f};
    attn_viz_heatmap h = {0};
    h.w = w;
    h.rows = 2;
    h.cols = 3;
    h.row_stride = 3;
    char path[4096];
    snprintf(path, sizeof path, "%s/map.png", dir);
    attn_status st = attn_viz_heatmap_png(path, &h);
    if (st != ATTN_OK) return failed("attn_viz_heatmap_png", st);
    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char head[8] = {0};
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(head, 1, sizeof head, f) : 0;
    if (f) fclose(f);
    if (got != sizeof head || memcmp(head, signature, sizeof head) != 0) {
        fprintf(stderr, "libs: %s is not a PNG file\n", path);
        return 1;
    }
    return 0;
}

/* A page of one map of two tokens: its size, and a buffer of that size
 * holding an HTML document. */
static int check_explain(void)
{
    const char *const tokens[2] = {"a", "b"};
    const float w[4] = {0.25f, 0.75f, 1.0f, 0.0f};
    attn_explain *e = NULL;
    int64_t seq = 0, g = 0;
    attn_status st = attn_explain_create("libs", &e);
    if (st == ATTN_OK) st = attn_explain_add_tokens(e, "tokens", tokens, 2, &seq);
    if (st == ATTN_OK) st = attn_explain_add_group(e, "map", seq, seq, 1, 1, &g);
    if (st == ATTN_OK) st = attn_explain_set_weights(e, g, 0, 0, w);
    size_t n = 0;
    if (st == ATTN_OK) st = attn_explain_html(e, NULL, 0, &n);
    static char page[1 << 20];
    if (st == ATTN_OK && n >= sizeof page) st = ATTN_BAD_DIM;
    if (st == ATTN_OK) st = attn_explain_html(e, page, sizeof page, &n);
    attn_explain_free(e);
    if (st != ATTN_OK) return failed("attn_explain_html", st);
    if (strncmp(page, "<!DOCTYPE html>", 15) != 0 || strlen(page) != n) {
        fprintf(stderr, "libs: the explorer page does not start as an HTML document\n");
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: libs DIR (where the PNG map is written)\n");
        return 2;
    }
    if (check_formats() || check_text() || check_nn() || check_viz(argv[1]) || check_explain())
        return 1;
    printf("libs ok: attn_formats attn_text attn_nn attn_viz attn_explain\n");
    return 0;
}
