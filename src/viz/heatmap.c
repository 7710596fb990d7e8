/* heatmap.c - attention maps as images (attn/viz.h): argument checks, the
 * layout of grid, labels, captions and colour bar, drawing into an RGB
 * buffer with the bitmap font of font.c, and the PNG file written through
 * libpng (errors caught with libpng's setjmp protocol, memory through
 * attn_alloc, the file replaced atomically as core/fileio.h does it). */
#include <attn/viz.h>

#include "core/fileio.h"
#include "viz/font.h"

#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

enum {
    MARGIN = 12,    /* blank border of the image */
    GAP = 10,       /* between title, captions and the label blocks */
    LABEL_GAP = 5,  /* between labels and the grid */
    BAR_GAP = 16,   /* between grid and colour bar */
    BAR_W = 16,     /* colour bar width */
    BAR_MIN_H = 96, /* colour bar height when the grid is lower */
    TICK = 4,       /* colour bar tick length */
    TEXT_SCALE = 2, /* pixel scale of title, captions and bar labels */
    AUTO_CELL = TEXT_SCALE * ATTN__FONT_H + 2,
    AUTO_CELL_SMALL = ATTN__FONT_H + 2,
    AUTO_LABELLED_MAX = 128, /* rows/cols up to which labels get AUTO_CELL */
    AUTO_GRID = 1024         /* grid side aimed at by unlabelled auto cells */
};

typedef struct rgb8 {
    uint8_t r, g, b;
} rgb8;

static const rgb8 INK = {32, 32, 32};      /* labels, title, bar labels */
static const rgb8 CAPTION = {96, 96, 96};  /* axis captions */
static const rgb8 NONFINITE = {150, 150, 150};

/* Viridis sampled at k/9, k = 0..9: luminance rises monotonically. */
static const rgb8 RAMP[10] = {{68, 1, 84},    {72, 40, 120},  {62, 74, 137},
                              {49, 104, 142}, {38, 130, 142}, {31, 158, 137},
                              {53, 183, 121}, {109, 205, 89}, {180, 222, 44},
                              {253, 231, 37}};

/* t in [0, 1] (clamped) -> ramp colour; non-finite t -> grey. */
static rgb8 ramp_colour(double t)
{
    if (!isfinite(t)) return NONFINITE;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double pos = t * 9.0;
    int i = pos >= 9.0 ? 8 : (int)pos;
    double f = pos - i;
    rgb8 a = RAMP[i], b = RAMP[i + 1], c;
    c.r = (uint8_t)lround(a.r + f * (b.r - a.r));
    c.g = (uint8_t)lround(a.g + f * (b.g - a.g));
    c.b = (uint8_t)lround(a.b + f * (b.b - a.b));
    return c;
}

/* ---- text ----------------------------------------------------------------- */

/* A string as font codes, after the rules of attn/viz.h. */
typedef struct text_run {
    int n;
    uint8_t code[ATTN_VIZ_TITLE_MAX];
} text_run;

/* s (UTF-8, or NULL = empty) -> at most max codes; labels (dot_spaces)
 * made only of spaces become middle dots. */
static void text_prepare(const char *s, int max, int dot_spaces, text_run *t)
{
    int n = 0, long_text = 0, prev_high = 0, all_spaces = 1;
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        int c = *p;
        int continuation = c >= 0x80 && c < 0xC0 && prev_high;
        prev_high = c >= 0x80;
        if (continuation) continue;
        if (c < 32 || c > 126) c = '?';
        if (c != ' ') all_spaces = 0;
        if (n == max) {
            long_text = 1;
            break;
        }
        t->code[n++] = (uint8_t)c;
    }
    if (long_text) t->code[max - 2] = t->code[max - 1] = '.';
    if (dot_spaces && all_spaces)
        for (int i = 0; i < n; i++) t->code[i] = ATTN__FONT_MIDDOT;
    t->n = n;
}

