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

struct sam_encoder_ws {
    int nthreads;
    size_t L_max, S_max;
    float *xn, *qkv, *ao, *hidden;
    float *scratch; /* nthreads x (scores L*L + qs L*hd + relh L*S + relw L*S) */
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
    size_t R = T, L = 0, S = 0;
    for (int i = 0; i < c->depth; i++) {
        const sam_block_w *k = &m->blocks[i];
        size_t rows = k->window ? window_rows(m, k->window) : T;
        size_t l = (size_t)k->size * k->size;
        if (rows > R) R = rows;
        if (l > L) L = l;
        if ((size_t)k->size > S) S = (size_t)k->size;
    }
    ws->nthreads = saa_threads();
    ws->L_max = L, ws->S_max = S;
    ws->scratch_per_thread = L * L + L * hd + 2 * L * S;
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

static void softmax_row(float *x, int n)
{
    float mx = x[0];
    for (int i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = exp_neg(x[i] - mx);
        sum += x[i];
    }
    float inv = 1.0f / sum;
    for (int i = 0; i < n; i++) x[i] *= inv;
}

/* Attention of one head over one S x S grid (a window or the whole token grid):
 * q/k/v rows of that grid with row stride ld; out rows with stride ldo. Mirrors Attention.forward:
 * attn = (q * scale) @ k^T + decomposed rel-pos (unscaled q), softmax, @ v. */
static void attend_head(const float *q, const float *k, const float *v, int ld, int S, int hd, float scale,
                        const float *rh, const float *rw, float *out, int ldo, float *scratch)
{
    int L = S * S;
    float *scores = scratch, *qs = scores + (size_t)L * L, *relh = qs + (size_t)L * hd,
          *relw = relh + (size_t)L * S;
    for (int i = 0; i < L; i++)
        for (int c = 0; c < hd; c++) qs[(size_t)i * hd + c] = q[(size_t)i * ld + c] * scale;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, hd, 1.0f, qs, hd, k, ld, 0.0f, scores, L);
    if (rh) {
        /* rel_h[(y,x), ky] = q[y,x,:] . Rh[y,ky,:];  rel_w[(y,x), kx] = q[y,x,:] . Rw[x,kx,:] */
        for (int y = 0; y < S; y++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, S, S, hd, 1.0f, q + (size_t)y * S * ld, ld,
                        rh + (size_t)y * S * hd, hd, 0.0f, relh + (size_t)y * S * S, S);
        for (int x = 0; x < S; x++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, S, S, hd, 1.0f, q + (size_t)x * ld, S * ld,
                        rw + (size_t)x * S * hd, hd, 0.0f, relw + (size_t)x * S, S * S);
    }
    for (int i = 0; i < L; i++) {
        float *row = scores + (size_t)i * L;
        if (rh) {
            const float *a = relh + (size_t)i * S, *b = relw + (size_t)i * S;
            for (int ky = 0; ky < S; ky++) {
                float *r = row + (size_t)ky * S;
                float ah = a[ky];
                for (int kx = 0; kx < S; kx++) r[kx] = (r[kx] + ah) + b[kx];
            }
        }
        softmax_row(row, L);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, hd, L, 1.0f, scores, L, v, ld, 0.0f, out, ldo);
}

/* Runs n_tasks = n_grids * heads attention tasks in parallel, BLAS single-threaded inside. */
static void attend_all(const saa_sam *m, sam_encoder_ws *ws, const sam_block_w *blk, int n_grids)
{
    const saa_sam_config *c = &m->cfg;
    int C = c->embed_dim, H = c->num_heads, hd = C / H, S = blk->size, L = S * S;
    float scale = (float)pow((double)hd, -0.5);
    int n_tasks = n_grids * H;
    int nt = ws->nthreads < n_tasks ? ws->nthreads : n_tasks;
    openblas_set_num_threads(1);
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
    openblas_set_num_threads(ws->nthreads);
}

/* ---------- block ---------- */

int sam_encoder_block(const saa_sam *m, sam_encoder_ws *ws, int i, float *x, float *attn_out)
{
    const saa_sam_config *c = &m->cfg;
    const sam_block_w *blk = &m->blocks[i];
    int C = c->embed_dim, G = m->grid, T = G * G;
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
        saa_linear(xw, (int64_t)rows, C, blk->qkv_w, blk->qkv_b, 3 * C, ws->qkv);
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
        saa_linear(ws->xn, T, C, blk->qkv_w, blk->qkv_b, 3 * C, ws->qkv);
        attend_all(m, ws, blk, 1);
        proj_in = ws->ao;
    }
    float *a = ws->hidden;
    saa_linear(proj_in, T, C, blk->proj_w, blk->proj_b, C, a);
    if (attn_out) memcpy(attn_out, a, sizeof(float) * (size_t)T * C);
    size_t n = (size_t)T * C;
    for (size_t j = 0; j < n; j++) x[j] += a[j];
    /* x = x + mlp(norm2(x)) */
    saa_layer_norm(x, T, C, blk->norm2_w, blk->norm2_b, c->block_eps, ws->xn);
    saa_linear(ws->xn, T, C, blk->lin1_w, blk->lin1_b, c->mlp_dim, ws->hidden);
    saa_gelu_erf(ws->hidden, (int64_t)T * c->mlp_dim);
    saa_linear(ws->hidden, T, c->mlp_dim, blk->lin2_w, blk->lin2_b, C, ws->ao);
    for (size_t j = 0; j < n; j++) x[j] += ws->ao[j];
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
