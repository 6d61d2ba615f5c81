/* Normalisation layers (LayerNorm, SAM LayerNorm2d, GroupNorm, eval BatchNorm), float32 in/out.
 * Moments are accumulated in double (torch accumulates in float with a cascade; double is closer to
 * the exact value and the difference is far below the golden tolerances), then the affine part is
 * applied in float32 in the same order as torch's CPU kernels. */
#include <math.h>

#include "core/vmath.h"

#include "saa/tensor.h"

/* mean and biased variance of n values (two passes, double). */
__attribute__((always_inline)) static inline void moments(const float *x, int64_t n, float *mean_out, float *var_out)
{
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++) s += x[i];
    double mean = s / (double)n, v = 0.0;
#pragma omp simd reduction(+ : v)
    for (int64_t i = 0; i < n; i++) {
        double d = x[i] - mean;
        v += d * d;
    }
    *mean_out = (float)mean;
    *var_out = (float)(v / (double)n);
}

/* mirrors aten/src/ATen/native/cpu/layer_norm_kernel.cpp: rstd = 1/sqrt(var + eps),
 * y = (x * rstd + (-rstd * mean)) * gamma + beta. */
SAA_SIMD_CLONES static void layer_norm_row(const float *xr, int64_t dim, const float *w, const float *b, float eps,
                                           float *yr)
{
    float mean, var;
    moments(xr, dim, &mean, &var);
    float rstd = 1.0f / sqrtf(var + eps);
    float scale = rstd, bias = -rstd * mean;
    if (w && b) {
#pragma omp simd
        for (int64_t j = 0; j < dim; j++) yr[j] = (xr[j] * scale + bias) * w[j] + b[j];
    } else {
        for (int64_t j = 0; j < dim; j++) {
            float g = w ? w[j] : 1.0f, be = b ? b[j] : 0.0f;
            yr[j] = (xr[j] * scale + bias) * g + be;
        }
    }
}

void saa_layer_norm(const float *x, int64_t rows, int64_t dim, const float *w, const float *b, float eps,
                    float *y)
{
#pragma omp parallel for if (rows * dim > 32768) schedule(static)
    for (int64_t r = 0; r < rows; r++) layer_norm_row(x + r * dim, dim, w, b, eps, y + r * dim);
}

/* mirrors segment_anything/modeling/common.py: LayerNorm2d.forward
 *   u = x.mean(1); s = (x - u).pow(2).mean(1); x = (x - u) / sqrt(s + eps); w * x + b
 * Pixels are processed in blocks so channel sums stream through memory row by row. */
#define LN2D_BLOCK 256
void saa_layer_norm2d(const float *x, int64_t C, int64_t HW, const float *w, const float *b, float eps,
                      float *y)
{
    int64_t nblocks = (HW + LN2D_BLOCK - 1) / LN2D_BLOCK;
#pragma omp parallel for if (C * HW > 32768) schedule(static)
    for (int64_t blk = 0; blk < nblocks; blk++) {
        int64_t p0 = blk * LN2D_BLOCK, np = HW - p0 < LN2D_BLOCK ? HW - p0 : LN2D_BLOCK;
        double acc[LN2D_BLOCK];
        float mean[LN2D_BLOCK], sd[LN2D_BLOCK];
        #pragma omp simd
        for (int64_t p = 0; p < np; p++) acc[p] = 0.0;
        for (int64_t c = 0; c < C; c++) {
            const float *xc = x + c * HW + p0;
            #pragma omp simd
            for (int64_t p = 0; p < np; p++) acc[p] += xc[p];
        }
        #pragma omp simd
        for (int64_t p = 0; p < np; p++) {
            mean[p] = (float)(acc[p] / (double)C);
            acc[p] = 0.0;
        }
        for (int64_t c = 0; c < C; c++) {
            const float *xc = x + c * HW + p0;
            #pragma omp simd
            for (int64_t p = 0; p < np; p++) {
                float d = xc[p] - mean[p];
                acc[p] += (double)d * d;
            }
        }
        for (int64_t p = 0; p < np; p++) sd[p] = sqrtf((float)(acc[p] / (double)C) + eps);
        for (int64_t c = 0; c < C; c++) {
            const float *xc = x + c * HW + p0;
            float *yc = y + c * HW + p0;
            float g = w ? w[c] : 1.0f, be = b ? b[c] : 0.0f;
            #pragma omp simd
            for (int64_t p = 0; p < np; p++) yc[p] = g * ((xc[p] - mean[p]) / sd[p]) + be;
        }
    }
}

/* mirrors aten/src/ATen/native/cpu/group_norm_kernel.cpp: per group mean/rstd over (C/G)*HW values,
 * then per channel scale = rstd * gamma, bias = -scale * mean + beta, y = x * scale + bias. */
void saa_group_norm(const float *x, int64_t C, int64_t HW, int64_t groups, const float *w, const float *b,
                    float eps, float *y)
{
    int64_t cpg = C / groups;
#pragma omp parallel for if (C * HW > 32768) schedule(static)
    for (int64_t g = 0; g < groups; g++) {
        const float *xg = x + g * cpg * HW;
        float *yg = y + g * cpg * HW;
        float mean, var;
        moments(xg, cpg * HW, &mean, &var);
        float rstd = 1.0f / sqrtf((var > 0.0f ? var : 0.0f) + eps);
        for (int64_t c = 0; c < cpg; c++) {
            int64_t ch = g * cpg + c;
            float scale, bias;
            if (!w && !b) {
                #pragma omp simd
                for (int64_t p = 0; p < HW; p++) yg[c * HW + p] = (xg[c * HW + p] - mean) * rstd;
                continue;
            }
            scale = rstd * (w ? w[ch] : 1.0f);
            bias = -scale * mean + (b ? b[ch] : 0.0f);
            #pragma omp simd
            for (int64_t p = 0; p < HW; p++) yg[c * HW + p] = xg[c * HW + p] * scale + bias;
        }
    }
}

/* mirrors aten/src/ATen/native/Normalization.cpp batch_norm_cpu (eval): alpha = w / sqrt(var + eps),
 * beta = b - mean * alpha, y = x * alpha + beta. */
void saa_batch_norm(float *x, int64_t C, int64_t HW, const float *mean, const float *var, const float *w,
                    const float *b, float eps)
{
#pragma omp parallel for if (C * HW > 32768) schedule(static)
    for (int64_t c = 0; c < C; c++) {
        float invstd = 1.0f / sqrtf(var[c] + eps);
        float alpha = invstd * (w ? w[c] : 1.0f);
        float beta = (b ? b[c] : 0.0f) - mean[c] * alpha;
        float *xc = x + c * HW;
        #pragma omp simd
        for (int64_t p = 0; p < HW; p++) xc[p] = xc[p] * alpha + beta;
    }
}

/* Conv followed by eval BatchNorm == conv with w' = w * alpha and bias beta - mean * alpha
 * (alpha = gamma / sqrt(var + eps)). b is written, not read (the conv has no bias). */
void saa_fold_batch_norm(float *w, float *b, int64_t O, int64_t per_out, const float *mean,
                         const float *var, const float *gamma, const float *beta, float eps)
{
    for (int64_t o = 0; o < O; o++) {
        float alpha = (1.0f / sqrtf(var[o] + eps)) * (gamma ? gamma[o] : 1.0f);
        for (int64_t i = 0; i < per_out; i++) w[o * per_out + i] *= alpha;
        b[o] = (beta ? beta[o] : 0.0f) - mean[o] * alpha;
    }
}