/* Length in pixels along the reading direction at scale s. */
static int text_len(const text_run *t, int s)
{
    return t->n > 0 ? (t->n * ATTN__FONT_ADVANCE - 1) * s : 0;
}

/* The rendered image: px [h][w][3]. */
typedef struct image {
    uint8_t *px;
    int w, h;
} image;

/* Fills the rectangle [x, x+w) x [y, y+h), clipped to the image. */
static void fill(image *im, int x, int y, int w, int h, rgb8 c)
{
    int x1 = x + w > im->w ? im->w : x + w, y1 = y + h > im->h ? im->h : y + h;
    for (int yy = y < 0 ? 0 : y; yy < y1; yy++) {
        for (int xx = x < 0 ? 0 : x; xx < x1; xx++) {
            uint8_t *p = im->px + ((size_t)yy * (size_t)im->w + (size_t)xx) * 3;
            p[0] = c.r;
            p[1] = c.g;
            p[2] = c.b;
        }
    }
}

/* Horizontal text: (x, y) is the top-left corner of its box. Vertical text
 * (rotated 90 degrees counter-clockwise, read bottom-to-top): (x, y) is the
 * bottom-left corner; the glyph tops face left. */
static void draw_text(image *im, const text_run *t, int x, int y, int s, int vertical,
                      rgb8 colour)
{
    for (int i = 0; i < t->n; i++) {
        const uint8_t *g = attn__font_glyph(t->code[i]);
        for (int gy = 0; gy < ATTN__FONT_H; gy++) {
            for (int gx = 0; gx < ATTN__FONT_W; gx++) {
                if (!(g[gy] >> (ATTN__FONT_W - 1 - gx) & 1)) continue;
                int along = (i * ATTN__FONT_ADVANCE + gx) * s, across = gy * s;
                if (vertical)
                    fill(im, x + across, y - along - s, s, s, colour);
                else
                    fill(im, x + along, y + across, s, s, colour);
            }
        }
    }
}

/* ---- layout --------------------------------------------------------------- */

typedef struct layout {
    int cell;                 /* cell side in pixels */
    int lscale;               /* pixel scale of row and column labels */
    int64_t row_step, col_step; /* label every row_step-th row, col_step-th column */
    int col_upright;            /* every column label is one glyph: drawn upright */
    int grid_x, grid_y;       /* top-left corner of the grid */
    int64_t grid_w, grid_h;
    int bar_x, bar_h;         /* the bar starts at grid_y */
    int title_x, title_y, col_axis_x, col_axis_y, row_axis_x, row_axis_bottom;
    int64_t width, height;
    double top;               /* value at the top of the colour scale */
    text_run title, row_axis, col_axis, top_label;
} layout;

/* The widest label of n at scale s (0 for none). */
static int labels_len(const char *const *labels, int64_t n, int s)
{
    int best = 0;
    text_run t;
    for (int64_t i = 0; labels && i < n; i++) {
        text_prepare(labels[i], ATTN_VIZ_LABEL_MAX, 1, &t);
        if (text_len(&t, s) > best) best = text_len(&t, s);
    }
    return best;
}

static int cell_auto(const attn_viz_heatmap *h)
{
    int64_t side = h->rows > h->cols ? h->rows : h->cols;
    if (h->row_labels || h->col_labels)
        return side <= AUTO_LABELLED_MAX ? AUTO_CELL : AUTO_CELL_SMALL;
    int64_t c = AUTO_GRID / side;
    return c < 1 ? 1 : c > AUTO_CELL ? AUTO_CELL : (int)c;
}

/* The top of the colour scale and its label. */
static void scale_top(const attn_viz_heatmap *h, layout *L)
{
    char buf[32];
    double top = 0;
    for (int64_t r = 0; h->normalize && r < h->rows; r++) {
        for (int64_t c = 0; c < h->cols; c++) {
            float v = h->w[r * h->row_stride + c];
            if (isfinite(v) && v > top) top = v;
        }
    }
    L->top = top > 0 ? top : 1.0;
    snprintf(buf, sizeof buf, "%.3g", L->top);
    text_prepare(buf, ATTN_VIZ_LABEL_MAX, 0, &L->top_label);
}

