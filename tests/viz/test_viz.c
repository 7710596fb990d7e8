/* test_viz.c - attention maps (attn/viz.h): the PNG read back with libpng
 * equals the rendered image; cell colours rise with the value; labels,
 * space labels, UTF-8 and truncation; cell sizes; argument checks; file
 * errors leave nothing behind; out-of-memory injection; the font table. */
#include "nn_test.h"

#include "viz/font.h"

#include <attn/viz.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct viz_img {
    uint8_t *px; /* [h][w][3] */
    int w, h;
} viz_img;

static attn_viz_heatmap viz_map(const float *w, int64_t rows, int64_t cols)
{
    attn_viz_heatmap h;
    memset(&h, 0, sizeof h);
    h.w = w;
    h.rows = rows;
    h.cols = cols;
    h.row_stride = cols;
    return h;
}

static bool viz_render(const attn_viz_heatmap *h, viz_img *im)
{
    im->px = NULL;
    attn_status s = attn_viz_heatmap_rgb(h, &im->px, &im->w, &im->h);
    T_EQ_STATUS(s, ATTN_OK);
    return s == ATTN_OK;
}

static const uint8_t *viz_px(const viz_img *im, int x, int y)
{
    return im->px + ((size_t)y * (size_t)im->w + (size_t)x) * 3;
}

/* Colour-map pixels are strongly coloured; text, grey and white are not. */
static bool viz_chromatic(const uint8_t *p)
{
    int lo = p[0] < p[1] ? p[0] : p[1], hi = p[0] > p[1] ? p[0] : p[1];
    lo = p[2] < lo ? p[2] : lo;
    hi = p[2] > hi ? p[2] : hi;
    return hi - lo > 40;
}

static bool viz_dark(const uint8_t *p) { return p[0] < 100 && p[1] < 100 && p[2] < 100; }

static long viz_luminance(const uint8_t *p) { return 2126L * p[0] + 7152L * p[1] + 722L * p[2]; }

/* The grid's top-left corner: the leftmost coloured column (the colour bar
 * is right of the grid), then the topmost coloured pixel in it. */
static void viz_grid_origin(const viz_img *im, int *gx, int *gy)
{
    *gx = im->w;
    *gy = -1;
    for (int y = 0; y < im->h; y++)
        for (int x = 0; x < *gx; x++)
            if (viz_chromatic(viz_px(im, x, y))) *gx = x;
    for (int y = 0; y < im->h && *gx < im->w && *gy < 0; y++)
        if (viz_chromatic(viz_px(im, *gx, y))) *gy = y;
}

/* Dark pixels in [x0, x1) x [y0, y1). */
static int viz_dark_in(const viz_img *im, int x0, int y0, int x1, int y1)
{
    int n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) n += viz_dark(viz_px(im, x, y));
    return n;
}

/* Length of the run of coloured pixels from (x, y), along x or y. */
static int viz_run(const viz_img *im, int x, int y, bool along_x)
{
    int n = 0;
    while (x < im->w && y < im->h && viz_chromatic(viz_px(im, x, y))) {
        n++;
        if (along_x)
            x++;
        else
            y++;
    }
    return n;
}

static bool viz_same(const viz_img *a, const viz_img *b)
{
    return a->w == b->w && a->h == b->h &&
           memcmp(a->px, b->px, (size_t)a->w * (size_t)a->h * 3) == 0;
}

static bool viz_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Reads an 8-bit RGB PNG with libpng's reading API; px from malloc. */
static bool viz_read_png(const char *path, viz_img *im)
{
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    im->px = NULL;
    if (!png_image_begin_read_from_file(&pi, path)) return false;
    T_EQ_INT(pi.format, PNG_FORMAT_RGB);
    pi.format = PNG_FORMAT_RGB;
    im->w = (int)pi.width;
    im->h = (int)pi.height;
    im->px = (uint8_t *)malloc(PNG_IMAGE_SIZE(pi));
    if (!im->px || !png_image_finish_read(&pi, NULL, im->px, 0, NULL)) {
        png_image_free(&pi);
        return false;
    }
    return true;
}

