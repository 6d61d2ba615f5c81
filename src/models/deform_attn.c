/* Multi-scale deformable attention; see deform_attn.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/deform_attn.h"
#include "saa/tensor.h"

void msda_bind(msda_layer *m, saa_binder *b, const char *prefix, int d_model, int n_heads, int n_levels,
               int n_points)
{
    const int64_t d = d_model, hlp = (int64_t)n_heads * n_levels * n_points;
    m->d_model = d_model;
    m->n_heads = n_heads;
    m->n_levels = n_levels;
    m->n_points = n_points;
    m->sampling_offsets_w = saa_bind(b, 2, (int64_t[]){hlp * 2, d}, "%ssampling_offsets.weight", prefix);
    m->sampling_offsets_b = saa_bind(b, 1, (int64_t[]){hlp * 2}, "%ssampling_offsets.bias", prefix);
    m->attention_weights_w = saa_bind(b, 2, (int64_t[]){hlp, d}, "%sattention_weights.weight", prefix);
    m->attention_weights_b = saa_bind(b, 1, (int64_t[]){hlp}, "%sattention_weights.bias", prefix);
    m->value_proj_w = saa_bind(b, 2, (int64_t[]){d, d}, "%svalue_proj.weight", prefix);
    m->value_proj_b = saa_bind(b, 1, (int64_t[]){d}, "%svalue_proj.bias", prefix);
    m->output_proj_w = saa_bind(b, 2, (int64_t[]){d, d}, "%soutput_proj.weight", prefix);
    m->output_proj_b = saa_bind(b, 1, (int64_t[]){d}, "%soutput_proj.bias", prefix);
}

void msda_project_value(const msda_layer *m, const float *value, int64_t n_tokens, float *value_heads,
                        float *tmp)
{
    const int64_t d = m->d_model, nh = m->n_heads, hd = d / nh;
    saa_linear(value, n_tokens, d, m->value_proj_w, m->value_proj_b, d, tmp);
    /* [tokens][heads][hd] -> [heads][tokens][hd] */
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < n_tokens; t++)
        for (int64_t h = 0; h < nh; h++)
            memcpy(value_heads + (h * n_tokens + t) * hd, tmp + t * d + h * hd, (size_t)hd * sizeof(float));
}

/* One bilinear sample (grid_sample, align_corners=False, padding zeros) of a channels-last map
 * value[H, W] with pixel stride `stride`, scaled by weight and added to out[C]. (x, y) is the
 * normalised location in [0, 1] (grid = 2 * loc - 1). Corners outside the map contribute zero; the
 * four corner weights carry the attention weight so the channel loop is one fused pass.
 * Same arithmetic as core saa_grid_sample_accum, specialised for this hot loop. */
static inline float sample_accum(const float *value, int64_t H, int64_t W, int64_t stride, int64_t C, float lx,
                                 float ly, float weight, float *out)
{
    /* torch's unnormalize: ((g + 1) * size - 1) / 2 computed as (g + 1) * (size / 2) - 0.5 */
    const float gx = 2.0f * lx - 1.0f, gy = 2.0f * ly - 1.0f;
    const float x = (gx + 1.0f) * ((float)W / 2.0f) - 0.5f;
    const float y = (gy + 1.0f) * ((float)H / 2.0f) - 0.5f;
    if (!(x > -1.0f && x < (float)W && y > -1.0f && y < (float)H)) return 0.0f; /* all four corners outside */
    const float xw = floorf(x), yn = floorf(y);
    const float fx = x - xw, fy = y - yn;
    const int64_t ix = (int64_t)xw, iy = (int64_t)yn;
    float wnw = (1.0f - fx) * (1.0f - fy) * weight, wne = fx * (1.0f - fy) * weight;
    float wsw = (1.0f - fx) * fy * weight, wse = fx * fy * weight;
    const int in_w = ix >= 0, in_e = ix + 1 < W, in_n = iy >= 0, in_s = iy + 1 < H;
    /* out-of-range corners: zero weight, and a pointer that stays inside the map */
    const int64_t cx0 = in_w ? ix : ix + 1, cx1 = in_e ? ix + 1 : ix, cy0 = in_n ? iy : iy + 1, cy1 = in_s ? iy + 1 : iy;
    if (!(in_n && in_w)) wnw = 0.0f;
    if (!(in_n && in_e)) wne = 0.0f;
    if (!(in_s && in_w)) wsw = 0.0f;
    if (!(in_s && in_e)) wse = 0.0f;
    const float *pnw = value + (cy0 * W + cx0) * stride, *pne = value + (cy0 * W + cx1) * stride;
    const float *psw = value + (cy1 * W + cx0) * stride, *pse = value + (cy1 * W + cx1) * stride;
#pragma omp simd
    for (int64_t c = 0; c < C; c++) out[c] += wnw * pnw[c] + wne * pne[c] + wsw * psw[c] + wse * pse[c];
    return wnw + wne + wsw + wse; /* the weight that fell inside the map */
}

/* Queries are processed in blocks so the offset/weight projections stay small. */
static inline void sample_location(int ref_dim, const float *r, float ox, float oy, int64_t H, int64_t W, int64_t np,
                                   float *lx, float *ly)
{
    if (ref_dim == 2) {
        *lx = r[0] + ox / (float)W;
        *ly = r[1] + oy / (float)H;
    } else {
        *lx = r[0] + ox / (float)np * r[2] * 0.5f;
        *ly = r[1] + oy / (float)np * r[3] * 0.5f;
    }
}