/* Cell size, label scale and label thinning. */
static void layout_cells(const attn_viz_heatmap *h, layout *L)
{
    L->cell = h->cell > 0 ? h->cell : cell_auto(h);
    L->lscale = L->cell >= AUTO_CELL ? TEXT_SCALE : 1;
    int need = L->lscale * ATTN__FONT_H + 2;
    L->row_step = L->col_step = L->cell >= need ? 1 : (need + L->cell - 1) / L->cell;
    L->grid_w = h->cols * L->cell;
    L->grid_h = h->rows * L->cell;
}

/* Positions of everything; width and height may exceed ATTN_VIZ_MAX_SIDE
 * (the caller checks) but never overflow: rows, cols, cell <= MAX_SIDE. */
static void layout_place(const attn_viz_heatmap *h, layout *L)
{
    const int th = TEXT_SCALE * ATTN__FONT_H;
    text_prepare(h->title, ATTN_VIZ_TITLE_MAX, 0, &L->title);
    text_prepare(h->col_axis, ATTN_VIZ_CAPTION_MAX, 0, &L->col_axis);
    text_prepare(h->row_axis, ATTN_VIZ_CAPTION_MAX, 0, &L->row_axis);
    int y = MARGIN, x = MARGIN;
    L->title_y = y;
    if (L->title.n > 0) y += th + GAP;
    L->col_axis_y = y;
    if (L->col_axis.n > 0) y += th + GAP;
    /* one-glyph column labels (characters) stand upright, longer ones rotate */
    L->col_upright = h->col_labels && labels_len(h->col_labels, h->cols, 1) <= ATTN__FONT_ADVANCE;
    if (h->col_labels)
        y += (L->col_upright ? L->lscale * ATTN__FONT_H : labels_len(h->col_labels, h->cols, L->lscale)) +
             LABEL_GAP;
    L->grid_y = y;
    L->row_axis_x = x;
    if (L->row_axis.n > 0) x += th + GAP;
    if (h->row_labels) x += labels_len(h->row_labels, h->rows, L->lscale) + LABEL_GAP;
    L->grid_x = x;

    L->bar_x = (int)(L->grid_x + L->grid_w + BAR_GAP);
    L->bar_h = (int)(L->grid_h > BAR_MIN_H ? L->grid_h : BAR_MIN_H);
    int zero_w = ATTN__FONT_W * TEXT_SCALE, top_w = text_len(&L->top_label, TEXT_SCALE);
    L->width = L->bar_x + BAR_W + TICK + 4 + (top_w > zero_w ? top_w : zero_w) + MARGIN;
    L->height = L->grid_y + L->bar_h + MARGIN;

    /* Title and column caption centred over the grid, kept inside. */
    int tw = text_len(&L->title, TEXT_SCALE), cw = text_len(&L->col_axis, TEXT_SCALE);
    L->title_x = (int)(L->grid_x + (L->grid_w - tw) / 2);
    L->col_axis_x = (int)(L->grid_x + (L->grid_w - cw) / 2);
    if (L->title_x < MARGIN) L->title_x = MARGIN;
    if (L->col_axis_x < MARGIN) L->col_axis_x = MARGIN;
    if (L->title_x + tw + 1 + MARGIN > L->width) L->width = L->title_x + tw + 1 + MARGIN;
    if (L->col_axis_x + cw + MARGIN > L->width) L->width = L->col_axis_x + cw + MARGIN;
    /* Row caption centred along the grid's height, kept inside. */
    int rw = text_len(&L->row_axis, TEXT_SCALE);
    L->row_axis_bottom = (int)(L->grid_y + (L->grid_h + rw) / 2);
    if (L->row_axis_bottom - rw < MARGIN) L->row_axis_bottom = MARGIN + rw;
    if (L->row_axis_bottom + MARGIN > L->height) L->height = L->row_axis_bottom + MARGIN;
}

