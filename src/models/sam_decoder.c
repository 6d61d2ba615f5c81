/* SAM prompt encoder, mask decoder and mask post-processing (mirrors segment_anything/modeling/
 * prompt_encoder.py, mask_decoder.py, transformer.py, sam.py: postprocess_masks, and
 * utils/transforms.py: ResizeLongestSide.apply_coords). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "models/sam_internal.h"

/* ---------- prompt encoder ---------- */

/* PositionEmbeddingRandom._pe_encoding of one point already normalised to [0, 1]. */
static void pe_encode(const float *gauss, int F, float x, float y, float *out)
{
    const float two_pi = (float)(2.0 * M_PI);
    x = 2.0f * x - 1.0f;
    y = 2.0f * y - 1.0f;
    for (int j = 0; j < F; j++) {
        float v = x * gauss[j] + y * gauss[F + j];
        v = two_pi * v;
        out[j] = sinf(v);
        out[F + j] = cosf(v);
    }
}

int sam_dense_pe(const saa_sam *m, float *pe)
{
    /* PositionEmbeddingRandom.forward(image_embedding_size): (cumsum(ones) - 0.5) / size, C x H x W */
    int D = m->cfg.prompt_dim, F = D / 2, h = m->cfg.emb_h, w = m->cfg.emb_w;
    float *v = malloc(sizeof(float) * (size_t)D);
    if (!v) return saa_set_error(SAA_ENOMEM, "out of memory");
    for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++) {
            float x = ((float)(j + 1) - 0.5f) / (float)w, y = ((float)(i + 1) - 0.5f) / (float)h;
            pe_encode(m->pe_gauss, F, x, y, v);
            for (int c = 0; c < D; c++) pe[((size_t)c * h + i) * w + j] = v[c];
        }
    free(v);
    return SAA_OK;
}

/* One (x, y) pair. F64: numpy float64 product, then the float32 cast of torch.as_tensor; F32: torch
 * float32 tensor times a Python float, i.e. float32(x) * float32(ratio). */
static void apply_pair(double x, double y, double rx, double ry, saa_sam_coord_mode mode, float *out)
{
    if (mode == SAA_SAM_COORDS_F32) {
        out[0] = (float)x * (float)rx;
        out[1] = (float)y * (float)ry;
    } else {
        out[0] = (float)(x * rx);
        out[1] = (float)(y * ry);
    }
}

static void coord_ratios(int orig_h, int orig_w, int long_side, double *rx, double *ry)
{
    int nh, nw;
    saa_sam_preprocess_shape(orig_h, orig_w, long_side, &nh, &nw);
    *rx = (double)nw / orig_w, *ry = (double)nh / orig_h;
}

void sam_apply_coords(const float *xy, int n, int orig_h, int orig_w, int long_side, saa_sam_coord_mode mode,
                      float *out)
{
    double rx, ry;
    coord_ratios(orig_h, orig_w, long_side, &rx, &ry);
    for (int i = 0; i < n; i++) apply_pair(xy[2 * i], xy[2 * i + 1], rx, ry, mode, out + 2 * i);
}

void sam_apply_coords_f64(const double *xy, int n, int orig_h, int orig_w, int long_side, saa_sam_coord_mode mode,
                          float *out)
{
    double rx, ry;
    coord_ratios(orig_h, orig_w, long_side, &rx, &ry);
    for (int i = 0; i < n; i++) apply_pair(xy[2 * i], xy[2 * i + 1], rx, ry, mode, out + 2 * i);
}

int sam_sparse_count(int n_points, int has_boxes)
{
    /* _embed_points pads one point when there is no box */
    return (n_points > 0 ? n_points + (has_boxes ? 0 : 1) : 0) + (has_boxes ? 2 : 0);
}

static void add_vec(float *x, const float *a, int n)
{
#pragma omp simd
    for (int i = 0; i < n; i++) x[i] += a[i];
}

void sam_embed_prompts(const saa_sam *m, int B, int n_points, const float *coords, const int *labels,
                       const float *boxes, float *sparse)
{
    int D = m->cfg.prompt_dim, F = D / 2, N = sam_sparse_count(n_points, boxes != NULL);
    float in_w = (float)m->cfg.input_w, in_h = (float)m->cfg.input_h;
    for (int b = 0; b < B; b++) {
        float *s = sparse + (size_t)b * N * D;
        if (n_points > 0) {
            for (int p = 0; p < n_points; p++) {
                float x = coords[((size_t)b * n_points + p) * 2] + 0.5f, y = coords[((size_t)b * n_points + p) * 2 + 1] + 0.5f;
                int label = labels[(size_t)b * n_points + p];
                pe_encode(m->pe_gauss, F, x / in_w, y / in_h, s);
                if (label == -1) {
                    memcpy(s, m->not_a_point, sizeof(float) * D);
                } else if (label == 0 || label == 1) {
                    add_vec(s, m->point_embed[label], D);
                }
                s += D;
            }
            if (!boxes) { /* padding point (0, 0), label -1: PE zeroed, not_a_point_embed */
                memcpy(s, m->not_a_point, sizeof(float) * D);
                s += D;
            }
        }
        if (boxes) {
            const float *bx = boxes + (size_t)b * 4;
            for (int corner = 0; corner < 2; corner++) {
                pe_encode(m->pe_gauss, F, (bx[2 * corner] + 0.5f) / in_w, (bx[2 * corner + 1] + 0.5f) / in_h, s);
                add_vec(s, m->point_embed[2 + corner], D);
                s += D;
            }
        }
    }
}

