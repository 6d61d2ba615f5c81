/* SAM image encoder (mirrors segment_anything/modeling/image_encoder.py: ImageEncoderViT, Block,
 * Attention, window_partition/unpartition, get_rel_pos, add_decomposed_rel_pos).
 *
 * Memory: tokens stay NHWC [T, C]; qkv/proj/MLP are one sgemm over all tokens (or all window
 * tokens); attention runs one (window, head) or one global head per task, each thread owning one
 * score matrix [L, L] (L = window tokens, or all tokens for global blocks) to which the decomposed
 * relative-position terms are added on the fly. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <cblas.h>

#include "models/sam_internal.h"

void openblas_set_num_threads(int num_threads);

/* ---------- get_rel_pos ---------- */

int sam_get_rel_pos(int q_size, int k_size, const float *table, int len, int dim, float *out)
{
    int max_dist = 2 * (q_size > k_size ? q_size : k_size) - 1;
    const float *t = table;
    float *resized = NULL;
    if (len != max_dist) {
        /* F.interpolate(table^T [1, dim, len], size=max_dist, mode="linear") */
        float *tt = malloc(sizeof(float) * (size_t)dim * len);
        resized = malloc(sizeof(float) * (size_t)dim * max_dist);
        float *rt = malloc(sizeof(float) * (size_t)dim * max_dist);
        if (!tt || !resized || !rt) {
            free(tt), free(resized), free(rt);
            return saa_set_error(SAA_ENOMEM, "out of memory");
        }
        for (int i = 0; i < len; i++)
            for (int c = 0; c < dim; c++) tt[(size_t)c * len + i] = table[(size_t)i * dim + c];
        saa_interp_linear1d(tt, dim, len, max_dist, rt);
        for (int i = 0; i < max_dist; i++)
            for (int c = 0; c < dim; c++) resized[(size_t)i * dim + c] = rt[(size_t)c * max_dist + i];
        free(tt);
        free(rt);
        t = resized;
    }
    /* relative_coords in float32 (torch default dtype): the Python ratios are rounded to float32,
     * (k_size - 1) * ratio is a Python double rounded when added; .long() truncates. */
    double rq = (double)k_size / q_size > 1.0 ? (double)k_size / q_size : 1.0;
    double rk = (double)q_size / k_size > 1.0 ? (double)q_size / k_size : 1.0;
    float fq = (float)rq, fk = (float)rk, off = (float)((k_size - 1) * rk);
    for (int i = 0; i < q_size; i++)
        for (int j = 0; j < k_size; j++) {
            float qc = (float)i * fq, kc = (float)j * fk;
            float rel = (qc - kc) + off;
            long idx = (long)rel;
            if (idx < 0) idx = 0;
            if (idx > max_dist - 1) idx = max_dist - 1;
            memcpy(out + ((size_t)i * k_size + j) * dim, t + (size_t)idx * dim, sizeof(float) * (size_t)dim);
        }
    free(resized);
    return SAA_OK;
}

/* ---------- patch embedding ---------- */

int sam_patch_embed(const saa_sam *m, const float *input, float *tokens)
{
    const saa_sam_config *c = &m->cfg;
    int C = c->embed_dim, G = m->grid, T = G * G;
    float *y = malloc(sizeof(float) * (size_t)C * T);
    if (!y) return saa_set_error(SAA_ENOMEM, "out of memory");
    saa_conv_params p = {c->patch_size, c->patch_size, 0, 0, 1, 1, 1};
    saa_conv2d(input, 1, c->in_chans, c->img_size, c->img_size, m->patch_w, C, c->patch_size, c->patch_size,
               m->patch_b, p, y);
    /* B C H W -> B H W C */
    for (int t = 0; t < T; t++)
        for (int ch = 0; ch < C; ch++) tokens[(size_t)t * C + ch] = y[(size_t)ch * T + t];
    free(y);
    return SAA_OK;
}