/* ---- drawing -------------------------------------------------------------- */

static void draw_cells(const attn_viz_heatmap *h, const layout *L, image *im)
{
    for (int64_t r = 0; r < h->rows; r++) {
        for (int64_t c = 0; c < h->cols; c++) {
            double v = h->w[r * h->row_stride + c];
            fill(im, (int)(L->grid_x + c * L->cell), (int)(L->grid_y + r * L->cell), L->cell,
                 L->cell, ramp_colour(v / L->top));
        }
    }
}

/* Row labels right-aligned left of the grid, column labels read
 * bottom-to-top above it, each centred on its row or column. */
static void draw_labels(const attn_viz_heatmap *h, const layout *L, image *im)
{
    const int box = L->lscale * ATTN__FONT_H, centre = (L->cell - box) / 2;
    text_run t;
    for (int64_t r = 0; h->row_labels && r < h->rows; r += L->row_step) {
        text_prepare(h->row_labels[r], ATTN_VIZ_LABEL_MAX, 1, &t);
        draw_text(im, &t, L->grid_x - LABEL_GAP - text_len(&t, L->lscale),
                  (int)(L->grid_y + r * L->cell + centre), L->lscale, 0, INK);
    }
    for (int64_t c = 0; h->col_labels && c < h->cols; c += L->col_step) {
        text_prepare(h->col_labels[c], ATTN_VIZ_LABEL_MAX, 1, &t);
        if (L->col_upright)
            draw_text(im, &t, (int)(L->grid_x + c * L->cell + (L->cell - text_len(&t, L->lscale)) / 2),
                      L->grid_y - LABEL_GAP - box, L->lscale, 0, INK);
        else
            draw_text(im, &t, (int)(L->grid_x + c * L->cell + centre), L->grid_y - LABEL_GAP,
                      L->lscale, 1, INK);
    }
}

/* The colour bar: top of the scale at the top, "0" at the bottom. */
static void draw_bar(const layout *L, image *im)
{
    const int cap = TEXT_SCALE * 7;
    for (int y = 0; y < L->bar_h; y++)
        fill(im, L->bar_x, L->grid_y + y, BAR_W, 1, ramp_colour(1.0 - (y + 0.5) / L->bar_h));
    int tx = L->bar_x + BAR_W, lx = tx + TICK + 4;
    fill(im, tx, L->grid_y, TICK, 2, INK);
    fill(im, tx, L->grid_y + L->bar_h - 2, TICK, 2, INK);
    text_run zero = {1, {'0'}};
    /* Digits are cap height: centre their 7 rows on the tick. */
    draw_text(im, &L->top_label, lx, L->grid_y + 1 - cap / 2, TEXT_SCALE, 0, INK);
    draw_text(im, &zero, lx, L->grid_y + L->bar_h - 1 - cap / 2, TEXT_SCALE, 0, INK);
}

static void draw_all(const attn_viz_heatmap *h, const layout *L, image *im)
{
    memset(im->px, 255, (size_t)im->w * (size_t)im->h * 3); /* white */
    /* The title in bold: drawn twice, one pixel apart. */
    draw_text(im, &L->title, L->title_x, L->title_y, TEXT_SCALE, 0, INK);
    draw_text(im, &L->title, L->title_x + 1, L->title_y, TEXT_SCALE, 0, INK);
    draw_text(im, &L->col_axis, L->col_axis_x, L->col_axis_y, TEXT_SCALE, 0, CAPTION);
    draw_text(im, &L->row_axis, L->row_axis_x, L->row_axis_bottom, TEXT_SCALE, 1, CAPTION);
    draw_cells(h, L, im);
    draw_labels(h, L, im);
    draw_bar(L, im);
}