T_TEST(viz_png_equals_rgb)
{
    const float w[3 * 5] = {0.1f, 0.9f, 0.0f, 0.5f, 0.2f,  0.3f, 0.3f, 0.3f,
                            0.05f, 0.05f, 1.0f, 0.0f, NAN, 0.25f, 0.75f};
    const char *rows[3] = {"out", " ", "x"}, *cols[5] = {"s", "o", "u", "r", "ce"};
    attn_viz_heatmap h = viz_map(w, 3, 5);
    h.row_labels = rows;
    h.col_labels = cols;
    h.title = "round trip";
    h.row_axis = "output";
    h.col_axis = "source";
    char path[512], tmp[520];
    snprintf(path, sizeof path, "%s/map.png", t_tmpdir());
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    for (int normalize = 0; normalize <= 1; normalize++) { /* the 2nd replaces the 1st */
        viz_img a, b;
        h.normalize = normalize;
        if (!viz_render(&h, &a)) return;
        T_EQ_STATUS(attn_viz_heatmap_png(path, &h), ATTN_OK);
        T_CHECK(!viz_exists(tmp));
        T_CHECK(viz_read_png(path, &b));
        T_EQ_INT(b.w, a.w);
        T_EQ_INT(b.h, a.h);
        T_CHECK(b.px && viz_same(&a, &b));
        attn_release(a.px);
        free(b.px);
    }
}

/* Cell colour at the centre of cell (r, c) of a map drawn with cell side s. */
static const uint8_t *viz_cell(const viz_img *im, int r, int c, int s)
{
    int gx, gy;
    viz_grid_origin(im, &gx, &gy);
    return viz_px(im, gx + c * s + s / 2, gy + r * s + s / 2);
}

T_TEST(viz_colours_rise_with_value)
{
    float ramp[11], half[11];
    for (int i = 0; i < 11; i++) {
        ramp[i] = (float)i / 10.0f;
        half[i] = ramp[i] * 0.5f;
    }
    attn_viz_heatmap h = viz_map(ramp, 1, 11);
    h.cell = 10;
    viz_img a, b;
    if (!viz_render(&h, &a)) return;
    for (int i = 1; i < 11; i++)
        T_LE(viz_luminance(viz_cell(&a, 0, i - 1, 10)) + 1, viz_luminance(viz_cell(&a, 0, i, 10)));
    /* Scaled by the max, half the ramp gives the same cells. */
    h.w = half;
    h.normalize = 1;
    if (!viz_render(&h, &b)) return;
    for (int i = 0; i < 11; i++)
        T_CHECK(memcmp(viz_cell(&a, 0, i, 10), viz_cell(&b, 0, i, 10), 3) == 0);
    attn_release(a.px);
    attn_release(b.px);

    /* A fine ramp, 10 steps between neighbouring anchors of the colour map:
     * the luminance never falls. */
    float fine[91];
    for (int i = 0; i < 91; i++) fine[i] = (float)i / 90.0f;
    h = viz_map(fine, 1, 91);
    h.cell = 4;
    if (!viz_render(&h, &a)) return;
    for (int i = 1; i < 91; i++)
        T_LE(viz_luminance(viz_cell(&a, 0, i - 1, 4)), viz_luminance(viz_cell(&a, 0, i, 4)));
    attn_release(a.px);

    /* Out of [0, 1] clamps; non-finite values are one neutral grey. */
    const float odd[7] = {-1.0f, 0.0f, 1.0f, 2.0f, NAN, INFINITY, -INFINITY};
    h = viz_map(odd, 1, 7);
    h.cell = 10;
    if (!viz_render(&h, &a)) return;
    T_CHECK(memcmp(viz_cell(&a, 0, 0, 10), viz_cell(&a, 0, 1, 10), 3) == 0);
    T_CHECK(memcmp(viz_cell(&a, 0, 2, 10), viz_cell(&a, 0, 3, 10), 3) == 0);
    T_CHECK(memcmp(viz_cell(&a, 0, 1, 10), viz_cell(&a, 0, 2, 10), 3) != 0);
    for (int i = 4; i < 7; i++) {
        const uint8_t *p = viz_cell(&a, 0, i, 10);
        T_CHECK(p[0] == p[1] && p[1] == p[2] && p[0] > 100 && p[0] < 230);
        T_CHECK(memcmp(p, viz_cell(&a, 0, 4, 10), 3) == 0);
    }
    attn_release(a.px);
}