/* ---------- mask decoder ---------- */

void openblas_set_num_threads(int num_threads);

#define UPSCALE_BLOCK 1024 /* rows of the first upscaling output per block: ~256 KB + 512 KB in cache */

/* Per-thread buffers of one prompt's decoder pass. */
typedef struct {
    float *keys, *kpos, *kattn, *up1, *up2, *masks;
    float *tokens, *queries, *qpos, *qattn, *mlp_h, *hyper, *iou_all, *mlp_tmp;
    float *Q, *K, *V, *O, *S; /* attention projections and scores (all heads) */
    float *A, *PK;            /* reassociated cross attention: [heads * Nt, D] each */
} dec_ws;

static void dec_ws_free(dec_ws *w)
{
    if (!w) return;
    float **p = (float **)w;
    for (size_t i = 0; i < sizeof *w / sizeof(float *); i++) free(p[i]);
}

static int dec_ws_init(dec_ws *w, const saa_sam_config *c, int Nt)
{
    memset(w, 0, sizeof *w);
    size_t D = (size_t)c->prompt_dim, HW = (size_t)c->emb_h * c->emb_w, nmt = (size_t)c->num_multimask_outputs + 1;
    size_t Idim = D, hid = D > (size_t)c->iou_head_hidden ? D : (size_t)c->iou_head_hidden;
    w->keys = malloc(sizeof(float) * HW * D);
    w->kpos = malloc(sizeof(float) * HW * D);
    w->kattn = malloc(sizeof(float) * HW * D);
    w->up1 = malloc(sizeof(float) * (D / 4) * 4 * HW);
    w->up2 = malloc(sizeof(float) * (D / 8) * 4 * UPSCALE_BLOCK);
    w->masks = malloc(sizeof(float) * nmt * 16 * HW);
    w->tokens = malloc(sizeof(float) * Nt * D);
    w->queries = malloc(sizeof(float) * Nt * D);
    w->qpos = malloc(sizeof(float) * Nt * D);
    w->qattn = malloc(sizeof(float) * Nt * D);
    w->mlp_h = malloc(sizeof(float) * Nt * (size_t)c->dec_mlp_dim);
    w->hyper = malloc(sizeof(float) * nmt * (D / 8));
    w->iou_all = malloc(sizeof(float) * nmt);
    w->mlp_tmp = malloc(sizeof(float) * 2 * hid);
    size_t L = HW > (size_t)Nt ? HW : (size_t)Nt;
    w->Q = malloc(sizeof(float) * L * Idim);
    w->K = malloc(sizeof(float) * L * Idim);
    w->V = malloc(sizeof(float) * L * Idim);
    w->O = malloc(sizeof(float) * L * Idim);
    /* scores: cross attention [heads, Nt, HW] / [HW, heads, Nt], self attention one head [Nt, Nt] (larger
     * with many prompt points on a small image grid) */
    size_t nS = HW * Nt * (size_t)c->dec_heads > (size_t)Nt * Nt ? HW * Nt * (size_t)c->dec_heads : (size_t)Nt * Nt;
    w->S = malloc(sizeof(float) * nS);
    w->A = malloc(sizeof(float) * (size_t)c->dec_heads * Nt * D);
    w->PK = malloc(sizeof(float) * (size_t)c->dec_heads * Nt * D);
    float **p = (float **)w;
    for (size_t i = 0; i < sizeof *w / sizeof(float *); i++)
        if (!p[i]) {
            dec_ws_free(w);
            return saa_set_error(SAA_ENOMEM, "sam: out of memory for the mask decoder");
        }
    return SAA_OK;
}

/* transformer.py Attention: projections to the internal dim, heads, softmax(q k^T / sqrt(c)), out.
 * Qp/Kp/Vp: projections computed beforehand (shared by all prompts), or NULL. */