/* ---- arguments ------------------------------------------------------------ */

static attn_status check_labels(const char *fn, const char *name, const char *const *labels,
                                int64_t n)
{
    for (int64_t i = 0; labels && i < n; i++)
        if (!labels[i])
            return attn_fail(ATTN_NULL_ARG, "%s: h->%s[%lld] is NULL", fn, name, (long long)i);
    return ATTN_OK;
}

static attn_status check_map(const char *fn, const attn_viz_heatmap *h)
{
    if (!h) return attn_fail(ATTN_NULL_ARG, "%s: argument 'h' is NULL", fn);
    if (!h->w) return attn_fail(ATTN_NULL_ARG, "%s: h->w is NULL", fn);
    if (h->rows < 1 || h->rows > ATTN_VIZ_MAX_SIDE)
        return attn_fail(ATTN_BAD_DIM, "%s: h->rows is %lld; it must be in [1, %d]", fn,
                         (long long)h->rows, ATTN_VIZ_MAX_SIDE);
    if (h->cols < 1 || h->cols > ATTN_VIZ_MAX_SIDE)
        return attn_fail(ATTN_BAD_DIM, "%s: h->cols is %lld; it must be in [1, %d]", fn,
                         (long long)h->cols, ATTN_VIZ_MAX_SIDE);
    if (h->rows > 1 && h->row_stride < h->cols)
        return attn_fail(ATTN_BAD_STRIDE, "%s: h->row_stride is %lld; it must be >= cols (%lld)",
                         fn, (long long)h->row_stride, (long long)h->cols);
    if (h->rows > 1 && h->row_stride > (INT64_MAX - h->cols) / (h->rows - 1))
        return attn_fail(ATTN_OVERFLOW, "%s: h->row_stride %lld times rows overflows", fn,
                         (long long)h->row_stride);
    if (h->cell < 0 || h->cell > ATTN_VIZ_MAX_SIDE)
        return attn_fail(ATTN_BAD_DIM, "%s: h->cell is %d; it must be in [0, %d]", fn, h->cell,
                         ATTN_VIZ_MAX_SIDE);
    if (h->normalize != 0 && h->normalize != 1)
        return attn_fail(ATTN_BAD_PARAM, "%s: h->normalize is %d; it must be 0 or 1", fn,
                         h->normalize);
    attn_status s = check_labels(fn, "row_labels", h->row_labels, h->rows);
    return s ? s : check_labels(fn, "col_labels", h->col_labels, h->cols);
}

/* Checks, lays out and renders into a new image. */
static attn_status render(const char *fn, const attn_viz_heatmap *h, image *im)
{
    layout L;
    attn_status s = check_map(fn, h);
    if (s) return s;
    layout_cells(h, &L);
    scale_top(h, &L);
    layout_place(h, &L);
    if (L.width > ATTN_VIZ_MAX_SIDE || L.height > ATTN_VIZ_MAX_SIDE)
        return attn_fail(ATTN_BAD_DIM, "%s: the image would be %lld x %lld pixels (cell %d); "
                         "each side must be <= %d", fn, (long long)L.width,
                         (long long)L.height, L.cell, ATTN_VIZ_MAX_SIDE);
    im->w = (int)L.width;
    im->h = (int)L.height;
    im->px = (uint8_t *)attn_alloc((size_t)im->w * (size_t)im->h * 3);
    if (!im->px)
        return attn_fail(ATTN_NO_MEMORY, "%s: no memory for a %d x %d image", fn, im->w, im->h);
    draw_all(h, &L, im);
    return ATTN_OK;
}