T_TEST(viz_cell_sizes)
{
    static float w[100 * 200];
    for (int i = 0; i < 100 * 200; i++) w[i] = 0.5f;
    const char *labels[3] = {"a", "b", "c"};
    struct {
        int64_t rows, cols;
        int cell, labelled, want;
    } cases[] = {
        {2, 3, 7, 0, 7},     /* explicit */
        {2, 3, 0, 0, 20},    /* auto, unlabelled, small: capped at 20 */
        {100, 200, 0, 0, 5}, /* auto, unlabelled: 1024 / 200 */
        {1, 3, 0, 1, 20},    /* auto, labelled: 2x glyph height + 2 */
        {3, 1, 13, 1, 13},   /* explicit, labelled (1x labels) */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        attn_viz_heatmap h = viz_map(w, cases[i].rows, cases[i].cols);
        h.cell = cases[i].cell;
        if (cases[i].labelled) {
            h.row_labels = cases[i].rows == 3 ? labels : NULL;
            h.col_labels = cases[i].cols == 3 ? labels : NULL;
        }
        viz_img im;
        int gx, gy;
        if (!viz_render(&h, &im)) return;
        viz_grid_origin(&im, &gx, &gy);
        T_EQ_INT(viz_run(&im, gx, gy, true), cases[i].cols * cases[i].want);
        T_EQ_INT(viz_run(&im, gx, gy, false), cases[i].rows * cases[i].want);
        attn_release(im.px);
    }
}

/* Dark pixels left of the grid beside row r (cell 20). */
static int viz_row_label_ink(const viz_img *im, int r)
{
    int gx, gy;
    viz_grid_origin(im, &gx, &gy);
    return viz_dark_in(im, 0, gy + 20 * r, gx, gy + 20 * (r + 1));
}

/* Renders a 2x1 map with row labels {l0, l1}. */
static bool viz_render_rows(const char *l0, const char *l1, viz_img *im)
{
    static const float w[2] = {0.5f, 0.5f};
    const char *labels[2] = {l0, l1};
    attn_viz_heatmap h = viz_map(w, 2, 1);
    h.cell = 20;
    h.row_labels = labels;
    return viz_render(&h, im);
}

