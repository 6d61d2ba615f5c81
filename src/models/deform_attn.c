/* Multi-scale deformable attention; see deform_attn.h. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/vmath.h"
#include "models/deform_attn.h"
#include "saa/tensor.h"

/* rows per thread below which splitting is not worth a parallel region */
#define PAR_MIN_ROWS 32

void par_linear_rows(const float *x, int64_t rows, int64_t in, const float *W, const float *b, int64_t out, float *y)
{
    const int nt = omp_get_max_threads();
    if (nt <= 1 || rows < 2 * PAR_MIN_ROWS || omp_in_parallel()) {
        saa_linear(x, rows, in, W, b, out, y);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num(), n = omp_get_num_threads();
        const int64_t r0 = rows * t / n, r1 = rows * (t + 1) / n;
        saa_linear(x + r0 * in, r1 - r0, in, W, b, out, y + r0 * out);
    }
}

void par_gemm_rows(int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                   const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    const int nt = omp_get_max_threads();
    if (nt <= 1 || M < 2 * PAR_MIN_ROWS || omp_in_parallel()) {
        saa_gemm(0, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num(), n = omp_get_num_threads();
        const int64_t r0 = M * t / n, r1 = M * (t + 1) / n;
        saa_gemm(0, trans_b, r1 - r0, N, K, alpha, A + r0 * lda, lda, B, ldb, beta, C + r0 * ldc, ldc);
    }
}

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
    par_linear_rows(value, n_tokens, d, m->value_proj_w, m->value_proj_b, d, tmp);
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
__attribute__((always_inline)) static inline float sample_accum(const float *value, int64_t H, int64_t W, int64_t stride, int64_t C, float lx,
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
__attribute__((always_inline)) static inline void sample_location(int ref_dim, const float *r, float ox, float oy, int64_t H, int64_t W, int64_t np,
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

#define MSDA_BLOCK 128

/* One query: o[d] = concat over heads of sum_{l,p} a * bilinear(value_heads[h], level l). */
SAA_SIMD_CLONES
static void sample_query(const msda_layer *m, const msda_levels *lv, const float *r, int ref_dim, const float *off,
                         const float *aw, const float *value_heads, float *o)
{
    const int64_t d = m->d_model, nh = m->n_heads, hd = d / nh, nl = m->n_levels, np = m->n_points;
    memset(o, 0, (size_t)d * sizeof(float));
    for (int64_t h = 0; h < nh; h++) {
        const float *vh = value_heads + h * lv->n_tokens * hd;
        for (int64_t l = 0; l < nl; l++) {
            const int64_t H = lv->H[l], W = lv->W[l];
            const float *vl = vh + lv->start[l] * hd;
            for (int64_t p = 0; p < np; p++) {
                const int64_t k = (h * nl + l) * np + p;
                float lx, ly;
                sample_location(ref_dim, r, off[k * 2], off[k * 2 + 1], H, W, np, &lx, &ly);
                sample_accum(vl, H, W, hd, hd, lx, ly, aw[k], o + h * hd);
            }
        }
    }
}

/* One query, all channels per head: acc[h][d] and the in-map weight mass[h]. */
SAA_SIMD_CLONES
static void sample_query_full(const msda_layer *m, const msda_levels *lv, const float *r, int ref_dim,
                              const float *off, const float *aw, const float *value, float *acc, float *mass)
{
    const int64_t d = m->d_model, nh = m->n_heads, nl = m->n_levels, np = m->n_points;
    for (int64_t h = 0; h < nh; h++) {
        float *a = acc + h * d;
        float ms = 0.0f;
        memset(a, 0, (size_t)d * sizeof(float));
        for (int64_t l = 0; l < nl; l++)
            for (int64_t p = 0; p < np; p++) {
                const int64_t k = (h * nl + l) * np + p;
                float lx, ly;
                sample_location(ref_dim, r, off[k * 2], off[k * 2 + 1], lv->H[l], lv->W[l], np, &lx, &ly);
                ms += sample_accum(value + lv->start[l] * d, lv->H[l], lv->W[l], d, d, lx, ly, aw[k], a);
            }
        mass[h] = ms;
    }
}

int msda_forward(const msda_layer *m, const msda_levels *lv, const float *query, int64_t nq, const float *ref,
                 int ref_dim, const float *value_heads, float *out, float *tmp)
{
    const int64_t d = m->d_model, nh = m->n_heads, nl = m->n_levels, np = m->n_points;
    const int64_t lp = nl * np, hlp = nh * lp;
    const int64_t nblk = (nq + MSDA_BLOCK - 1) / MSDA_BLOCK;
    const int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    float *buf = malloc((size_t)nt * (size_t)(MSDA_BLOCK * hlp * 3) * sizeof(float));
    if (!buf) return saa_set_error(SAA_ENOMEM, "deformable attention: out of memory");
    /* one parallel region: each thread runs whole query blocks (projections with single-threaded sgemm,
     * softmax, sampling, output projection) */
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t bi = 0; bi < nblk; bi++) {
        float *off = buf + (int64_t)omp_get_thread_num() * MSDA_BLOCK * hlp * 3, *aw = off + MSDA_BLOCK * hlp * 2;
        const int64_t q0 = bi * MSDA_BLOCK, nb = nq - q0 < MSDA_BLOCK ? nq - q0 : MSDA_BLOCK;
        saa_linear(query + q0 * d, nb, d, m->sampling_offsets_w, m->sampling_offsets_b, hlp * 2, off);
        saa_linear(query + q0 * d, nb, d, m->attention_weights_w, m->attention_weights_b, hlp, aw);
        saa_softmax_rows(aw, nb * nh, lp); /* over levels*points, per (query, head) */
        for (int64_t i = 0; i < nb; i++)
            sample_query(m, lv, ref + (q0 + i) * ref_dim, ref_dim, off + i * hlp * 2, aw + i * hlp, value_heads,
                         tmp + (q0 + i) * d);
        saa_linear(tmp + q0 * d, nb, d, m->output_proj_w, m->output_proj_b, d, out + q0 * d);
    }
    free(buf);
    return SAA_OK;
}

int msda_forward_unprojected(const msda_layer *m, const msda_levels *lv, const float *query, int64_t nq,
                             const float *ref, int ref_dim, const float *value, float *out)
{
    const int64_t d = m->d_model, nh = m->n_heads, hd = d / nh, nl = m->n_levels, np = m->n_points;
    const int64_t lp = nl * np, hlp = nh * lp;
    const int64_t nblk = (nq + MSDA_BLOCK - 1) / MSDA_BLOCK;
    const int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    const int64_t per = MSDA_BLOCK * (hlp * 3 + nh * d + nh + d);
    float *buf = malloc((size_t)nt * (size_t)per * sizeof(float));
    if (!buf) return saa_set_error(SAA_ENOMEM, "deformable attention: out of memory");
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t bi = 0; bi < nblk; bi++) {
        float *off = buf + (int64_t)omp_get_thread_num() * per, *aw = off + MSDA_BLOCK * hlp * 2;
        float *acc = aw + MSDA_BLOCK * hlp, *mass = acc + MSDA_BLOCK * nh * d, *o = mass + MSDA_BLOCK * nh;
        const int64_t q0 = bi * MSDA_BLOCK, nb = nq - q0 < MSDA_BLOCK ? nq - q0 : MSDA_BLOCK;
        saa_linear(query + q0 * d, nb, d, m->sampling_offsets_w, m->sampling_offsets_b, hlp * 2, off);
        saa_linear(query + q0 * d, nb, d, m->attention_weights_w, m->attention_weights_b, hlp, aw);
        saa_softmax_rows(aw, nb * nh, lp);
        /* acc[q][h] = sum_{l,p} a * bilinear(value) over all d channels; mass = the weight inside the maps */
        for (int64_t i = 0; i < nb; i++)
            sample_query_full(m, lv, ref + (q0 + i) * ref_dim, ref_dim, off + i * hlp * 2, aw + i * hlp, value,
                              acc + i * nh * d, mass + i * nh);
        /* head h: o[:, h] = acc_h Wv_h^T + mass * bv_h */
        for (int64_t h = 0; h < nh; h++)
            saa_gemm(0, 1, nb, hd, d, 1.0f, acc + h * d, nh * d, m->value_proj_w + h * hd * d, d, 0.0f, o + h * hd, d);
        for (int64_t i = 0; i < nb; i++)
            for (int64_t h = 0; h < nh; h++)
                for (int64_t j = 0; j < hd; j++) o[i * d + h * hd + j] += mass[i * nh + h] * m->value_proj_b[h * hd + j];
        saa_linear(o, nb, d, m->output_proj_w, m->output_proj_b, d, out + q0 * d);
    }
    free(buf);
    return SAA_OK;
}
