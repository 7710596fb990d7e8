/* font.h - the private bitmap font of the attention maps (font.c): one glyph
 * per printable ASCII character 32..126 plus a middle dot, 5 columns by 9
 * rows. Rows 0..6 hold capitals and digits (row 6 is the baseline row),
 * rows 7..8 the descenders of g j p q y , ; _. */
#ifndef ATTN_VIZ_FONT_H
#define ATTN_VIZ_FONT_H

#include <stdint.h>

#define ATTN__FONT_W 5       /* glyph width in pixels */
#define ATTN__FONT_H 9       /* glyph height in pixels, descenders included */
#define ATTN__FONT_ADVANCE 6 /* pen advance: the glyph and one blank column */
#define ATTN__FONT_MIDDOT 127 /* code of the middle dot (not ASCII's DEL) */

/* The 9 rows (top first) of the glyph of code c; bit 4 of a row is its
 * leftmost pixel. Codes 32..126 are ASCII, ATTN__FONT_MIDDOT the middle dot;
 * any other code gives the glyph of '?'. */
const uint8_t *attn__font_glyph(int c);

#endif /* ATTN_VIZ_FONT_H */