T_TEST(viz_labels)
{
    viz_img a, b;
    if (!viz_render_rows("W", "", &a)) return;
    T_LE(1, viz_row_label_ink(&a, 0));
    T_EQ_INT(viz_row_label_ink(&a, 1), 0);
    attn_release(a.px);
    if (!viz_render_rows(" ", "", &a)) return; /* a space label is visible */
    T_LE(1, viz_row_label_ink(&a, 0));
    attn_release(a.px);

    /* Column labels stand above their columns. */
    static const float w2[2] = {0.5f, 0.5f};
    const char *cols[2] = {"W", ""};
    attn_viz_heatmap h = viz_map(w2, 1, 2);
    h.cell = 20;
    h.col_labels = cols;
    int gx, gy;
    if (!viz_render(&h, &a)) return;
    viz_grid_origin(&a, &gx, &gy);
    T_LE(1, viz_dark_in(&a, gx, 0, gx + 20, gy));
    T_EQ_INT(viz_dark_in(&a, gx + 20, 0, gx + 40, gy), 0);
    attn_release(a.px);

    /* One '?' per non-ASCII character and per control byte. */
    if (!viz_render_rows("\xc3\xa9t\xe2\x82\xac", "\t", &a)) return;
    if (!viz_render_rows("?t?", "?", &b)) return;
    T_CHECK(viz_same(&a, &b));
    attn_release(a.px);
    attn_release(b.px);

    /* Longer than ATTN_VIZ_LABEL_MAX: cut, ending in "..". */
    char longer[64], cut[64], exact[64];
    memset(longer, 'M', 40);
    longer[40] = '\0';
    memset(cut, 'M', ATTN_VIZ_LABEL_MAX - 2);
    memcpy(cut + ATTN_VIZ_LABEL_MAX - 2, "..", 3);
    memset(exact, 'M', ATTN_VIZ_LABEL_MAX);
    exact[ATTN_VIZ_LABEL_MAX] = '\0';
    if (!viz_render_rows(longer, "", &a)) return;
    if (!viz_render_rows(cut, "", &b)) return;
    T_CHECK(viz_same(&a, &b));
    attn_release(b.px);
    if (!viz_render_rows(exact, "", &b)) return;
    T_CHECK(!viz_same(&a, &b));
    attn_release(a.px);
    attn_release(b.px);
}

T_TEST(viz_small_cells_thin_labels)
{
    static float w[10 * 10];
    const char *all[10], *some[10];
    for (int i = 0; i < 10; i++) {
        w[i * 10 + i] = 1.0f;
        all[i] = "W";
        some[i] = i % 3 == 0 ? "W" : ""; /* cell 4: k = ceil(11 / 4) = 3 */
    }
    attn_viz_heatmap h = viz_map(w, 10, 10);
    h.cell = 4;
    h.row_labels = h.col_labels = all;
    viz_img a, b;
    if (!viz_render(&h, &a)) return;
    h.row_labels = h.col_labels = some;
    if (!viz_render(&h, &b)) return;
    T_CHECK(viz_same(&a, &b));
    attn_release(a.px);
    attn_release(b.px);
}

T_TEST(viz_title_fits)
{
    static const float w[1] = {0.5f};
    char title[61];
    memset(title, 'M', 60);
    title[60] = '\0';
    attn_viz_heatmap h = viz_map(w, 1, 1);
    h.title = title;
    viz_img im;
    if (!viz_render(&h, &im)) return;
    T_LE(60 * ATTN__FONT_ADVANCE * 2, im.w); /* 2x text */
    T_LE(1, viz_dark_in(&im, 0, 0, im.w, 30));
    T_EQ_INT(viz_dark_in(&im, im.w - 4, 0, im.w, im.h), 0); /* nothing cut */
    attn_release(im.px);
}

