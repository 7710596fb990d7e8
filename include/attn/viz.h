/* attn/viz.h - attention maps as PNG heatmaps (library attn_viz, libpng).
 *
 * A map is a rows x cols grid of weights, row r = one output (query)
 * position, column c = one source (key) position:
 *
 *   +------------------------------------------------------+
 *   |                       title                          |
 *   |                      col_axis                        |
 *   |              | | | | |  column labels, one per       |
 *   |              | | | | |  column, read bottom-to-top   |
 *   |   r  label 0 [][][][][]   |#| max                    |
 *   |   o  label 1 [][][][][]   |#|                        |
 *   |   w  label 2 [][][][][]   |#| 0                      |
 *   +------------------------------------------------------+
 *
 * White background; each cell is coloured by a viridis-like ramp (dark
 * purple for 0, through blue and green, to yellow for the top of the
 * scale); NaN and +-Inf cells are mid grey. Row labels are right-aligned
 * left of the grid; column labels stand above the grid, rotated 90 degrees
 * counter-clockwise so they read bottom-to-top, starting next to the grid.
 * The row axis caption is rotated the same way, left of the row labels. A
 * colour bar right of the grid is labelled "0" at the bottom and the top of
 * the scale at the top. For a map of single characters, pass the source
 * characters as col_labels and the output characters as row_labels.
 *
 * Text is a 5x9 pixel font drawn at 2x (labels at 1x when an explicit cell
 * is smaller than 20 pixels). Bytes 32..126 are drawn as themselves, other
 * ASCII bytes (controls) as '?', and each non-ASCII UTF-8 character as one
 * '?'. A label made only of spaces is drawn with a middle dot for each
 * space, so it stays visible. Labels longer than ATTN_VIZ_LABEL_MAX
 * characters (captions ATTN_VIZ_CAPTION_MAX, the title ATTN_VIZ_TITLE_MAX)
 * are cut and end in "..". When an explicit cell is below 11 pixels (the
 * 1x glyph height + 2), only rows and columns 0, k, 2k, ... are labelled,
 * k = ceil(11 / cell), so that labels never overlap.
 *
 * Errors: every function returns an attn_status (attn/attn.h) and, on error,
 * writes nothing and names the bad argument in attn_last_error().
 */
#ifndef ATTN_VIZ_H
#define ATTN_VIZ_H

#include <attn.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ATTN_VIZ_LABEL_MAX 24   /* characters of a row or column label */
#define ATTN_VIZ_CAPTION_MAX 48 /* characters of an axis caption */
#define ATTN_VIZ_TITLE_MAX 96   /* characters of the title */
#define ATTN_VIZ_MAX_SIDE 16384 /* pixels: the largest image width or height */

typedef struct attn_viz_heatmap {
    /* w[r * row_stride + c] for r < rows, c < cols; values usually in
     * [0, 1]. rows, cols >= 1; row_stride >= cols (any value if rows == 1). */
    const float *w;
    int64_t rows, cols;
    int64_t row_stride;
    const char *const *row_labels; /* rows non-NULL strings (UTF-8), or NULL */
    const char *const *col_labels; /* cols non-NULL strings, or NULL */
    const char *title;             /* or NULL */
    const char *row_axis, *col_axis; /* captions, e.g. "output", "source"; or NULL */
    /* Cell size in pixels. 0 = automatic: 20 (the 2x glyph height + 2) when
     * there are labels and at most 128 rows and columns, 11 (1x) for larger
     * labelled maps; without labels, 1024 / max(rows, cols) clamped to
     * [1, 20]. */
    int cell;
    /* 0: the colour scale is [0, 1] (values outside are clamped);
     * 1: the scale is [0, max], max the largest finite value (1 if that is
     *    not positive). Other values are ATTN_BAD_PARAM. */
    int normalize;
} attn_viz_heatmap;

/* Renders the map and writes it as an 8-bit RGB PNG to path, atomically as
 * attn_safetensors_save does (a temporary file beside the file path names,
 * symbolic links followed, renamed over it at the end), so an existing file
 * is replaced only by a complete image. ATTN_NULL_ARG, ATTN_BAD_DIM (rows,
 * cols or cell out of range, or the image would exceed ATTN_VIZ_MAX_SIDE),
 * ATTN_BAD_STRIDE, ATTN_BAD_PARAM (also a path over the limits), ATTN_NO_MEMORY,
 * ATTN_IO (path names a directory, FIFO, socket or device, which is left
 * untouched, or the file could not be created, written or renamed; nothing
 * is left behind). */
ATTN_API attn_status attn_viz_heatmap_png(const char *path, const attn_viz_heatmap *h);

/* Renders the map into a new buffer: *rgb [*height][*width][3] bytes, row
 * major, top row first; free it with attn_release. The same image the PNG
 * holds. Statuses as above, without ATTN_IO. */
ATTN_API attn_status attn_viz_heatmap_rgb(const attn_viz_heatmap *h, uint8_t **rgb,
                                          int *width, int *height);

#ifdef __cplusplus
}
#endif

#endif /* ATTN_VIZ_H */