#define MSDA_BLOCK 2048

int msda_forward(const msda_layer *m, const msda_levels *lv, const float *query, int64_t nq, const float *ref,
                 int ref_dim, const float *value_heads, float *out, float *tmp)
{
    const int64_t d = m->d_model, nh = m->n_heads, hd = d / nh, nl = m->n_levels, np = m->n_points;
    const int64_t lp = nl * np, hlp = nh * lp;
    const int64_t blk = nq < MSDA_BLOCK ? nq : MSDA_BLOCK;
    float *off = malloc((size_t)(blk * hlp * 3) * sizeof(float));
    if (!off) return saa_set_error(SAA_ENOMEM, "deformable attention: out of memory");
    float *aw = off + blk * hlp * 2;
    for (int64_t q0 = 0; q0 < nq; q0 += blk) {
        const int64_t nb = (nq - q0 < blk) ? nq - q0 : blk;
        saa_linear(query + q0 * d, nb, d, m->sampling_offsets_w, m->sampling_offsets_b, hlp * 2, off);
        saa_linear(query + q0 * d, nb, d, m->attention_weights_w, m->attention_weights_b, hlp, aw);
        /* softmax over levels*points, per (query, head) */
        saa_softmax_rows(aw, nb * nh, lp);
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < nb; i++) {
            const int64_t q = q0 + i;
            const float *r = ref + q * ref_dim;
            float *o = tmp + q * d;
            memset(o, 0, (size_t)d * sizeof(float));
            for (int64_t h = 0; h < nh; h++) {
                const float *vh = value_heads + h * lv->n_tokens * hd;
                for (int64_t l = 0; l < nl; l++) {
                    const int64_t H = lv->H[l], W = lv->W[l];
                    const float *vl = vh + lv->start[l] * hd;
                    for (int64_t p = 0; p < np; p++) {
                        const int64_t k = (h * nl + l) * np + p;
                        const float ox = off[(i * hlp + k) * 2], oy = off[(i * hlp + k) * 2 + 1];
                        float lx, ly;
                        sample_location(ref_dim, r, ox, oy, H, W, np, &lx, &ly);
                        sample_accum(vl, H, W, hd, hd, lx, ly, aw[i * hlp + k], o + h * hd);
                    }
                }
            }
        }
    }
    free(off);
    saa_linear(tmp, nq, d, m->output_proj_w, m->output_proj_b, d, out);
    return SAA_OK;
}

int msda_forward_unprojected(const msda_layer *m, const msda_levels *lv, const float *query, int64_t nq,
                             const float *ref, int ref_dim, const float *value, float *out)
{
    const int64_t d = m->d_model, nh = m->n_heads, hd = d / nh, nl = m->n_levels, np = m->n_points;
    const int64_t lp = nl * np, hlp = nh * lp;
    float *off = malloc((size_t)(nq * hlp * 3 + nq * nh * d + nq * nh + nq * d) * sizeof(float));
    if (!off) return saa_set_error(SAA_ENOMEM, "deformable attention: out of memory");
    float *aw = off + nq * hlp * 2, *acc = aw + nq * hlp, *mass = acc + nq * nh * d, *o = mass + nq * nh;
    saa_linear(query, nq, d, m->sampling_offsets_w, m->sampling_offsets_b, hlp * 2, off);
    saa_linear(query, nq, d, m->attention_weights_w, m->attention_weights_b, hlp, aw);
    saa_softmax_rows(aw, nq * nh, lp);
    /* acc[q][h] = sum_{l,p} a * bilinear(value) over all d channels; mass = the weight inside the maps */
#pragma omp parallel for schedule(static)
    for (int64_t q = 0; q < nq; q++) {
        const float *r = ref + q * ref_dim;
        for (int64_t h = 0; h < nh; h++) {
            float *a = acc + (q * nh + h) * d;
            float ms = 0.0f;
            memset(a, 0, (size_t)d * sizeof(float));
            for (int64_t l = 0; l < nl; l++)
                for (int64_t p = 0; p < np; p++) {
                    const int64_t k = (h * nl + l) * np + p;
                    float lx, ly;
                    sample_location(ref_dim, r, off[(q * hlp + k) * 2], off[(q * hlp + k) * 2 + 1], lv->H[l],
                                    lv->W[l], np, &lx, &ly);
                    ms += sample_accum(value + lv->start[l] * d, lv->H[l], lv->W[l], d, d, lx, ly, aw[q * hlp + k], a);
                }
            mass[q * nh + h] = ms;
        }
    }
    /* head h: o[:, h] = acc_h Wv_h^T + mass * bv_h */
    for (int64_t h = 0; h < nh; h++)
        saa_gemm(0, 1, nq, hd, d, 1.0f, acc + h * d, nh * d, m->value_proj_w + h * hd * d, d, 0.0f, o + h * hd, d);
    for (int64_t q = 0; q < nq; q++)
        for (int64_t h = 0; h < nh; h++)
            for (int64_t j = 0; j < hd; j++) o[q * d + h * hd + j] += mass[q * nh + h] * m->value_proj_b[h * hd + j];
    saa_linear(o, nq, d, m->output_proj_w, m->output_proj_b, d, out);
    free(off);
    return SAA_OK;
}
