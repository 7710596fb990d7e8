/* quant_ref.c - the portable quantized matrix product, and the twin every
 * faster one is tested against: each row of W is dequantized to float32 by
 * the definition of its block format, then dotted with x in double. */
#include "kernels/quant_kernels.h"

static void dequant_q8_0(const unsigned char *b, float *out)
{
    float d = attn__f16_to_f32(attn__quant_u16(b));
    for (int i = 0; i < 32; i++) out[i] = d * (float)(int8_t)b[2 + i];
}

static void dequant_q4_1(const unsigned char *b, float *out)
{
    float d = attn__f16_to_f32(attn__quant_u16(b));
    float m = attn__f16_to_f32(attn__quant_u16(b + 2));
    for (int i = 0; i < 16; i++) {
        out[i] = d * (float)(b[4 + i] & 15) + m;
        out[i + 16] = d * (float)(b[4 + i] >> 4) + m;
    }
}

void attn__quant_dequant_blocks(attn_quant q, const unsigned char *blocks, int64_t nb, float *out)
{
    for (int64_t b = 0; b < nb; b++) {
        if (q == ATTN_QUANT_Q8_0)
            dequant_q8_0(blocks + b * ATTN__Q8_0_BYTES, out + b * 32);
        else
            dequant_q4_1(blocks + b * ATTN__Q4_1_BYTES, out + b * 32);
    }
}

int64_t attn__quant_ref_ws(int64_t K, bool many)
{
    (void)many;
    return K;
}

void attn__quant_ref(const attn__qin *in, const attn__qmat *m, int64_t i0, int64_t i1, int64_t j0,
                     int64_t j1, float *ws)
{
    for (int64_t j = j0; j < j1; j++) {
        attn__quant_dequant_blocks(m->type, m->w + (size_t)j * m->row_bytes, in->K / 32, ws);
        for (int64_t i = i0; i < i1; i++) {
            const float *x = in->x + i * in->K;
            double acc = 0.0;
            for (int64_t k = 0; k < in->K; k++) acc += (double)ws[k] * (double)x[k];
            m->y[i * m->rows + j] = (float)acc;
        }
    }
}