void sam_add_pos_embed(const saa_sam *m, float *tokens)
{
    if (!m->pos_embed) return;
    size_t n = (size_t)m->grid * m->grid * m->cfg.embed_dim;
    for (size_t i = 0; i < n; i++) tokens[i] += m->pos_embed[i];
}

/* ---------- workspace ---------- */

/* Query rows per score block: a whole window, or 64 rows of a global head (64 x 4096 floats = 1 MB,
 * cache-resident, instead of the 64 MB 4096 x 4096 matrix). */
static int score_rows(int L) { return L <= 256 ? L : 64; }

struct sam_encoder_ws {
    int nthreads;
    float *xn, *qkv, *ao, *hidden;
    float *scratch; /* per thread: the largest attend_head layout of any block (scores, qs, relh, relw) */
    size_t scratch_per_thread;
};

static size_t window_rows(const saa_sam *m, int window)
{
    int G = m->grid;
    int n = (G + window - 1) / window;
    return (size_t)n * n * window * window;
}

sam_encoder_ws *sam_encoder_ws_new(const saa_sam *m)
{
    const saa_sam_config *c = &m->cfg;
    sam_encoder_ws *ws = calloc(1, sizeof *ws);
    if (!ws) {
        saa_set_error(SAA_ENOMEM, "out of memory");
        return NULL;
    }
    size_t C = (size_t)c->embed_dim, T = (size_t)m->grid * m->grid, hd = C / (size_t)c->num_heads;
    size_t R = T, scratch = 0;
    for (int i = 0; i < c->depth; i++) {
        const sam_block_w *k = &m->blocks[i];
        size_t rows = k->window ? window_rows(m, k->window) : T;
        size_t l = (size_t)k->size * k->size;
        /* attend_head's layout for this block: a window of up to 256 tokens keeps its whole L x L score
         * matrix, which can exceed the 64-row blocks of a larger global grid (window 16 beside grid 17) */
        size_t need = (size_t)score_rows((int)l) * l + l * hd + 2 * l * (size_t)k->size;
        if (rows > R) R = rows;
        if (need > scratch) scratch = need;
    }
    ws->nthreads = saa_threads();
    ws->scratch_per_thread = scratch;
    size_t hidden = T * (size_t)c->mlp_dim > R * C ? T * (size_t)c->mlp_dim : R * C;
    ws->xn = malloc(sizeof(float) * R * C);
    ws->qkv = malloc(sizeof(float) * R * 3 * C);
    ws->ao = malloc(sizeof(float) * R * C);
    ws->hidden = malloc(sizeof(float) * hidden);
    ws->scratch = malloc(sizeof(float) * ws->scratch_per_thread * (size_t)ws->nthreads);
    if (!ws->xn || !ws->qkv || !ws->ao || !ws->hidden || !ws->scratch) {
        sam_encoder_ws_free(ws);
        saa_set_error(SAA_ENOMEM, "sam: out of memory for the image encoder activations");
        return NULL;
    }
    return ws;
}

void sam_encoder_ws_free(sam_encoder_ws *ws)
{
    if (!ws) return;
    free(ws->xn);
    free(ws->qkv);
    free(ws->ao);
    free(ws->hidden);
    free(ws->scratch);
    free(ws);
}

/* ---------- attention ---------- */

/* exp for x <= 0 (softmax after max subtraction): Cody-Waite reduction + degree-6 polynomial,
 * about 1 ulp, written so the loop vectorises. */
static inline float exp_neg(float x)
{
    if (x < -87.0f) x = -87.0f;
    float t = x * 1.44269504088896341f;
    float n = (t + 12582912.0f) - 12582912.0f; /* round to nearest */
    float r = x - n * 0.693145751953125f;
    r = r - n * 1.428606765330187045e-06f;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union {
        int32_t i;
        float f;
    } s;
    s.i = ((int32_t)n + 127) << 23;
    return p * s.f;
}