static void dec_attention(const sam_attn_w *a, int D, int heads, const float *q_in, int Lq, const float *k_in,
                          int Lk, const float *v_in, const float *Qp, const float *Kp, const float *Vp, float *out,
                          dec_ws *w)
{
    int Idim = a->internal, ch = Idim / heads;
    if (!Qp) saa_linear(q_in, Lq, D, a->q_w, a->q_b, Idim, w->Q), Qp = w->Q;
    if (!Kp) saa_linear(k_in, Lk, D, a->k_w, a->k_b, Idim, w->K), Kp = w->K;
    if (!Vp) saa_linear(v_in, Lk, D, a->v_w, a->v_b, Idim, w->V), Vp = w->V;
    float div = (float)sqrt((double)ch);
    for (int h = 0; h < heads; h++) {
        saa_gemm(0, 1, Lq, Lk, ch, 1.0f, Qp + h * ch, Idim, Kp + h * ch, Idim, 0.0f, w->S, Lk);
        size_t n = (size_t)Lq * Lk;
#pragma omp simd
        for (size_t i = 0; i < n; i++) w->S[i] = w->S[i] / div;
        saa_softmax_rows(w->S, Lq, Lk);
        saa_gemm(0, 0, Lq, ch, Lk, 1.0f, w->S, Lk, Vp + h * ch, Idim, 0.0f, w->O + h * ch, Idim);
    }
    saa_linear(w->O, Lq, Idim, a->o_w, a->o_b, D, out);
}

/* Token -> image cross attention reassociated for few queries (Lq = Nt) and many keys (HW): instead
 * of projecting all HW keys and values to the internal dim, the projections are moved to the query
 * side, which is the same product in another order:
 *   q_h . (Wk_h x + bk_h) = (q_h Wk_h) . x + q_h . bk_h,   sum_j p_j (Wv_h x_j + bv_h) = Wv_h (sum_j p_j x_j) + bv_h.
 * kpos: keys + pos [HW, D]; vals: keys [HW, D]; out [Nt, D]. */
static void t2i_attention(const sam_attn_w *a, int D, int heads, const float *q_in, int Nt, const float *kpos,
                          const float *vals, int HW, float *out, dec_ws *w)
{
    int Idim = a->internal, ch = Idim / heads, R = heads * Nt;
    saa_linear(q_in, Nt, D, a->q_w, a->q_b, Idim, w->Q);
    for (int h = 0; h < heads; h++) /* A_h = Q_h Wk_h [Nt, D] */
        saa_gemm(0, 0, Nt, D, ch, 1.0f, w->Q + h * ch, Idim, a->k_w + (size_t)h * ch * D, D, 0.0f,
                 w->A + (size_t)h * Nt * D, D);
    saa_gemm(0, 1, R, HW, D, 1.0f, w->A, D, kpos, D, 0.0f, w->S, HW);
    float div = (float)sqrt((double)ch);
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < Nt; i++) {
            const float *q = w->Q + (size_t)i * Idim + h * ch;
            float qb = 0.0f;
            for (int k = 0; k < ch; k++) qb += q[k] * a->k_b[h * ch + k];
            float *row = w->S + ((size_t)h * Nt + i) * HW;
#pragma omp simd
            for (int j = 0; j < HW; j++) row[j] = (row[j] + qb) / div;
        }
    saa_softmax_rows(w->S, R, HW);
    saa_gemm(0, 0, R, D, HW, 1.0f, w->S, HW, vals, D, 0.0f, w->PK, D);
    for (int h = 0; h < heads; h++) { /* O_h = PK_h Wv_h^T + bv_h */
        for (int i = 0; i < Nt; i++) memcpy(w->O + (size_t)i * Idim + h * ch, a->v_b + h * ch, sizeof(float) * ch);
        saa_gemm(0, 1, Nt, ch, D, 1.0f, w->PK + (size_t)h * Nt * D, D, a->v_w + (size_t)h * ch * D, D, 1.0f,
                 w->O + h * ch, Idim);
    }
    saa_linear(w->O, Nt, Idim, a->o_w, a->o_b, D, out);
}

/* Image -> token cross attention (HW queries, Nt keys), reassociated likewise: the query projection
 * is folded into the keys, (Wq_h x + bq_h) . k_h = x . (Wq_h^T k_h) + bq_h . k_h, and the output
 * projection into the values, Wo (sum_h P_h V_h) = sum_h P_h (V_h Wo_h^T). The scores are kept
 * transposed, [heads * Nt, HW], so the softmax over the Nt keys of each pixel runs across pixels
 * (vectorised). Q0: the projected queries when already known (layer 0, shared by all prompts), else
 * NULL. out [HW, D]. */
