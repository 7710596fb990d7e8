/* explain_text.c - the escapes of the explorer page (explain_text.h), on
 * the JSON writer's byte sink. */
#include "viz/explain_text.h"

#include "core/utf8.h"

#include <stdio.h>
#include <string.h>

void attn__explain_str(attn__json_out *o, const char *s)
{
    attn__json_out_raw(o, s, strlen(s));
}

/* \uXXXX for the code point c (at most U+FFFF). */
static void json_u(attn__json_out *o, uint32_t c)
{
    char b[12];
    snprintf(b, sizeof b, "\\u%04x", (unsigned)(c & 0xFFFFu));
    attn__json_out_raw(o, b, 6);
}

/* Does the JSON string keep c as \uXXXX? Controls (C0, DEL, C1), the HTML
 * specials that could end the script or open a comment, and the two line
 * separators that older JavaScript treats as line ends. */
static int json_escaped(uint32_t c)
{
    return c < 0x20 || (c >= 0x7F && c <= 0x9F) || c == '<' || c == '>' || c == '&' ||
           c == 0x2028 || c == 0x2029;
}

void attn__explain_json_string(attn__json_out *o, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    attn__json_out_raw(o, "\"", 1);
    for (size_t i = 0; i < n;) {
        uint32_t c = 0;
        int k = attn__utf8_decode(u + i, n - i, &c);
        if (k == 0) {
            json_u(o, 0xFFFD);
            i++;
        } else if (c == '"' || c == '\\') {
            attn__json_out_raw(o, c == '"' ? "\\\"" : "\\\\", 2);
            i++;
        } else {
            if (json_escaped(c)) json_u(o, c);
            else attn__json_out_raw(o, s + i, (size_t)k);
            i += (size_t)k;
        }
    }
    attn__json_out_raw(o, "\"", 1);
}

void attn__explain_html_text(attn__json_out *o, const char *s)
{
    static const char fffd[] = "\xEF\xBF\xBD";
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        uint32_t c = 0;
        int k = attn__utf8_decode(u + i, n - i, &c);
        const char *ref = c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;"
                        : c == '"' ? "&quot;" : c == '\'' ? "&#39;" : NULL;
        if (k == 0 || ((c < 0x20 || (c >= 0x7F && c <= 0x9F)) && c != '\t' && c != '\n'))
            attn__json_out_raw(o, fffd, 3);
        else if (ref != NULL)
            attn__explain_str(o, ref);
        else
            attn__json_out_raw(o, s + i, (size_t)k);
        i += k == 0 ? 1 : (size_t)k;
    }
}

void attn__explain_base64_f32(attn__json_out *o, const float *x, int64_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char in[3];
    char quad[4];
    int have = 0;
    attn__json_out_raw(o, "\"", 1);
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &x[i], sizeof bits);
        for (int b = 0; b < 4; b++) { /* little-endian bytes whatever the host */
            in[have++] = (unsigned char)(bits >> (8 * b));
            if (have < 3) continue;
            quad[0] = abc[in[0] >> 2];
            quad[1] = abc[((in[0] & 3) << 4) | (in[1] >> 4)];
            quad[2] = abc[((in[1] & 15) << 2) | (in[2] >> 6)];
            quad[3] = abc[in[2] & 63];
            attn__json_out_raw(o, quad, 4);
            have = 0;
        }
    }
    if (have > 0) { /* one or two bytes left: padded */
        if (have == 1) in[1] = 0;
        quad[0] = abc[in[0] >> 2];
        quad[1] = abc[((in[0] & 3) << 4) | (in[1] >> 4)];
        quad[2] = have == 2 ? abc[(in[1] & 15) << 2] : '=';
        quad[3] = '=';
        attn__json_out_raw(o, quad, 4);
    }
    attn__json_out_raw(o, "\"", 1);
}
