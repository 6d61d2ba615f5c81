/* Elementwise activations and row softmax, float32, in place, in the arithmetic of PyTorch's
 * vectorised CPU kernels (Vectorized<float>: Sleef-accuracy exp, Abramowitz-Stegun erf). The
 * inner loops are written branch-free for `#pragma omp simd`; -fno-trapping-math (results are
 * unchanged, only FP-exception flags are not preserved) lets GCC turn their selects into blends. */
#pragma GCC optimize("no-trapping-math")
#include <math.h>

#include "core/vmath.h"
#include "saa/tensor.h"

#define PAR_MIN 65536 /* below this many elements a parallel region costs more than it saves */
#define CHUNK 4096    /* elements per parallel work item */

/* erf as PyTorch's Vectorized<float>::erf (aten/src/ATen/cpu/vec/vec256/vec256_float.h):
 * Abramowitz & Stegun 7.1.26, |error| <= 1.5e-7:
 * t = 1 / (1 + p|x|), erf = sign(x) (1 - t r(t) exp(-x^2)). torch contracts the Horner steps to
 * FMAs; here they are separate multiply-adds (<= 1 ulp apart). */
static inline float erf_as(float x)
{
    float ax = fabsf(x);
    float t = 1.0f / (0.3275911f * ax + 1.0f);
    float r = 1.061405429f * t + -1.453152027f;
    r = r * t + 1.421413741f;
    r = r * t + -0.284496736f;
    r = r * t + 0.254829592f;
    float e = saa_expf(-(x * x));
    float v = 1.0f - (e * t) * r;
    return copysignf(v, x);
}

/* mirrors aten/src/ATen/native/cpu/Activation.cpp GeluKernelImpl (approximate='none'), vector path:
 * x * 0.5 * (1 + erf(x * M_SQRT1_2)). */
void saa_gelu_erf(float *x, int64_t n)
{
    const float alpha = (float)M_SQRT1_2;
    int64_t nchunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
    for (int64_t ch = 0; ch < nchunks; ch++) {
        float *p = x + ch * CHUNK;
        int64_t m = n - ch * CHUNK < CHUNK ? n - ch * CHUNK : CHUNK;
#pragma omp simd
        for (int64_t i = 0; i < m; i++) p[i] = p[i] * 0.5f * (1.0f + erf_as(p[i] * alpha));
    }
}

/* approximate='tanh': 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))). */
void saa_gelu_tanh(float *x, int64_t n)
{
    const float beta = (float)(M_SQRT2 * M_2_SQRTPI * 0.5), kappa = 0.044715f;
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float v = x[i], inner = beta * (v + kappa * v * v * v);
        x[i] = 0.5f * v * (1.0f + tanhf(inner));
    }
}

void saa_relu(float *x, int64_t n)
{
#pragma omp parallel for simd if (n > PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) x[i] = x[i] < 0.0f ? 0.0f : x[i]; /* NaN stays NaN, as torch.relu */
}

/* torch CPU sigmoid for float, vector path: 1 / (1 + exp(-x)). */
void saa_sigmoid(float *x, int64_t n)
{
#pragma omp parallel for simd if (n > PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) x[i] = 1.0f / (1.0f + saa_expf(-x[i]));
}

/* One row, mirrors aten/src/ATen/native/cpu/SoftMaxKernel.cpp _vec_softmax_lastdim:
 * m = max, e = exp(x - m), y = e * (1 / sum e). A row of only -inf gives NaN (as torch); a NaN
 * anywhere makes the row NaN. */
SAA_SIMD_CLONES static void softmax_row(float *x, int64_t cols)
{
    float m = -INFINITY;
    int has_nan = 0;
#pragma omp simd reduction(max : m) reduction(| : has_nan)
    for (int64_t j = 0; j < cols; j++) {
        m = x[j] > m ? x[j] : m;
        has_nan |= x[j] != x[j];
    }
    if (has_nan) m = NAN;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < cols; j++) {
        float e = saa_expf(x[j] - m);
        x[j] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
#pragma omp simd
    for (int64_t j = 0; j < cols; j++) x[j] *= inv;
}

void saa_softmax_rows(float *x, int64_t rows, int64_t cols)
{
    if (cols <= 0) return;
#pragma omp parallel for if (rows * cols > PAR_MIN) schedule(static)
    for (int64_t r = 0; r < rows; r++) softmax_row(x + r * cols, cols);
}

#define COLS_BLOCK 256 /* columns per work item of saa_softmax_cols */

/* Columns c0 .. c0 + n - 1 (n <= COLS_BLOCK) of saa_softmax_cols. */
SAA_SIMD_CLONES static void softmax_cols_block(float *x, int64_t rows, int64_t cols, int64_t c0, int64_t n)
{
    float m[COLS_BLOCK], sum[COLS_BLOCK];
    int nan[COLS_BLOCK];
    for (int64_t j = 0; j < n; j++) m[j] = -INFINITY, sum[j] = 0.0f, nan[j] = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols + c0;
#pragma omp simd
        for (int64_t j = 0; j < n; j++) {
            m[j] = xr[j] > m[j] ? xr[j] : m[j];
            nan[j] |= xr[j] != xr[j];
        }
    }
#pragma omp simd
    for (int64_t j = 0; j < n; j++) m[j] = nan[j] ? NAN : m[j];
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * cols + c0;
#pragma omp simd
        for (int64_t j = 0; j < n; j++) {
            float e = saa_expf(xr[j] - m[j]);
            xr[j] = e;
            sum[j] += e;
        }
    }
#pragma omp simd
    for (int64_t j = 0; j < n; j++) sum[j] = 1.0f / sum[j];
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * cols + c0;
#pragma omp simd
        for (int64_t j = 0; j < n; j++) xr[j] *= sum[j];
    }
}

/* Softmax down each column of x[rows, cols] (torch.softmax over dim -2 of a contiguous matrix), in
 * place, with softmax_row's arithmetic per column (max, e = exp(x - max), y = e * (1 / sum e), sums
 * in row order). The inner loops run across columns, so they vectorise even for a few rows:
 * attention over a few keys with the scores stored key-major. */
void saa_softmax_cols(float *x, int64_t rows, int64_t cols)
{
    if (rows <= 0) return;
    int64_t nblocks = (cols + COLS_BLOCK - 1) / COLS_BLOCK;
#pragma omp parallel for if (rows * cols > PAR_MIN) schedule(static)
    for (int64_t blk = 0; blk < nblocks; blk++) {
        int64_t c0 = blk * COLS_BLOCK;
        softmax_cols_block(x, rows, cols, c0, cols - c0 < COLS_BLOCK ? cols - c0 : COLS_BLOCK);
    }
}