/* One score row: add the rel-pos terms (if any), then softmax in place. Scalar version. */
static void rel_softmax_row_scalar(float *row, int L, int S, const float *ah, const float *bw)
{
    if (ah)
        for (int ky = 0; ky < S; ky++) {
            float *r = row + (size_t)ky * S;
            float a = ah[ky];
            for (int kx = 0; kx < S; kx++) r[kx] = (r[kx] + a) + bw[kx];
        }
    float mx = row[0];
    for (int i = 1; i < L; i++) mx = row[i] > mx ? row[i] : mx;
    float sum = 0.0f;
    for (int i = 0; i < L; i++) {
        row[i] = exp_neg(row[i] - mx);
        sum += row[i];
    }
    float inv = 1.0f / sum;
    for (int i = 0; i < L; i++) row[i] *= inv;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX512_PATH 1
/* The same with AVX-512 (same exp polynomial; 2^n applied with scalef). */
__attribute__((target("avx512f"))) static inline __m512 exp_neg16(__m512 x)
{
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

__attribute__((target("avx512f"))) static void rel_softmax_row_avx512(float *row, int L, int S, const float *ah,
                                                                      const float *bw)
{
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    if (ah) {
        for (int ky = 0; ky < S; ky++) {
            float *r = row + (size_t)ky * S;
            __m512 a = _mm512_set1_ps(ah[ky]);
            for (int kx = 0; kx < S; kx += 16) {
                __mmask16 k = S - kx >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (S - kx)) - 1);
                __m512 v = _mm512_add_ps(_mm512_add_ps(_mm512_maskz_loadu_ps(k, r + kx), a), _mm512_maskz_loadu_ps(k, bw + kx));
                _mm512_mask_storeu_ps(r + kx, k, v);
                vmax = _mm512_mask_max_ps(vmax, k, vmax, v);
            }
        }
    } else {
        for (int i = 0; i < L; i += 16) {
            __mmask16 k = L - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (L - i)) - 1);
            vmax = _mm512_mask_max_ps(vmax, k, vmax, _mm512_maskz_loadu_ps(k, row + i));
        }
    }
    __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vmax)), vsum = _mm512_setzero_ps();
    for (int i = 0; i < L; i += 16) {
        __mmask16 k = L - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (L - i)) - 1);
        __m512 e = exp_neg16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, row + i), mx));
        e = _mm512_maskz_mov_ps(k, e);
        _mm512_mask_storeu_ps(row + i, k, e);
        vsum = _mm512_add_ps(vsum, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
    for (int i = 0; i < L; i += 16) {
        __mmask16 k = L - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (L - i)) - 1);
        _mm512_mask_storeu_ps(row + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, row + i), inv));
    }
}
#endif


int sam_disable_simd;

static int use_avx512(void)
{
#ifdef HAVE_AVX512_PATH
    static int cached = -1;
    if (cached < 0) cached = __builtin_cpu_supports("avx512f") ? 1 : 0;
    return cached && !sam_disable_simd;
#else
    return 0;
#endif
}

#ifdef HAVE_AVX512_PATH
/* GELU(erf) as PyTorch's vectorised CPU kernel computes it: x * 0.5 * (1 + erf(x / sqrt 2)) with
 * Vectorized<float>::erf = Abramowitz-Stegun 7.1.26 (|error| <= 1.5e-7) around an exp. */
__attribute__((target("avx512f"))) static void gelu_avx512(float *x, int64_t n)
{
    const __m512 one = _mm512_set1_ps(1.0f), half = _mm512_set1_ps(0.5f), alpha = _mm512_set1_ps((float)M_SQRT1_2);
    const __m512 p = _mm512_set1_ps(0.3275911f), p1 = _mm512_set1_ps(0.254829592f), p2 = _mm512_set1_ps(-0.284496736f),
                 p3 = _mm512_set1_ps(1.421413741f), p4 = _mm512_set1_ps(-1.453152027f), p5 = _mm512_set1_ps(1.061405429f);
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(k, x + i), a = _mm512_mul_ps(v, alpha);
        __m512i ai = _mm512_castps_si512(a), s = _mm512_and_si512(ai, sign);
        __m512 ab = _mm512_castsi512_ps(_mm512_xor_si512(ai, s));
        __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(p, ab, one));
        __m512 r = _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_fmadd_ps(p5, t, p4), t, p3), t, p2), t, p1);
        __m512 e = exp_neg16(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(a, a)));
        __m512 erf_abs = _mm512_fnmadd_ps(_mm512_mul_ps(e, t), r, one);
        __m512 erf = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(erf_abs), s));
        _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(_mm512_mul_ps(v, half), _mm512_add_ps(one, erf)));
    }
}
#endif