static void i2t_attention(const sam_attn_w *a, int D, int heads, const float *kpos, int HW, const float *Q0,
                          const float *qpos, const float *queries, int Nt, float *out, dec_ws *w)
{
    int Idim = a->internal, ch = Idim / heads, R = heads * Nt;
    saa_linear(qpos, Nt, D, a->k_w, a->k_b, Idim, w->K);
    saa_linear(queries, Nt, D, a->v_w, a->v_b, Idim, w->V);
    float div = (float)sqrt((double)ch);
    if (Q0) {
        for (int h = 0; h < heads; h++)
            saa_gemm(0, 1, Nt, HW, ch, 1.0f, w->K + h * ch, Idim, Q0 + h * ch, Idim, 0.0f, w->S + (size_t)h * Nt * HW, HW);
#pragma omp simd
        for (size_t i = 0; i < (size_t)R * HW; i++) w->S[i] = w->S[i] / div;
    } else {
        for (int h = 0; h < heads; h++) /* Bt_h = K_h Wq_h [Nt, D] */
            saa_gemm(0, 0, Nt, D, ch, 1.0f, w->K + h * ch, Idim, a->q_w + (size_t)h * ch * D, D, 0.0f,
                     w->A + (size_t)h * Nt * D, D);
        saa_gemm(0, 1, R, HW, D, 1.0f, w->A, D, kpos, D, 0.0f, w->S, HW);
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < Nt; i++) {
                float bias = 0.0f; /* bq_h . K_h[i] */
                for (int k = 0; k < ch; k++) bias += a->q_b[h * ch + k] * w->K[(size_t)i * Idim + h * ch + k];
                float *row = w->S + ((size_t)h * Nt + i) * HW;
#pragma omp simd
                for (int p = 0; p < HW; p++) row[p] = (row[p] + bias) / div;
            }
    }
    for (int h = 0; h < heads; h++) saa_softmax_cols(w->S + (size_t)h * Nt * HW, Nt, HW);
    for (int h = 0; h < heads; h++) /* C_h = V_h Wo_h^T [Nt, D] */
        saa_gemm(0, 1, Nt, D, ch, 1.0f, w->V + h * ch, Idim, a->o_w + h * ch, Idim, 0.0f, w->A + (size_t)h * Nt * D, D);
    saa_gemm(1, 0, HW, D, R, 1.0f, w->S, HW, w->A, D, 0.0f, out, D); /* + out_proj bias in update_keys */
}

/* ConvTranspose2d(kernel 2, stride 2) weight [C, O, 2, 2] with its columns reordered to (dy, dx, o):
 * x [P, C] @ wp [C, 4 * O] then gives, for each input pixel, its 2x2 output pixels one after the
 * other with their O channels contiguous, i.e. the output in pixel order (p, dy, dx). */
static float *convt2x2_weight_cols(const float *w, int C, int O)
{
    float *wp = malloc(sizeof(float) * (size_t)C * 4 * O);
    if (!wp) return NULL;
    for (int c = 0; c < C; c++)
        for (int o = 0; o < O; o++)
            for (int k = 0; k < 4; k++) wp[((size_t)c * 4 + k) * O + o] = w[((size_t)c * O + o) * 4 + k];
    return wp;
}

int sam_decoder_prepare(saa_sam *m)
{
    int D = m->cfg.prompt_dim;
    m->up0_wp = convt2x2_weight_cols(m->up0_w, D, D / 4);
    m->up3_wp = convt2x2_weight_cols(m->up3_w, D / 4, D / 8);
    if (!m->up0_wp || !m->up3_wp) return saa_set_error(SAA_ENOMEM, "out of memory");
    return SAA_OK;
}

/* Raster index in the 4h x 4w upscaled grid of pixel p in upscaling order ((i, j), (dy1, dx1),
 * (dy2, dx2)): row 4i + 2 dy1 + dy2, column 4j + 2 dx1 + dx2. */
static size_t upscaled_raster(size_t p, int w)
{
    size_t s2 = p & 3, s1 = (p >> 2) & 3, ij = p >> 4, i = ij / (size_t)w, j = ij % (size_t)w;
    return (4 * i + 2 * (s1 >> 1) + (s2 >> 1)) * 4 * (size_t)w + 4 * j + 2 * (s1 & 1) + (s2 & 1);
}

static void add_bias_rows(float *x, int64_t rows, const float *b, int n)
{
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * n;
#pragma omp simd
        for (int i = 0; i < n; i++) xr[i] += b[i];
    }
}

/* output_upscaling (ConvT -> LayerNorm2d -> GELU -> ConvT -> GELU) and masks = hyper_in @ upscaled
 * for `count` mask tokens from `first`, on channels-last keys [HW, D]. Every step after the first
 * ConvTranspose2d acts per pixel, so all run in upscaling pixel order (convt2x2_weight_cols), in
 * blocks that stay in cache; masks [count, UHW] come out in that order too (upscaled_raster).
 * LayerNorm2d is the channel LayerNorm of each pixel. up1 [4 HW, D/4], up2 [4 UPSCALE_BLOCK, D/8]. */