attn_status attn_viz_heatmap_rgb(const attn_viz_heatmap *h, uint8_t **rgb, int *width,
                                 int *height)
{
    const char *fn = "attn_viz_heatmap_rgb";
    image im;
    if (!rgb) return attn_fail(ATTN_NULL_ARG, "%s: argument 'rgb' is NULL", fn);
    if (!width) return attn_fail(ATTN_NULL_ARG, "%s: argument 'width' is NULL", fn);
    if (!height) return attn_fail(ATTN_NULL_ARG, "%s: argument 'height' is NULL", fn);
    attn_status s = render(fn, h, &im);
    if (s) return s;
    *rgb = im.px;
    *width = im.w;
    *height = im.h;
    return ATTN_OK;
}

/* ---- PNG ------------------------------------------------------------------ */

/* libpng's handlers: errors keep the message and jump back to the setjmp in
 * png_encode; warnings are dropped (the library never prints); memory comes
 * from attn_alloc, and a failed allocation is remembered so that it is
 * reported as ATTN_NO_MEMORY rather than ATTN_IO. */
typedef struct png_state {
    png_structp png;
    png_infop info;
    int out_of_memory;
    char msg[128];
} png_state;

static void on_png_error(png_structp png, png_const_charp msg)
{
    png_state *st = (png_state *)png_get_error_ptr(png);
    snprintf(st->msg, sizeof st->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static png_voidp on_png_alloc(png_structp png, png_alloc_size_t bytes)
{
    void *p = attn_alloc(bytes);
    if (!p) ((png_state *)png_get_mem_ptr(png))->out_of_memory = 1;
    return p;
}

static void on_png_free(png_structp png, png_voidp p)
{
    (void)png;
    attn_release(p);
}

/* Encodes im into f. st->png and st->info exist; the caller destroys them.
 * Returns 0, or -1 after a libpng error (message in st->msg). */
static int png_encode(png_state *st, FILE *f, const image *im)
{
    if (setjmp(png_jmpbuf(st->png))) return -1;
    png_init_io(st->png, f);
    png_set_IHDR(st->png, st->info, (png_uint_32)im->w, (png_uint_32)im->h, 8,
                 PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(st->png, st->info);
    for (int y = 0; y < im->h; y++)
        png_write_row(st->png, im->px + (size_t)y * (size_t)im->w * 3);
    png_write_end(st->png, st->info);
    return 0;
}

/* Writes im as a PNG through an atomic replacement of path. */
static attn_status write_png(const char *fn, const char *path, const image *im)
{
    png_state st = {NULL, NULL, 0, ""};
    st.png = png_create_write_struct_2(PNG_LIBPNG_VER_STRING, &st, on_png_error,
                                       on_png_warning, &st, on_png_alloc, on_png_free);
    if (st.png) st.info = png_create_info_struct(st.png);
    if (!st.info) {
        png_destroy_write_struct(&st.png, NULL);
        return attn_fail(ATTN_NO_MEMORY, "%s: libpng could not start (no memory)", fn);
    }
    attn__atomic a;
    attn_status s = attn__atomic_open(fn, path, &a);
    if (s != ATTN_OK) {
        png_destroy_write_struct(&st.png, &st.info);
        return s;
    }
    int bad = png_encode(&st, a.fp, im);
    png_destroy_write_struct(&st.png, &st.info);
    if (!bad) return attn__atomic_commit(&a);
    attn__atomic_abort(&a);
    if (st.out_of_memory) return attn_fail(ATTN_NO_MEMORY, "%s: libpng ran out of memory: %s", fn, st.msg);
    return attn_fail(ATTN_IO, "%s: writing '%.200s': %s", fn, path, st.msg);
}

attn_status attn_viz_heatmap_png(const char *path, const attn_viz_heatmap *h)
{
    const char *fn = "attn_viz_heatmap_png";
    image im;
    if (!path) return attn_fail(ATTN_NULL_ARG, "%s: argument 'path' is NULL", fn);
    if (!*path) return attn_fail(ATTN_IO, "%s: argument 'path' is empty", fn);
    attn_status s = render(fn, h, &im);
    if (s) return s;
    s = write_png(fn, path, &im);
    attn_release(im.px);
    return s;
}