void sam_gelu(float *x, int64_t n, int nthreads)
{
#ifdef HAVE_AVX512_PATH
    if (use_avx512()) {
        int64_t chunk = ((n + nthreads - 1) / nthreads + 15) / 16 * 16;
#pragma omp parallel for schedule(static) num_threads(nthreads) if (n > 65536)
        for (int t = 0; t < nthreads; t++) {
            int64_t i0 = (int64_t)t * chunk, i1 = i0 + chunk < n ? i0 + chunk : n;
            if (i1 > i0) gelu_avx512(x + i0, i1 - i0);
        }
        return;
    }
#endif
    (void)nthreads;
    saa_gelu_erf(x, n);
}

/* Attention of one head over one S x S grid (a window or the whole token grid):
 * q/k/v rows of that grid with row stride ld; out rows with stride ldo. Mirrors Attention.forward:
 * attn = (q * scale) @ k^T + decomposed rel-pos (unscaled q), softmax, @ v. */
static void attend_head(const float *q, const float *k, const float *v, int ld, int S, int hd, float scale,
                        const float *rh, const float *rw, float *out, int ldo, float *scratch)
{
    int L = S * S, RB = score_rows(L);
    float *scores = scratch, *qs = scores + (size_t)RB * L, *relh = qs + (size_t)L * hd,
          *relw = relh + (size_t)L * S;
    for (int i = 0; i < L; i++)
        for (int c = 0; c < hd; c++) qs[(size_t)i * hd + c] = q[(size_t)i * ld + c] * scale;
    if (rh) {
        /* rel_h[(y,x), ky] = q[y,x,:] . Rh[y,ky,:];  rel_w[(y,x), kx] = q[y,x,:] . Rw[x,kx,:] */
        for (int y = 0; y < S; y++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, S, S, hd, 1.0f, q + (size_t)y * S * ld, ld,
                        rh + (size_t)y * S * hd, hd, 0.0f, relh + (size_t)y * S * S, S);
        for (int x = 0; x < S; x++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, S, S, hd, 1.0f, q + (size_t)x * ld, S * ld,
                        rw + (size_t)x * S * hd, hd, 0.0f, relw + (size_t)x * S, S * S);
    }
    int simd = use_avx512();
    for (int r0 = 0; r0 < L; r0 += RB) {
        int nr = L - r0 < RB ? L - r0 : RB;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, L, hd, 1.0f, qs + (size_t)r0 * hd, hd, k, ld, 0.0f,
                    scores, L);
        for (int i = 0; i < nr; i++) {
            float *row = scores + (size_t)i * L;
            const float *ah = rh ? relh + (size_t)(r0 + i) * S : NULL, *bw = rh ? relw + (size_t)(r0 + i) * S : NULL;
#ifdef HAVE_AVX512_PATH
            if (simd) {
                rel_softmax_row_avx512(row, L, S, ah, bw);
                continue;
            }
#endif
            (void)simd;
            rel_softmax_row_scalar(row, L, S, ah, bw);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, hd, L, 1.0f, scores, L, v, ld, 0.0f,
                    out + (size_t)r0 * ldo, ldo);
    }
}