static void upscale_masks(const saa_sam *m, const float *keys, const float *hyper, int first, int count,
                          float *up1, float *up2, float *masks, float *trace_upscaled)
{
    const saa_sam_config *c = &m->cfg;
    int D = c->prompt_dim, D4 = D / 4, D8 = D / 8, HW = c->emb_h * c->emb_w, UHW = 16 * HW;
    saa_gemm(0, 0, HW, 4 * D4, D, 1.0f, keys, D, m->up0_wp, 4 * D4, 0.0f, up1, 4 * D4);
    for (int r0 = 0; r0 < 4 * HW; r0 += UPSCALE_BLOCK) {
        int n = 4 * HW - r0 < UPSCALE_BLOCK ? 4 * HW - r0 : UPSCALE_BLOCK;
        float *u = up1 + (size_t)r0 * D4;
        add_bias_rows(u, n, m->up0_b, D4);
        saa_layer_norm(u, n, D4, m->up1_w, m->up1_b, c->upscale_eps, u);
        sam_gelu(u, (int64_t)n * D4, 1);
        saa_gemm(0, 0, n, 4 * D8, D4, 1.0f, u, D4, m->up3_wp, 4 * D8, 0.0f, up2, 4 * D8);
        add_bias_rows(up2, 4 * (int64_t)n, m->up3_b, D8);
        sam_gelu(up2, (int64_t)n * 4 * D8, 1);
        for (int k = first; k < first + count; k++)
            saa_gemv(0, 4 * n, D8, 1.0f, up2, D8, hyper + (size_t)k * D8, 0.0f, masks + (size_t)k * UHW + 4 * (size_t)r0);
        if (trace_upscaled)
            for (int p = 0; p < 4 * n; p++)
                for (int ch = 0; ch < D8; ch++)
                    trace_upscaled[(size_t)ch * UHW + upscaled_raster(4 * (size_t)r0 + p, c->emb_w)] =
                        up2[(size_t)p * D8 + ch];
    }
}

static void add_to(float *dst, const float *a, const float *b, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) dst[i] = a[i] + b[i];
}

#define KEYS_BLOCK 64 /* rows per fused pass (64 KB per operand at D = 256) */

/* TwoWayAttentionBlock step (4) on the image side and the next key position input: keys =
 * LayerNorm(src + (attn + attn_b)), kpos = keys + pos, a block of rows at a time so each row is read
 * from memory once. attn: the attention output before its out_proj bias attn_b (the bias add of
 * nn.Linear happens here, in the same order). src may be keys. */
static void update_keys(const float *src, const float *attn, const float *attn_b, const float *pos, int HW, int D,
                        const float *nw, const float *nb, float eps, float *keys, float *kpos)
{
    for (int r0 = 0; r0 < HW; r0 += KEYS_BLOCK) {
        int n = HW - r0 < KEYS_BLOCK ? HW - r0 : KEYS_BLOCK;
        size_t o = (size_t)r0 * D;
        for (int r = 0; r < n; r++) {
            const float *sr = src + o + (size_t)r * D, *ar = attn + o + (size_t)r * D;
            float *kr = keys + o + (size_t)r * D;
#pragma omp simd
            for (int j = 0; j < D; j++) kr[j] = sr[j] + (ar[j] + attn_b[j]);
        }
        saa_layer_norm(keys + o, n, D, nw, nb, eps, keys + o);
        add_to(kpos + o, keys + o, pos + o, (size_t)n * D);
    }
}

/* MLP (mask_decoder.py): Linear layers with ReLU between, none after the last. One row. */
static void mlp_row(const sam_mlp_w *mlp, int depth, int in, int hidden, int out, const float *x, float *y,
                    float *tmp)
{
    const float *cur = x;
    float *bufs[2] = {tmp, tmp + hidden};
    for (int l = 0; l < depth; l++) {
        int i = l == 0 ? in : hidden, o = l == depth - 1 ? out : hidden;
        float *dst = l == depth - 1 ? y : bufs[l % 2];
        saa_linear(cur, 1, i, mlp->w[l], mlp->b[l], o, dst);
        if (l < depth - 1) saa_relu(dst, o);
        cur = dst;
    }
}

/* What all prompts share when there is no mask prompt (dense = no_mask_embed everywhere): the image
 * side of layer 0, which only depends on embedding + dense and the dense PE. */
typedef struct {
    const float *pos;  /* [HW, D] */
    const float *keys0, *kpos0; /* src and src + pos, [HW, D] */
    const float *t2i_K0, *t2i_V0, *i2t_Q0; /* layer 0 projections [HW, internal] */
} dec_shared;