T_TEST(viz_argument_errors)
{
    static const float w[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    const char *bad_labels[2] = {"a", NULL};
    attn_viz_heatmap base = viz_map(w, 2, 2);
    struct {
        const char *what;
        attn_viz_heatmap h;
        attn_status want;
    } cases[16];
    int n = 0;
#define VIZ_CASE(text, field, value, status)        \
    cases[n].what = text;                           \
    cases[n].h = base;                              \
    cases[n].h.field = value;                       \
    cases[n++].want = status
    VIZ_CASE("w NULL", w, NULL, ATTN_NULL_ARG);
    VIZ_CASE("rows 0", rows, 0, ATTN_BAD_DIM);
    VIZ_CASE("cols -3", cols, -3, ATTN_BAD_DIM);
    VIZ_CASE("rows > max side", rows, ATTN_VIZ_MAX_SIDE + 1, ATTN_BAD_DIM);
    VIZ_CASE("cols huge", cols, INT64_MAX, ATTN_BAD_DIM);
    VIZ_CASE("stride < cols", row_stride, 1, ATTN_BAD_STRIDE);
    VIZ_CASE("stride negative", row_stride, -2, ATTN_BAD_STRIDE);
    VIZ_CASE("stride overflows", row_stride, INT64_MAX, ATTN_OVERFLOW);
    VIZ_CASE("cell negative", cell, -1, ATTN_BAD_DIM);
    VIZ_CASE("cell > max side", cell, ATTN_VIZ_MAX_SIDE + 1, ATTN_BAD_DIM);
    VIZ_CASE("image too wide", cell, ATTN_VIZ_MAX_SIDE / 2, ATTN_BAD_DIM);
    VIZ_CASE("normalize 2", normalize, 2, ATTN_BAD_PARAM);
    VIZ_CASE("normalize -1", normalize, -1, ATTN_BAD_PARAM);
    VIZ_CASE("row label NULL", row_labels, bad_labels, ATTN_NULL_ARG);
    VIZ_CASE("col label NULL", col_labels, bad_labels, ATTN_NULL_ARG);
#undef VIZ_CASE
    char path[512];
    snprintf(path, sizeof path, "%s/args.png", t_tmpdir());
    for (int i = 0; i < n; i++) {
        uint8_t sentinel, *rgb = &sentinel;
        int width = -7, height = -9;
        if (t_verbose) printf("  %s\n", cases[i].what);
        T_EQ_STATUS(attn_viz_heatmap_rgb(&cases[i].h, &rgb, &width, &height), cases[i].want);
        T_CHECK(rgb == &sentinel && width == -7 && height == -9);
        T_EQ_STATUS(attn_viz_heatmap_png(path, &cases[i].h), cases[i].want);
        T_CHECK(!viz_exists(path));
    }
    /* The image too large although the dims are allowed. */
    static float wide[ATTN_VIZ_MAX_SIDE];
    attn_viz_heatmap big = viz_map(wide, 1, ATTN_VIZ_MAX_SIDE);
    uint8_t *rgb = NULL;
    int width, height;
    T_EQ_STATUS(attn_viz_heatmap_rgb(&big, &rgb, &width, &height), ATTN_BAD_DIM);
    /* Pointers of the calls themselves. */
    T_EQ_STATUS(attn_viz_heatmap_rgb(NULL, &rgb, &width, &height), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_viz_heatmap_rgb(&base, NULL, &width, &height), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_viz_heatmap_rgb(&base, &rgb, NULL, &height), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_viz_heatmap_rgb(&base, &rgb, &width, NULL), ATTN_NULL_ARG);
    T_CHECK(rgb == NULL);
    T_EQ_STATUS(attn_viz_heatmap_png(NULL, &base), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_viz_heatmap_png(path, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(attn_viz_heatmap_png("", &base), ATTN_IO);
    T_CHECK(!viz_exists(path));
    /* A single row needs no stride; 0 is fine. */
    attn_viz_heatmap one = viz_map(w, 1, 4);
    one.row_stride = 0;
    T_EQ_STATUS(attn_viz_heatmap_rgb(&one, &rgb, &width, &height), ATTN_OK);
    attn_release(rgb);
}

T_TEST(viz_png_io_errors)
{
    static const float w[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    attn_viz_heatmap h = viz_map(w, 2, 2);
    char dir[512], path[600], tmp[620];
    /* A directory that does not exist. */
    snprintf(dir, sizeof dir, "%s/no_such_dir", t_tmpdir());
    snprintf(path, sizeof path, "%s/map.png", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    T_EQ_STATUS(attn_viz_heatmap_png(path, &h), ATTN_IO);
    T_CHECK(!viz_exists(path) && !viz_exists(tmp) && !viz_exists(dir));
    /* The target is a directory or a FIFO: refused, left as it is, no temporary. */
    struct stat st;
    for (int fifo = 0; fifo < 2; fifo++) {
        snprintf(path, sizeof path, "%s/%s", t_tmpdir(), fifo ? "a_fifo" : "a_dir");
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        T_EQ_INT(fifo ? mkfifo(path, 0600) : mkdir(path, 0700), 0);
        T_EQ_STATUS(attn_viz_heatmap_png(path, &h), ATTN_IO);
        T_CHECK(strstr(attn_last_error(), "not a regular file") != NULL);
        T_CHECK(!viz_exists(tmp));
        T_CHECK(lstat(path, &st) == 0 && (fifo ? S_ISFIFO(st.st_mode) : S_ISDIR(st.st_mode)));
    }
    /* A symbolic link: the PNG replaces the file it names; the link stays. */
    char real[600];
    snprintf(real, sizeof real, "%s/real.png", t_tmpdir());
    snprintf(path, sizeof path, "%s/link.png", t_tmpdir());
    FILE *f = fopen(real, "wb");
    T_CHECK(f != NULL);
    if (f) fclose(f);
    T_EQ_INT(symlink("real.png", path), 0);
    T_EQ_STATUS(attn_viz_heatmap_png(path, &h), ATTN_OK);
    T_CHECK(lstat(path, &st) == 0 && S_ISLNK(st.st_mode));
    viz_img im = {NULL, 0, 0};
    T_CHECK(viz_read_png(real, &im) && im.w > 0 && im.h > 0);
    free(im.px);
}

/* An allocator that fails the viz_countdown-th allocation and counts live
 * blocks. */
static long viz_countdown, viz_live;
static bool viz_failed;

static void *viz_alloc(size_t bytes, void *user)
{
    (void)user;
    if (viz_countdown-- == 0) {
        viz_failed = true;
        return NULL;
    }
    void *p = malloc(bytes);
    if (p) viz_live++;
    return p;
}

static void viz_free(void *p, void *user)
{
    (void)user;
    viz_live--;
    free(p);
}

T_TEST(viz_out_of_memory)
{
    static const float w[6] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
    const char *labels[3] = {"a", "b", "c"};
    attn_viz_heatmap h = viz_map(w, 2, 3);
    h.col_labels = labels;
    h.title = "oom";
    char path[512], tmp[520];
    snprintf(path, sizeof path, "%s/oom.png", t_tmpdir());
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int failures = 0;
    for (long k = 0; k < 1000; k++) {
        viz_countdown = k;
        viz_live = 0;
        viz_failed = false;
        attn_set_allocator(viz_alloc, viz_free, NULL);
        attn_status s = attn_viz_heatmap_png(path, &h);
        attn_set_allocator(NULL, NULL, NULL);
        T_EQ_INT(viz_live, 0);
        if (!viz_failed) {
            T_EQ_STATUS(s, ATTN_OK);
            break;
        }
        if (s == ATTN_OK) continue; /* libpng may do without some memory */
        failures++;
        T_EQ_STATUS(s, ATTN_NO_MEMORY);
        T_CHECK(!viz_exists(path) && !viz_exists(tmp));
    }
    /* The image, the file name, libpng's structs and zlib's buffers. */
    T_LE(5, failures);
    T_CHECK(viz_exists(path));
}

T_TEST(viz_font_table)
{
    const uint8_t *space = attn__font_glyph(' ');
    for (int r = 0; r < ATTN__FONT_H; r++) T_EQ_INT(space[r], 0);
    for (int c = 33; c <= ATTN__FONT_MIDDOT; c++) {
        const uint8_t *g = attn__font_glyph(c);
        int set = 0;
        for (int r = 0; r < ATTN__FONT_H; r++) {
            set += g[r] != 0;
            T_CHECK(g[r] < 1u << ATTN__FONT_W);
        }
        t_checks++;
        if (set == 0) t_fail(__FILE__, __LINE__, "glyph %d is blank", c);
        for (int d = 32; d < c; d++) {
            t_checks++;
            if (memcmp(g, attn__font_glyph(d), ATTN__FONT_H) == 0)
                t_fail(__FILE__, __LINE__, "glyphs %d and %d are identical", d, c);
        }
    }
    T_CHECK(attn__font_glyph(200) == attn__font_glyph('?'));
    T_CHECK(attn__font_glyph(31) == attn__font_glyph('?'));
}