/* Runs n_tasks = n_grids * heads attention tasks in parallel, BLAS single-threaded inside. */
static void attend_all(const saa_sam *m, sam_encoder_ws *ws, const sam_block_w *blk, int n_grids)
{
    const saa_sam_config *c = &m->cfg;
    int C = c->embed_dim, H = c->num_heads, hd = C / H, S = blk->size, L = S * S;
    float scale = (float)pow((double)hd, -0.5);
    int n_tasks = n_grids * H;
    int nt = ws->nthreads < n_tasks ? ws->nthreads : n_tasks;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int task = 0; task < n_tasks; task++) {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        int g = task / H, h = task % H;
        const float *base = ws->qkv + (size_t)g * L * 3 * C + (size_t)h * hd;
        attend_head(base, base + C, base + 2 * C, 3 * C, S, hd, scale, m->cfg.use_rel_pos ? blk->rh : NULL,
                    blk->rw, ws->ao + (size_t)g * L * C + (size_t)h * hd, C,
                    ws->scratch + ws->scratch_per_thread * (size_t)tid);
    }
}

/* nn.Linear over many rows: the rows are split between the threads, each running a single-threaded
 * sgemm (one thread team for everything: no OpenBLAS pool spinning beside the OpenMP team). */
static void par_linear(const float *x, int64_t rows, int64_t in, const float *W, const float *b, int64_t out,
                       float *y, int nthreads)
{
#pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int t = 0; t < nthreads; t++) {
        int64_t r0 = rows * t / nthreads, r1 = rows * (t + 1) / nthreads;
        if (r1 > r0) saa_linear(x + r0 * in, r1 - r0, in, W, b, out, y + r0 * out);
    }
}

/* ---------- block ---------- */

int sam_encoder_block(const saa_sam *m, sam_encoder_ws *ws, int i, float *x, float *attn_out)
{
    const saa_sam_config *c = &m->cfg;
    const sam_block_w *blk = &m->blocks[i];
    int C = c->embed_dim, G = m->grid, T = G * G;
    openblas_set_num_threads(1); /* sgemm runs inside this block's own OpenMP tasks */
    saa_layer_norm(x, T, C, blk->norm1_w, blk->norm1_b, c->block_eps, ws->xn);
    float *proj_in;
    if (blk->window) {
        /* window_partition: zero-pad the normalised tokens to a multiple of the window, windows in
         * row-major order, tokens row-major inside each window */
        int S = blk->window, nw = (G + S - 1) / S, n_grids = nw * nw;
        size_t rows = (size_t)n_grids * S * S;
        float *xw = ws->hidden;
        for (int wy = 0; wy < nw; wy++)
            for (int wx = 0; wx < nw; wx++)
                for (int ty = 0; ty < S; ty++)
                    for (int tx = 0; tx < S; tx++) {
                        int gy = wy * S + ty, gx = wx * S + tx;
                        float *dst = xw + (((size_t)(wy * nw + wx) * S + ty) * S + tx) * C;
                        if (gy < G && gx < G)
                            memcpy(dst, ws->xn + ((size_t)gy * G + gx) * C, sizeof(float) * C);
                        else
                            memset(dst, 0, sizeof(float) * C);
                    }
        par_linear(xw, (int64_t)rows, C, blk->qkv_w, blk->qkv_b, 3 * C, ws->qkv, ws->nthreads);
        attend_all(m, ws, blk, n_grids);
        /* window_unpartition + crop into xn (free now) */
        for (int gy = 0; gy < G; gy++)
            for (int gx = 0; gx < G; gx++) {
                int wy = gy / S, wx = gx / S, ty = gy % S, tx = gx % S;
                memcpy(ws->xn + ((size_t)gy * G + gx) * C, ws->ao + (((size_t)(wy * nw + wx) * S + ty) * S + tx) * C,
                       sizeof(float) * C);
            }
        proj_in = ws->xn;
    } else {
        par_linear(ws->xn, T, C, blk->qkv_w, blk->qkv_b, 3 * C, ws->qkv, ws->nthreads);
        attend_all(m, ws, blk, 1);
        proj_in = ws->ao;
    }
    float *a = ws->hidden;
    par_linear(proj_in, T, C, blk->proj_w, blk->proj_b, C, a, ws->nthreads);
    if (attn_out) memcpy(attn_out, a, sizeof(float) * (size_t)T * C);
    int64_t n = (int64_t)T * C;
#pragma omp parallel for schedule(static) num_threads(ws->nthreads)
    for (int64_t j = 0; j < n; j++) x[j] += a[j];
    /* x = x + mlp(norm2(x)) */
    saa_layer_norm(x, T, C, blk->norm2_w, blk->norm2_b, c->block_eps, ws->xn);
    par_linear(ws->xn, T, C, blk->lin1_w, blk->lin1_b, c->mlp_dim, ws->hidden, ws->nthreads);
    sam_gelu(ws->hidden, (int64_t)T * c->mlp_dim, ws->nthreads);
    par_linear(ws->hidden, T, c->mlp_dim, blk->lin2_w, blk->lin2_b, C, ws->ao, ws->nthreads);
#pragma omp parallel for schedule(static) num_threads(ws->nthreads)
    for (int64_t j = 0; j < n; j++) x[j] += ws->ao[j];
    openblas_set_num_threads(ws->nthreads);
    return SAA_OK;
}