static void decode_one(const saa_sam *m, const float *embedding, const float *sparse, const float *dense,
                       const dec_shared *sh, int b, int B, int N, int multimask, sam_decoder_trace *trace,
                       float *low_res, float *iou, dec_ws *w)
{
    (void)B;
    const saa_sam_config *c = &m->cfg;
    int D = c->prompt_dim, h = c->emb_h, wd = c->emb_w, HW = h * wd, nmt = c->num_multimask_outputs + 1;
    int Nt = 1 + nmt + N, heads = c->dec_heads, D8 = D / 8, UHW = 16 * HW;
    int m0 = multimask ? 1 : 0, nm = multimask ? nmt - 1 : 1;
    size_t big = (size_t)HW * D, nq = (size_t)Nt * D;
    /* tokens = [iou_token, mask_tokens, sparse] */
    memcpy(w->tokens, m->iou_token, sizeof(float) * D);
    memcpy(w->tokens + D, m->mask_tokens, sizeof(float) * (size_t)nmt * D);
    if (N) memcpy(w->tokens + (size_t)(1 + nmt) * D, sparse + (size_t)b * N * D, sizeof(float) * (size_t)N * D);
    memcpy(w->queries, w->tokens, sizeof(float) * nq);
    /* src = embedding + dense, flattened [HW, D], and src + pos (shared by all prompts without a mask) */
    const float *pos = sh->pos;
    if (!sh->keys0) {
        for (int c2 = 0; c2 < D; c2++) {
            const float *e = embedding + (size_t)c2 * HW, *d = dense + ((size_t)b * D + c2) * HW;
            for (int p = 0; p < HW; p++) w->keys[(size_t)p * D + c2] = e[p] + d[p];
        }
        add_to(w->kpos, w->keys, pos, big);
    }
    for (int l = 0; l < c->dec_depth; l++) {
        const sam_twoway_w *L = &m->layers[l];
        int shared = l == 0 && sh->keys0;
        const float *keys = shared ? sh->keys0 : w->keys, *kpos = shared ? sh->kpos0 : w->kpos;
        /* (1) self attention: layer 0 replaces the queries (skip_first_layer_pe) */
        if (l == 0) {
            dec_attention(&L->self_attn, D, heads, w->queries, Nt, w->queries, Nt, w->queries, NULL, NULL, NULL,
                          w->qattn, w);
            memcpy(w->queries, w->qattn, sizeof(float) * nq);
        } else {
            add_to(w->qpos, w->queries, w->tokens, nq);
            dec_attention(&L->self_attn, D, heads, w->qpos, Nt, w->qpos, Nt, w->queries, NULL, NULL, NULL, w->qattn, w);
            add_vec(w->queries, w->qattn, (int)nq);
        }
        saa_layer_norm(w->queries, Nt, D, L->norm_w[0], L->norm_b[0], c->dec_eps, w->queries);
        /* (2) token -> image */
        add_to(w->qpos, w->queries, w->tokens, nq);
        if (shared)
            dec_attention(&L->t2i, D, heads, w->qpos, Nt, kpos, HW, keys, NULL, sh->t2i_K0, sh->t2i_V0, w->qattn, w);
        else
            t2i_attention(&L->t2i, D, heads, w->qpos, Nt, kpos, keys, HW, w->qattn, w);
        add_vec(w->queries, w->qattn, (int)nq);
        saa_layer_norm(w->queries, Nt, D, L->norm_w[1], L->norm_b[1], c->dec_eps, w->queries);
        /* (3) MLP (ReLU) */
        saa_linear(w->queries, Nt, D, L->lin1_w, L->lin1_b, c->dec_mlp_dim, w->mlp_h);
        saa_relu(w->mlp_h, (int64_t)Nt * c->dec_mlp_dim);
        saa_linear(w->mlp_h, Nt, c->dec_mlp_dim, L->lin2_w, L->lin2_b, D, w->qattn);
        add_vec(w->queries, w->qattn, (int)nq);
        saa_layer_norm(w->queries, Nt, D, L->norm_w[2], L->norm_b[2], c->dec_eps, w->queries);
        /* (4) image -> token; then keys = norm4(keys + attn_out) and the next kpos */
        add_to(w->qpos, w->queries, w->tokens, nq);
        i2t_attention(&L->i2t, D, heads, kpos, HW, shared ? sh->i2t_Q0 : NULL, w->qpos, w->queries, Nt, w->kattn, w);
        update_keys(keys, w->kattn, L->i2t.o_b, pos, HW, D, L->norm_w[3], L->norm_b[3], c->dec_eps, w->keys, w->kpos);
        if (trace && l < 8) {
            if (trace->layer_queries[l]) memcpy(trace->layer_queries[l] + (size_t)b * nq, w->queries, sizeof(float) * nq);
            if (trace->layer_keys[l]) memcpy(trace->layer_keys[l] + (size_t)b * big, w->keys, sizeof(float) * big);
        }
    }
    /* final token -> image attention */
    add_to(w->qpos, w->queries, w->tokens, nq);
    t2i_attention(&m->final_attn, D, heads, w->qpos, Nt, w->kpos, w->keys, HW, w->qattn, w);
    add_vec(w->queries, w->qattn, (int)nq);
    saa_layer_norm(w->queries, Nt, D, m->norm_final_w, m->norm_final_b, c->dec_eps, w->queries);
    if (trace && trace->tokens_out) memcpy(trace->tokens_out + (size_t)b * nq, w->queries, sizeof(float) * nq);
    if (trace && trace->keys_out) memcpy(trace->keys_out + (size_t)b * big, w->keys, sizeof(float) * big);
    /* hypernetworks on the mask tokens (only those of the returned masks unless traced) */
    int first = trace && (trace->masks_all || trace->hyper_in) ? 0 : m0;
    int count = trace && (trace->masks_all || trace->hyper_in) ? nmt : nm;
    for (int i = first; i < first + count; i++)
        mlp_row(&m->hyper[i], 3, D, D, D8, w->queries + (size_t)(1 + i) * D, w->hyper + (size_t)i * D8, w->mlp_tmp);
    if (trace && trace->hyper_in) memcpy(trace->hyper_in + (size_t)b * nmt * D8, w->hyper, sizeof(float) * nmt * D8);
    upscale_masks(m, w->keys, w->hyper, first, count, w->up1, w->up2, w->masks,
                  trace && trace->upscaled ? trace->upscaled + (size_t)b * D8 * UHW : NULL);
    if (trace && trace->masks_all)
        for (int k = 0; k < nmt; k++)
            for (size_t p = 0; p < (size_t)UHW; p++)
                trace->masks_all[((size_t)b * nmt + k) * UHW + upscaled_raster(p, wd)] = w->masks[(size_t)k * UHW + p];
    mlp_row(&m->iou_head, c->iou_head_depth, D, c->iou_head_hidden, nmt, w->queries, w->iou_all, w->mlp_tmp);
    if (trace && trace->iou_all) memcpy(trace->iou_all + (size_t)b * nmt, w->iou_all, sizeof(float) * nmt);
    /* multimask_output: masks 1..nmt-1, else mask 0 */
    for (int k = 0; k < nm; k++) {
        float *dst = low_res + ((size_t)b * nm + k) * UHW;
        const float *src = w->masks + (size_t)(m0 + k) * UHW;
        for (size_t p = 0; p < (size_t)UHW; p++) dst[upscaled_raster(p, wd)] = src[p];
    }
    memcpy(iou + (size_t)b * nm, w->iou_all + m0, sizeof(float) * nm);
}

