/* Multi-scale deformable attention; see deform_attn.h. */
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

/* Queries are processed in blocks so the offset/weight projections stay small. */
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
                        if (ref_dim == 2) {
                            lx = r[0] + ox / (float)W;
                            ly = r[1] + oy / (float)H;
                        } else {
                            lx = r[0] + ox / (float)np * r[2] * 0.5f;
                            ly = r[1] + oy / (float)np * r[3] * 0.5f;
                        }
                        saa_grid_sample_accum(vl, H, W, hd, 2.0f * lx - 1.0f, 2.0f * ly - 1.0f,
                                              aw[i * hlp + k], o + h * hd);
                    }
                }
            }
        }
    }
    free(off);
    saa_linear(tmp, nq, d, m->output_proj_w, m->output_proj_b, d, out);
    return SAA_OK;
}