/* ---------- neck ---------- */

static void nhwc_to_nchw(const float *src, int T, int C, float *dst)
{
    for (int t = 0; t < T; t++)
        for (int c = 0; c < C; c++) dst[(size_t)c * T + t] = src[(size_t)t * C + c];
}

int sam_neck(const saa_sam *m, const float *tokens, float *neck0, float *neck1, float *neck2, float *out)
{
    const saa_sam_config *c = &m->cfg;
    int C = c->embed_dim, O = c->out_chans, G = m->grid, T = G * G;
    float *a = malloc(sizeof(float) * (size_t)T * O), *b = malloc(sizeof(float) * (size_t)T * O);
    if (!a || !b) {
        free(a), free(b);
        return saa_set_error(SAA_ENOMEM, "out of memory");
    }
    /* Conv1x1 (no bias) on NHWC tokens = linear, then NCHW */
    saa_linear(tokens, T, C, m->neck0_w, NULL, O, a);
    nhwc_to_nchw(a, T, O, b);
    if (neck0) memcpy(neck0, b, sizeof(float) * (size_t)T * O);
    saa_layer_norm2d(b, O, T, m->neck1_w, m->neck1_b, c->neck_eps, b);
    if (neck1) memcpy(neck1, b, sizeof(float) * (size_t)T * O);
    saa_conv_params p = {1, 1, 1, 1, 1, 1, 1};
    saa_conv2d(b, 1, O, G, G, m->neck2_w, O, 3, 3, NULL, p, out);
    if (neck2) memcpy(neck2, out, sizeof(float) * (size_t)T * O);
    saa_layer_norm2d(out, O, T, m->neck3_w, m->neck3_b, c->neck_eps, out);
    free(a);
    free(b);
    return SAA_OK;
}

int sam_encode(const saa_sam *m, const float *input, float *embedding)
{
    const saa_sam_config *c = &m->cfg;
    size_t n = (size_t)m->grid * m->grid * c->embed_dim;
    float *x = malloc(sizeof(float) * n);
    sam_encoder_ws *ws = x ? sam_encoder_ws_new(m) : NULL;
    if (!x || !ws) {
        free(x);
        sam_encoder_ws_free(ws);
        return saa_set_error(SAA_ENOMEM, "sam: out of memory for the image encoder");
    }
    int rc = sam_patch_embed(m, input, x);
    sam_add_pos_embed(m, x);
    for (int i = 0; i < c->depth && rc == SAA_OK; i++) rc = sam_encoder_block(m, ws, i, x, NULL);
    sam_encoder_ws_free(ws);
    if (rc == SAA_OK) rc = sam_neck(m, x, NULL, NULL, NULL, embedding);
    free(x);
    return rc;
}