size_t sam_decoder_state_size(const saa_sam_config *c)
{
    size_t HW = (size_t)c->emb_h * c->emb_w, D = (size_t)c->prompt_dim, Idim = D / (size_t)c->dec_downsample;
    return 3 * HW * D + 3 * HW * Idim;
}

/* The per-image part of the decoder (no mask prompt): image PE and src flattened to [HW, D], src + PE,
 * and the layer-0 projections of the image side, which all prompts share. */
void sam_decoder_state(const saa_sam *m, const float *embedding, const float *dense_pe, float *state)
{
    const saa_sam_config *c = &m->cfg;
    int D = c->prompt_dim, HW = c->emb_h * c->emb_w, Idim = D / c->dec_downsample;
    size_t big = (size_t)HW * D;
    float *pos = state, *keys0 = pos + big, *kpos0 = keys0 + big, *K0 = kpos0 + big, *V0 = K0 + (size_t)HW * Idim,
          *Q0 = V0 + (size_t)HW * Idim;
    for (int c2 = 0; c2 < D; c2++) {
        const float *e = embedding + (size_t)c2 * HW, *pe = dense_pe + (size_t)c2 * HW;
        for (int p = 0; p < HW; p++) {
            pos[(size_t)p * D + c2] = pe[p];
            keys0[(size_t)p * D + c2] = e[p] + m->no_mask[c2];
        }
    }
    add_to(kpos0, keys0, pos, big);
    const sam_twoway_w *L0 = &m->layers[0];
    saa_linear(kpos0, HW, D, L0->t2i.k_w, L0->t2i.k_b, Idim, K0);
    saa_linear(keys0, HW, D, L0->t2i.v_w, L0->t2i.v_b, Idim, V0);
    saa_linear(kpos0, HW, D, L0->i2t.q_w, L0->i2t.q_b, Idim, Q0);
}

/* Per-thread decoder buffers, kept in the model so repeated calls neither allocate nor page-fault
 * ~40 MB per thread again; grown when a call needs more threads or tokens. */
struct sam_dec_scratch {
    int nthreads, Nt;
    dec_ws *ws;
};

void sam_dec_scratch_free(struct sam_dec_scratch *s)
{
    if (!s) return;
    for (int i = 0; i < s->nthreads; i++) dec_ws_free(&s->ws[i]);
    free(s->ws);
    free(s);
}

static dec_ws *dec_scratch_get(saa_sam *m, int nthreads, int Nt)
{
    struct sam_dec_scratch *s = m->dec_scratch;
    if (s && s->nthreads >= nthreads && s->Nt >= Nt) return s->ws;
    if (s && s->Nt > Nt) Nt = s->Nt;
    if (s && s->nthreads > nthreads) nthreads = s->nthreads;
    sam_dec_scratch_free(s);
    m->dec_scratch = s = calloc(1, sizeof *s);
    if (s) s->ws = calloc((size_t)nthreads, sizeof *s->ws);
    if (!s || !s->ws) {
        free(s);
        m->dec_scratch = NULL;
        saa_set_error(SAA_ENOMEM, "sam: out of memory for the mask decoder");
        return NULL;
    }
    s->Nt = Nt;
    for (; s->nthreads < nthreads; s->nthreads++)
        if (dec_ws_init(&s->ws[s->nthreads], &m->cfg, Nt) != SAA_OK) {
            sam_dec_scratch_free(s);
            m->dec_scratch = NULL;
            return NULL;
        }
    return s->ws;
}

int sam_decode_masks(saa_sam *m, const float *embedding, const float *dense_pe, const float *sparse,
                     const float *dense, int B, int N, int multimask, sam_decoder_trace *trace, float *low_res,
                     float *iou)
{
    const saa_sam_config *c = &m->cfg;
    int D = c->prompt_dim, HW = c->emb_h * c->emb_w, nmt = c->num_multimask_outputs + 1, Nt = 1 + nmt + N;
    int Idim = D / c->dec_downsample;
    int nthreads = saa_threads(), nt = B < nthreads ? B : nthreads;
    size_t big = (size_t)HW * D;
    /* the predictor's cached per-image state, else computed here */
    int cached = !dense && m->dec_state && m->has_image && embedding == m->embedding && dense_pe == m->dense_pe;
    float *tmp = cached ? NULL : malloc(sizeof(float) * (dense ? big : sam_decoder_state_size(c)));
    const float *state = cached ? m->dec_state : tmp;
    dec_ws *ws = NULL;
    if (!cached && !tmp) return saa_set_error(SAA_ENOMEM, "sam: out of memory for the mask decoder");
    if (!(ws = dec_scratch_get(m, nt, Nt))) {
        free(tmp);
        return SAA_ENOMEM;
    }
    if (dense) { /* image_pe flattened to [HW, D]; src is built per prompt */
        for (int c2 = 0; c2 < D; c2++)
            for (int p = 0; p < HW; p++) tmp[(size_t)p * D + c2] = dense_pe[(size_t)c2 * HW + p];
    } else if (!cached) {
        sam_decoder_state(m, embedding, dense_pe, tmp);
    }
    dec_shared sh = {state, NULL, NULL, NULL, NULL, NULL};
    if (!dense) {
        sh.keys0 = state + big, sh.kpos0 = state + 2 * big, sh.t2i_K0 = state + 3 * big;
        sh.t2i_V0 = sh.t2i_K0 + (size_t)HW * Idim, sh.i2t_Q0 = sh.t2i_V0 + (size_t)HW * Idim;
    }
    if (nt <= 1) {
        for (int b = 0; b < B; b++) decode_one(m, embedding, sparse, dense, &sh, b, B, N, multimask, trace, low_res, iou, &ws[0]);
    } else {
        /* one prompt per thread, each with single-threaded sgemm */
        openblas_set_num_threads(1);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
        for (int b = 0; b < B; b++) {
            int tid = 0;
#ifdef _OPENMP
            tid = omp_get_thread_num();
#endif
            decode_one(m, embedding, sparse, dense, &sh, b, B, N, multimask, trace, low_res, iou, &ws[tid]);
        }
        openblas_set_num_threads(nthreads);
    }
    free(tmp);
    return SAA_OK;
}

/* ---------- post-processing ---------- */

int sam_postprocess(const saa_sam *m, const float *low_res, int BC, int input_h, int input_w, int orig_h,
                    int orig_w, float *logits, float *cropped)
{
    int S = m->cfg.img_size, lh = 4 * m->cfg.emb_h, lw = 4 * m->cfg.emb_w;
    float *full = malloc(sizeof(float) * (size_t)BC * S * S);
    float *crop = cropped ? cropped : malloc(sizeof(float) * (size_t)BC * input_h * input_w);
    if (!full || !crop) {
        free(full);
        if (!cropped) free(crop);
        return saa_set_error(SAA_ENOMEM, "out of memory");
    }
    saa_interp_bilinear(low_res, BC, lh, lw, S, S, 0, full);
    for (int i = 0; i < BC; i++)
        for (int y = 0; y < input_h; y++)
            memcpy(crop + ((size_t)i * input_h + y) * input_w, full + ((size_t)i * S + y) * S,
                   sizeof(float) * input_w);
    free(full);
    saa_interp_bilinear(crop, BC, input_h, input_w, orig_h, orig_w, 0, logits);
    if (!cropped) free(crop);
    return SAA_OK;
}
