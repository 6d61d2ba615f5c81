/* SAM prompt encoder, mask decoder and mask post-processing (mirrors segment_anything/modeling/
 * prompt_encoder.py, mask_decoder.py, transformer.py, sam.py: postprocess_masks, and
 * utils/transforms.py: ResizeLongestSide.apply_coords). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

#include "core/vmath.h"
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
int openblas_get_num_threads(void);

#define GROUP_MAX 8        /* prompts decoded together: their token-side products run as one batch */
#define UPSCALE_PIX 256    /* input pixels per upscaling block: 256 KB + 512 KB of outputs in cache */
#define KEYS_BLOCK 256     /* rows per fused key update (256 KB per operand at D = 256) */

/* The decoder works on a group of G prompts at a time. The token side (Nt tokens per prompt: all
 * linear layers, the self attention, the layer-0 token->image attention against the shared image
 * keys, the MLPs and heads) runs batched over the G*Nt rows; the image side ([HW, D] keys per
 * prompt: the cross attentions against them, the key updates, the upscaling) runs one prompt per
 * thread. All buffers are float* only (freed as arrays). */
typedef struct {
    float *tokens, *queries, *qpos, *qattn; /* [G*Nt, D], prompt-major */
    float *mlp_h;                           /* [G*Nt, mlp_dim] */
    float *Q, *K, *V, *O;                   /* attention projections [G*Nt, internal <= D] */
    float *Ki, *Vi;                         /* image->token keys and values, kept across the next self attention */
    float *Sp;                              /* their image->token scores or pos terms [heads, G*Nt, HW] */
    float *rows, *mlp_tmp;                  /* head inputs [G, D], hidden [2, G, hidden] */
    float *hyper, *iou_all;                 /* [G, nmt, D/8], [G, nmt] */
} dec_tok;

typedef struct {
    float *keys;        /* one prompt's image side [HW, D] */
    float *S;           /* its next token->image scores [heads * Nt, HW], made with the keys */
} dec_img;

typedef struct {
    float *S;             /* reassociated cross attention scores, [heads * Nt, HW] */
    float *St;            /* one head's token-side scores: [G*Nt, HW] or [Nt, Nt] */
    float *A, *An, *PK;   /* [heads * Nt, D] */
    float *qb;            /* [heads * Nt] */
    float *Qs;            /* the final attention's query rows of one prompt [Nt, internal] */
    float *attn;          /* image->token attention output, KEYS_BLOCK rows [KEYS_BLOCK, D] */
    float *up1, *up2, *masks;
} dec_thr;

static void free_floats(void *s, size_t size)
{
    float **p = s;
    for (size_t i = 0; i < size / sizeof(float *); i++) free(p[i]);
    memset(s, 0, size);
}

/* malloc of every (pointer, count) pair; 0 when all succeeded. */
static int alloc_floats(float **const *ptrs, const size_t *counts, int n)
{
    int ok = 1;
    for (int i = 0; i < n; i++) ok &= (*ptrs[i] = malloc(sizeof(float) * (counts[i] ? counts[i] : 1))) != NULL;
    return !ok;
}

/* Decoder buffers, kept in the model so repeated calls neither allocate nor page-fault again; grown
 * when a call needs a larger group, more prompt tokens or more threads. */
struct sam_dec_scratch {
    int G, Nt, nthreads;
    dec_tok tok;
    dec_img img[GROUP_MAX];
    dec_thr *thr;
};

void sam_dec_scratch_free(struct sam_dec_scratch *s)
{
    if (!s) return;
    free_floats(&s->tok, sizeof s->tok);
    for (int g = 0; g < GROUP_MAX; g++) free_floats(&s->img[g], sizeof s->img[g]);
    for (int t = 0; s->thr && t < s->nthreads; t++) free_floats(&s->thr[t], sizeof s->thr[t]);
    free(s->thr);
    free(s);
}

static struct sam_dec_scratch *dec_scratch_get(saa_sam *m, int G, int Nt, int nthreads)
{
    struct sam_dec_scratch *s = m->dec_scratch;
    if (s && s->G >= G && s->Nt >= Nt && s->nthreads >= nthreads) return s;
    if (s) {
        G = s->G > G ? s->G : G, Nt = s->Nt > Nt ? s->Nt : Nt;
        nthreads = s->nthreads > nthreads ? s->nthreads : nthreads;
    }
    sam_dec_scratch_free(s);
    m->dec_scratch = NULL;
    const saa_sam_config *c = &m->cfg;
    size_t D = (size_t)c->prompt_dim, HW = (size_t)c->emb_h * c->emb_w, nmt = (size_t)c->num_multimask_outputs + 1;
    size_t rows = (size_t)G * Nt, heads = (size_t)c->dec_heads;
    size_t hid = D > (size_t)c->iou_head_hidden ? D : (size_t)c->iou_head_hidden;
    size_t nS = rows * HW > (size_t)Nt * Nt ? rows * HW : (size_t)Nt * Nt;
    int fail = !(s = calloc(1, sizeof *s)) || !(s->thr = calloc((size_t)nthreads, sizeof *s->thr));
    if (!fail) {
        dec_tok *t = &s->tok;
        s->G = G, s->Nt = Nt, s->nthreads = nthreads;
        float **const tp[] = {&t->tokens, &t->queries, &t->qpos, &t->qattn, &t->mlp_h, &t->Q, &t->K, &t->V, &t->O,
                              &t->Ki, &t->Vi, &t->Sp, &t->rows, &t->mlp_tmp, &t->hyper, &t->iou_all};
        const size_t tn[] = {rows * D, rows * D, rows * D, rows * D, rows * (size_t)c->dec_mlp_dim, rows * D,
                             rows * D, rows * D, rows * D, rows * D, rows * D, heads * rows * HW, (size_t)G * D,
                             2 * (size_t)G * hid, (size_t)G * nmt * (D / 8), (size_t)G * nmt};
        _Static_assert(sizeof tp / sizeof *tp == sizeof tn / sizeof *tn, "one size per buffer");
        fail = alloc_floats(tp, tn, (int)(sizeof tn / sizeof *tn));
        for (int g = 0; g < G && !fail; g++) {
            float **const ip[] = {&s->img[g].keys, &s->img[g].S};
            const size_t in[] = {HW * D, heads * Nt * HW};
            fail = alloc_floats(ip, in, 2);
        }
        for (int i = 0; i < nthreads && !fail; i++) {
            dec_thr *w = &s->thr[i];
            float **const wp[] = {&w->S, &w->St, &w->A, &w->An, &w->PK, &w->qb, &w->Qs, &w->attn, &w->up1, &w->up2,
                                  &w->masks};
            const size_t wn[] = {heads * Nt * HW, nS, heads * Nt * D, heads * Nt * D, heads * Nt * D, heads * Nt,
                                 Nt * D, KEYS_BLOCK * D, (D / 4) * 4 * UPSCALE_PIX, (D / 8) * 16 * UPSCALE_PIX,
                                 nmt * 16 * HW};
            _Static_assert(sizeof wp / sizeof *wp == sizeof wn / sizeof *wn, "one size per buffer");
            fail = alloc_floats(wp, wn, (int)(sizeof wn / sizeof *wn));
        }
    }
    if (fail) {
        sam_dec_scratch_free(s);
        saa_set_error(SAA_ENOMEM, "sam: out of memory for the mask decoder");
        return NULL;
    }
    return m->dec_scratch = s;
}

/* transformer.py Attention on the token side, over `groups` independent sets of Lq queries and Lk
 * keys (rows of set g at g * Lq and g * Lk): projections batched over all rows, then per set and
 * head softmax(q k^T / sqrt(c)) v, the (set, head) pairs spread over the threads, each with one
 * head's scores (thr[t].St). Kp, Vp: key/value projections computed beforehand and shared by all
 * queries (groups 1), else NULL. out [groups * Lq, D]. */
static void tok_attention(const sam_attn_w *a, int D, int heads, int groups, const float *q_in, int Lq,
                          const float *k_in, const float *v_in, int Lk, const float *Kp, const float *Vp, float *out,
                          dec_tok *t, dec_thr *thr, int nthreads)
{
    int Idim = a->internal, ch = Idim / heads, pairs = groups * heads;
    saa_linear_cols(q_in, (int64_t)groups * Lq, D, a->q_w, a->q_b, Idim, t->Q, nthreads);
    if (!Kp) saa_linear_cols(k_in, (int64_t)groups * Lk, D, a->k_w, a->k_b, Idim, t->K, nthreads), Kp = t->K;
    if (!Vp) saa_linear_cols(v_in, (int64_t)groups * Lk, D, a->v_w, a->v_b, Idim, t->V, nthreads), Vp = t->V;
    float div = (float)sqrt((double)ch);
    size_t n = (size_t)Lq * Lk;
    int nt = nthreads < pairs ? nthreads : pairs;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1 && n * pairs > 65536)
    for (int gh = 0; gh < pairs; gh++) {
        int g = gh / heads, h = gh % heads;
        float *S = thr[omp_get_thread_num()].St;
        size_t qo = (size_t)g * Lq * Idim + (size_t)h * ch, ko = (size_t)g * Lk * Idim + (size_t)h * ch;
        saa_gemm(0, 1, Lq, Lk, ch, 1.0f, t->Q + qo, Idim, Kp + ko, Idim, 0.0f, S, Lk);
#pragma omp simd
        for (size_t i = 0; i < n; i++) S[i] = S[i] / div;
        saa_softmax_rows(S, Lq, Lk);
        saa_gemm(0, 0, Lq, ch, Lk, 1.0f, S, Lk, Vp + ko, Idim, 0.0f, t->O + qo, Idim);
    }
    saa_linear_cols(t->O, (int64_t)groups * Lq, Idim, a->o_w, a->o_b, D, out, nthreads);
}

/* Token -> image cross attention of one prompt, reassociated for few queries (Nt) and many keys
 * (HW): instead of projecting all HW keys and values to the internal dim, the projections are moved
 * to the query side, which is the same product in another order:
 *   q_h . (Wk_h x + bk_h) = (q_h Wk_h) . x + q_h . bk_h,   sum_j p_j (Wv_h x_j + bv_h) = Wv_h (sum_j p_j x_j) + bv_h.
 * Three parts: the query side (t2i_query), the scores against a block of keys + pos (t2i_scores,
 * run while the image step that makes the keys has them in cache) and the rest (t2i_finish).
 * Q: the prompt's projected queries [Nt, internal] -> An = [q_h Wk_h]_h [heads * Nt, D] and
 * qb = [q_h . bk_h]_h. */
static void t2i_query(const sam_attn_w *a, int D, int heads, const float *Q, int Nt, float *An, float *qb)
{
    int Idim = a->internal, ch = Idim / heads;
    for (int h = 0; h < heads; h++) {
        saa_gemm(0, 0, Nt, D, ch, 1.0f, Q + h * ch, Idim, a->k_w + (size_t)h * ch * D, D, 0.0f,
                 An + (size_t)h * Nt * D, D);
        for (int i = 0; i < Nt; i++) {
            const float *q = Q + (size_t)i * Idim + h * ch;
            float sum = 0.0f;
            for (int k = 0; k < ch; k++) sum += q[k] * a->k_b[h * ch + k];
            qb[h * Nt + i] = sum;
        }
    }
}

/* Scores S[:, p0 .. p0 + n) = qb + An kpos^T for n keys + pos rows (kpos [n, D]); S [R, HW]. */
static void t2i_scores(const float *An, const float *qb, int R, int D, const float *kpos, int n, float *S, int HW,
                       int p0)
{
    for (int r = 0; r < R; r++) {
        float *row = S + (size_t)r * HW + p0, v = qb[r];
#pragma omp simd
        for (int j = 0; j < n; j++) row[j] = v;
    }
    saa_gemm(0, 1, R, n, D, 1.0f, An, D, kpos, D, 1.0f, S + p0, HW);
}

/* softmax(S / sqrt(c)) over the keys, then O: the heads' outputs before out_proj [Nt, internal]
 * (row stride internal). S [heads * Nt, HW] is overwritten; vals: keys [HW, D]. */
static void t2i_finish(const sam_attn_w *a, int D, int heads, float *S, int Nt, const float *vals, int HW, float *O,
                       dec_thr *w)
{
    int Idim = a->internal, ch = Idim / heads, R = heads * Nt;
    float div = (float)sqrt((double)ch);
#pragma omp simd
    for (size_t i = 0; i < (size_t)R * HW; i++) S[i] = S[i] / div;
    saa_softmax_rows(S, R, HW);
    saa_gemm(0, 0, R, D, HW, 1.0f, S, HW, vals, D, 0.0f, w->PK, D);
    for (int h = 0; h < heads; h++) { /* O_h = PK_h Wv_h^T + bv_h */
        for (int i = 0; i < Nt; i++) memcpy(O + (size_t)i * Idim + h * ch, a->v_b + h * ch, sizeof(float) * ch);
        saa_gemm(0, 1, Nt, ch, D, 1.0f, w->PK + (size_t)h * Nt * D, D, a->v_w + (size_t)h * ch * D, D, 1.0f,
                 O + h * ch, Idim);
    }
}

/* Image -> token cross attention of one prompt (HW queries, Nt keys), reassociated likewise: the
 * query projection is folded into the keys, (Wq_h x + bq_h) . k_h = x . (Wq_h^T k_h) + bq_h . k_h,
 * and the output projection into the values, Wo (sum_h P_h V_h) = sum_h P_h (V_h Wo_h^T). The
 * queries are keys + pos: x = keys + pos gives keys . (Wq_h^T k_h) + k_h . (Wq_h pos) with the
 * second term made for the whole group (tok_i2t_scores), so keys + pos is never stored. The
 * scores are kept transposed, [heads * Nt, HW], so the softmax over the Nt keys of each pixel runs
 * across pixels (vectorised). K, V: the prompt's projected keys and values [Nt, internal]; Sp: the
 * prompt's first row of the group's scores, rows of one head sp_head apart: the pos term, or with
 * keys NULL (layer 0 without a mask prompt: the queries' projection Q0 is shared image state) the
 * whole scores. Leaves the probabilities in w->S and the V_h Wo_h^T in w->A: the output (without
 * the out_proj bias) is w->S^T w->A [HW, D], formed block by block in update_keys. */
static void i2t_image(const sam_attn_w *a, int D, int heads, const float *keys, int HW, const float *Sp,
                      size_t sp_head, const float *K, const float *V, int Nt, dec_thr *w)
{
    int Idim = a->internal, ch = Idim / heads, R = heads * Nt;
    float div = (float)sqrt((double)ch);
    for (int h = 0; h < heads; h++) {
        memcpy(w->S + (size_t)h * Nt * HW, Sp + h * sp_head, sizeof(float) * Nt * HW);
        if (keys) /* Bt_h = K_h Wq_h [Nt, D] */
            saa_gemm(0, 0, Nt, D, ch, 1.0f, K + h * ch, Idim, a->q_w + (size_t)h * ch * D, D, 0.0f,
                     w->A + (size_t)h * Nt * D, D);
    }
    if (keys) saa_gemm(0, 1, R, HW, D, 1.0f, w->A, D, keys, D, 1.0f, w->S, HW);
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < Nt; i++) {
            float bias = 0.0f; /* bq_h . K_h[i] (in Q0 already) */
            for (int k = 0; keys && k < ch; k++) bias += a->q_b[h * ch + k] * K[(size_t)i * Idim + h * ch + k];
            float *row = w->S + ((size_t)h * Nt + i) * HW;
#pragma omp simd
            for (int p = 0; p < HW; p++) row[p] = (row[p] + bias) / div;
        }
    for (int h = 0; h < heads; h++) saa_softmax_cols(w->S + (size_t)h * Nt * HW, Nt, HW);
    for (int h = 0; h < heads; h++) /* C_h = V_h Wo_h^T [Nt, D] */
        saa_gemm(0, 1, Nt, D, ch, 1.0f, V + h * ch, Idim, a->o_w + h * ch, Idim, 0.0f, w->A + (size_t)h * Nt * D, D);
}

/* ConvTranspose2d(kernel 2, stride 2) with weight [C, O, 2, 2] and bias [O] as an nn.Linear from C
 * to 4 * O outputs ordered (dy, dx, o): weight rows wl [4 * O, C] and the bias repeated 4 times,
 * bl [4 * O], stored together ([4 * O, C + 1] floats: wl, then bl). x [P, C] -> [P, 4 * O] then
 * gives, for each input pixel, its 2x2 output pixels one after the other with their O channels
 * contiguous, i.e. the output in pixel order (p, dy, dx); the bias is added after the product, as
 * torch's conv_transpose2d does. */
static float *convt2x2_as_linear(const float *w, const float *b, int C, int O)
{
    float *wl = malloc(sizeof(float) * (size_t)4 * O * (C + 1)), *bl = wl + (size_t)4 * O * C;
    if (!wl) return NULL;
    for (int k = 0; k < 4; k++)
        for (int o = 0; o < O; o++) {
            for (int c = 0; c < C; c++) wl[((size_t)k * O + o) * C + c] = w[((size_t)c * O + o) * 4 + k];
            bl[k * O + o] = b[o];
        }
    return wl;
}

int sam_decoder_prepare(saa_sam *m)
{
    int D = m->cfg.prompt_dim;
    m->up0_wp = convt2x2_as_linear(m->up0_w, m->up0_b, D, D / 4);
    m->up3_wp = convt2x2_as_linear(m->up3_w, m->up3_b, D / 4, D / 8);
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

/* output_upscaling (ConvT -> LayerNorm2d -> GELU -> ConvT -> GELU) and masks = hyper_in @ upscaled
 * for `count` mask tokens from `first`, on channels-last keys [HW, D]. Each step acts on the 2x2 /
 * 4x4 output pixels of one input pixel only, so all run on blocks of UPSCALE_PIX input pixels that
 * stay in cache, in upscaling pixel order (convt2x2_as_linear); the masks, w->masks [nmt, UHW] rows
 * first .. first + count - 1, come out in that order too (upscaled_raster). LayerNorm2d is the
 * channel LayerNorm of each pixel. */
static void upscale_masks(const saa_sam *m, const float *keys, const float *hyper, int first, int count,
                          dec_thr *w, float *trace_upscaled)
{
    const saa_sam_config *c = &m->cfg;
    int D = c->prompt_dim, D4 = D / 4, D8 = D / 8, HW = c->emb_h * c->emb_w, UHW = 16 * HW;
    for (int p0 = 0; p0 < HW; p0 += UPSCALE_PIX) {
        int n = 4 * (HW - p0 < UPSCALE_PIX ? HW - p0 : UPSCALE_PIX); /* first-upscaling pixels */
        float *u = w->up1, *up2 = w->up2;
        saa_linear(keys + (size_t)p0 * D, n / 4, D, m->up0_wp, m->up0_wp + (size_t)4 * D4 * D, 4 * D4, u);
        saa_layer_norm(u, n, D4, m->up1_w, m->up1_b, c->upscale_eps, u);
        sam_gelu(u, (int64_t)n * D4, 1);
        saa_linear(u, n, D4, m->up3_wp, m->up3_wp + (size_t)4 * D8 * D4, 4 * D8, up2);
        sam_gelu(up2, (int64_t)n * 4 * D8, 1);
        size_t q0 = 16 * (size_t)p0; /* first output pixel of the block */
        for (int k = first; k < first + count; k++)
            saa_gemv(0, 4 * n, D8, 1.0f, up2, D8, hyper + (size_t)k * D8, 0.0f, w->masks + (size_t)k * UHW + q0);
        if (trace_upscaled)
            for (int p = 0; p < 4 * n; p++)
                for (int ch = 0; ch < D8; ch++)
                    trace_upscaled[(size_t)ch * UHW + upscaled_raster(q0 + p, c->emb_w)] = up2[(size_t)p * D8 + ch];
    }
}

static void add_to(float *dst, const float *a, const float *b, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) dst[i] = a[i] + b[i];
}

/* TwoWayAttentionBlock step (4) on the image side after i2t_image: attn = P^T C + the out_proj bias
 * attn_b (filled in first and accumulated onto, as saa_linear does), keys = LayerNorm(src + attn),
 * then keys + pos and with it the scores of the next token->image attention (t2i_scores of An, qb
 * into Sn), KEYS_BLOCK rows at a time so the attention output and keys + pos never leave the cache.
 * P [R, HW] (transposed probabilities), C [R, D]. src may be keys. */
SAA_SIMD_CLONES static void update_keys(const float *P, const float *C, int R, const float *attn_b, const float *src,
                                        const float *pos, int HW, int D, const float *nw, const float *nb, float eps,
                                        const float *An, const float *qb, int Rn, float *keys, float *Sn, float *attn)
{
    for (int r0 = 0; r0 < HW; r0 += KEYS_BLOCK) {
        int n = HW - r0 < KEYS_BLOCK ? HW - r0 : KEYS_BLOCK;
        size_t o = (size_t)r0 * D;
        for (int r = 0; r < n; r++) memcpy(attn + (size_t)r * D, attn_b, sizeof(float) * D);
        saa_gemm(1, 0, n, D, R, 1.0f, P + r0, HW, C, D, 1.0f, attn, D);
        for (int r = 0; r < n; r++) {
            const float *sr = src + o + (size_t)r * D, *ar = attn + (size_t)r * D;
            float *kr = keys + o + (size_t)r * D;
#pragma omp simd
            for (int j = 0; j < D; j++) kr[j] = sr[j] + ar[j];
        }
        saa_layer_norm(keys + o, n, D, nw, nb, eps, keys + o);
        add_to(attn, keys + o, pos + o, (size_t)n * D);
        t2i_scores(An, qb, Rn, D, attn, n, Sn, HW, r0);
    }
}

/* MLP (mask_decoder.py): Linear layers with ReLU between, none after the last, on `rows` rows.
 * tmp: [2, rows, hidden]. */
static void mlp_rows(const sam_mlp_w *mlp, int depth, int in, int hidden, int out, const float *x, int rows, float *y,
                     float *tmp, int nthreads)
{
    const float *cur = x;
    float *bufs[2] = {tmp, tmp + (size_t)rows * hidden};
    for (int l = 0; l < depth; l++) {
        int i = l == 0 ? in : hidden, o = l == depth - 1 ? out : hidden;
        float *dst = l == depth - 1 ? y : bufs[l % 2];
        saa_linear_cols(cur, rows, i, mlp->w[l], mlp->b[l], o, dst, nthreads);
        if (l < depth - 1) saa_relu(dst, (int64_t)rows * o);
        cur = dst;
    }
}

/* What all prompts share when there is no mask prompt (dense = no_mask_embed everywhere): the image
 * side of layer 0, which only depends on embedding + dense and the dense PE. */
typedef struct {
    const float *pos;                      /* [HW, D] */
    const float *i2t_Qpos[8];              /* pos Wq^T of each layer's image->token attention [HW, internal] */
    const float *keys0, *kpos0;            /* src and src + pos, [HW, D] (NULL with a dense prompt) */
    const float *t2i_K0, *t2i_V0, *i2t_Q0; /* layer 0 projections [HW, internal] */
} dec_shared;

/* One sam_decode_masks call: its arguments, and the step the image-side loop runs. */
typedef enum { STEP_SRC, STEP_T2I, STEP_I2T, STEP_MASKS } dec_step;

typedef struct {
    const saa_sam *m;
    const float *embedding, *sparse, *dense;
    dec_shared sh;
    int B, N, Nt, multimask, first, count, nthreads;
    int tok_threads;           /* OpenMP threads of the token-side products (1 when sgemm is threaded) */
    int nfin;                  /* token rows the final attention computes (final_row) */
    sam_decoder_trace *trace;
    float *low_res, *iou;
    struct sam_dec_scratch *s;
    int b0, G;                 /* the current group of prompts */
    dec_step step;
    int layer;                 /* for STEP_T2I / STEP_I2T; dec_depth = the final attention */
} dec_call;

/* The attention whose scores the image step that makes keys for layer l also computes: layer l's
 * token->image attention, or the final one after the last layer. */
static const sam_attn_w *t2i_of(const saa_sam *m, int l)
{
    return l < m->cfg.dec_depth ? &m->layers[l].t2i : &m->final_attn;
}

/* Token row of the i-th row the final token->image attention computes. After it only the IoU token
 * and the returned masks' tokens are read (IoU head, hypernetworks), and attention, residual and
 * norm_final_attn act on each row alone, so the other rows are skipped unless traced. */
static int final_row(const dec_call *d, int i)
{
    return d->nfin == d->Nt || i == 0 ? i : 1 + d->first + i - 1;
}

/* The image-side step of prompt g of the group (thread scratch w). */
static void image_step(const dec_call *d, int g, dec_thr *w)
{
    const saa_sam *m = d->m;
    const saa_sam_config *c = &m->cfg;
    int D = c->prompt_dim, HW = c->emb_h * c->emb_w, heads = c->dec_heads, Nt = d->Nt, b = d->b0 + g, R = heads * Nt;
    int nmt = c->num_multimask_outputs + 1, D8 = D / 8, UHW = 16 * HW, l = d->layer;
    const dec_tok *t = &d->s->tok;
    const dec_img *im = &d->s->img[g];
    size_t big = (size_t)HW * D;
    int shared = l == 0 && d->sh.keys0;
    const float *keys = shared ? d->sh.keys0 : im->keys;
    switch (d->step) {
    case STEP_SRC: { /* src = embedding + dense, flattened [HW, D], and layer 0's t2i scores with src + pos */
        const sam_attn_w *a = t2i_of(m, 0);
        for (int ch = 0; ch < D; ch++) {
            const float *e = d->embedding + (size_t)ch * HW, *de = d->dense + ((size_t)b * D + ch) * HW;
            for (int p = 0; p < HW; p++) im->keys[(size_t)p * D + ch] = e[p] + de[p];
        }
        t2i_query(a, D, heads, t->Q + (size_t)g * Nt * a->internal, Nt, w->An, w->qb);
        for (int r0 = 0; r0 < HW; r0 += KEYS_BLOCK) {
            int n = HW - r0 < KEYS_BLOCK ? HW - r0 : KEYS_BLOCK;
            add_to(w->attn, im->keys + (size_t)r0 * D, d->sh.pos + (size_t)r0 * D, (size_t)n * D);
            t2i_scores(w->An, w->qb, R, D, w->attn, n, im->S, HW, r0);
        }
        break;
    }
    case STEP_T2I: { /* O of the final attention: its d->nfin rows first */
        const sam_attn_w *a = t2i_of(m, l);
        size_t ti = (size_t)g * Nt * a->internal;
        t2i_finish(a, D, heads, im->S, l < c->dec_depth ? Nt : d->nfin, im->keys, HW, t->O + ti, w);
        break;
    }
    case STEP_I2T: { /* layer l's image->token attention, the new keys and the next t2i scores */
        const sam_twoway_w *L = &m->layers[l];
        const sam_attn_w *an = t2i_of(m, l + 1);
        size_t ti = (size_t)g * Nt * L->i2t.internal;
        i2t_image(&L->i2t, D, heads, shared ? NULL : keys, HW, t->Sp + (size_t)g * Nt * HW, (size_t)d->G * Nt * HW,
                  t->Ki + ti, t->Vi + ti, Nt, w);
        const float *Qn = t->Q + (size_t)g * Nt * an->internal;
        int nq = Nt;
        if (l + 1 == c->dec_depth && d->nfin < Nt) { /* the final attention's rows */
            for (int i = 0; i < d->nfin; i++)
                memcpy(w->Qs + (size_t)i * an->internal, Qn + (size_t)final_row(d, i) * an->internal,
                       sizeof(float) * an->internal);
            Qn = w->Qs, nq = d->nfin;
        }
        t2i_query(an, D, heads, Qn, nq, w->An, w->qb);
        update_keys(w->S, w->A, R, L->i2t.o_b, keys, d->sh.pos, HW, D, L->norm_w[3], L->norm_b[3], c->dec_eps, w->An,
                    w->qb, heads * nq, im->keys, im->S, w->attn);
        if (d->trace && l < 8 && d->trace->layer_keys[l])
            memcpy(d->trace->layer_keys[l] + (size_t)b * big, im->keys, sizeof(float) * big);
        break;
    }
    case STEP_MASKS: {
        sam_decoder_trace *tr = d->trace;
        const float *hyper = t->hyper + (size_t)g * nmt * D8;
        upscale_masks(m, im->keys, hyper, d->first, d->count, w,
                      tr && tr->upscaled ? tr->upscaled + (size_t)b * D8 * UHW : NULL);
        if (tr && tr->masks_all)
            for (int k = 0; k < nmt; k++)
                for (size_t p = 0; p < (size_t)UHW; p++)
                    tr->masks_all[((size_t)b * nmt + k) * UHW + upscaled_raster(p, c->emb_w)] =
                        w->masks[(size_t)k * UHW + p];
        int m0 = d->multimask ? 1 : 0, nm = d->multimask ? nmt - 1 : 1;
        for (int k = 0; k < nm; k++) { /* multimask_output: masks 1..nmt-1, else mask 0 */
            float *dst = d->low_res + ((size_t)b * nm + k) * UHW;
            const float *src = w->masks + (size_t)(m0 + k) * UHW;
            for (size_t p = 0; p < (size_t)UHW; p++) dst[upscaled_raster(p, c->emb_w)] = src[p];
        }
        break;
    }
    }
}

/* Runs d->step for every prompt of the group: one prompt per OpenMP thread with single-threaded
 * sgemm, or (fewer prompts than threads: sgemm threaded, see sam_decode_masks) one after the other. */
static void image_steps(dec_call *d, dec_step step, int layer)
{
    d->step = step, d->layer = layer;
    int nt = d->tok_threads < d->G ? d->tok_threads : d->G;
    if (nt <= 1) {
        for (int g = 0; g < d->G; g++) image_step(d, g, &d->s->thr[0]);
        return;
    }
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int g = 0; g < d->G; g++) image_step(d, g, &d->s->thr[omp_get_thread_num()]);
}

/* Layer l's image->token scores for the whole group, on the token side: per head, the prompts'
 * projected token keys Ki_h [G*Nt, c] times the image side's (pos Wq_h^T)_h^T, the pos term, or
 * at layer 0 without a mask prompt the shared projected queries Q0_h^T, the whole scores ->
 * Sp [heads, G*Nt, HW]; the heads spread over the threads. */
static void tok_i2t_scores(dec_call *d, int l)
{
    const saa_sam_config *c = &d->m->cfg;
    dec_tok *t = &d->s->tok;
    int heads = c->dec_heads, Idim = d->m->layers[l].i2t.internal, ch = Idim / heads, rows = d->G * d->Nt;
    int HW = c->emb_h * c->emb_w, nt = d->tok_threads < heads ? d->tok_threads : heads;
    const float *Qimg = l == 0 && d->sh.keys0 ? d->sh.i2t_Q0 : d->sh.i2t_Qpos[l];
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)
    for (int h = 0; h < heads; h++)
        saa_gemm(0, 1, rows, HW, ch, 1.0f, t->Ki + h * ch, Idim, Qimg + h * ch, Idim, 0.0f,
                 t->Sp + (size_t)h * rows * HW, HW);
}

/* Step (1) of layer l on the group's queries: self attention (layer 0 replaces the queries,
 * skip_first_layer_pe), residual, norm1. */
static void self_attention_step(dec_call *d, int l)
{
    const saa_sam_config *c = &d->m->cfg;
    const sam_twoway_w *L = &d->m->layers[l];
    dec_tok *t = &d->s->tok;
    int D = c->prompt_dim, Nt = d->Nt, G = d->G;
    size_t nall = (size_t)G * Nt * D;
    if (l == 0) {
        tok_attention(&L->self_attn, D, c->dec_heads, G, t->queries, Nt, t->queries, t->queries, Nt, NULL, NULL,
                      t->qattn, t, d->s->thr, d->tok_threads);
        memcpy(t->queries, t->qattn, sizeof(float) * nall);
    } else {
        add_to(t->qpos, t->queries, t->tokens, nall);
        tok_attention(&L->self_attn, D, c->dec_heads, G, t->qpos, Nt, t->qpos, t->queries, Nt, NULL, NULL, t->qattn,
                      t, d->s->thr, d->tok_threads);
        add_vec(t->queries, t->qattn, (int)nall);
    }
    saa_layer_norm(t->queries, (int64_t)G * Nt, D, L->norm_w[0], L->norm_b[0], c->dec_eps, t->queries);
}

/* The query projection of token->image attention a: t->Q = q_proj(queries + query_pe). */
static void t2i_project(dec_call *d, const sam_attn_w *a)
{
    dec_tok *t = &d->s->tok;
    int D = d->m->cfg.prompt_dim, rows = d->G * d->Nt;
    add_to(t->qpos, t->queries, t->tokens, (size_t)rows * D);
    saa_linear_cols(t->qpos, rows, D, a->q_w, a->q_b, a->internal, t->Q, d->tok_threads);
}

/* TwoWayTransformer + MaskDecoder heads for prompts b0 .. b0 + G - 1. The token->image scores of
 * layer l >= 1 and of the final attention are computed by the image step that makes their keys
 * (they only need the queries after the previous layer's MLP, and the next self attention), so
 * keys + pos is used while in cache and need not be kept for them. */
static void decode_group(dec_call *d)
{
    const saa_sam *m = d->m;
    const saa_sam_config *c = &m->cfg;
    int D = c->prompt_dim, HW = c->emb_h * c->emb_w, nmt = c->num_multimask_outputs + 1, heads = c->dec_heads;
    int Nt = d->Nt, G = d->G, N = d->N, D8 = D / 8;
    int rows = G * Nt;
    size_t nq = (size_t)Nt * D, nall = (size_t)rows * D;
    dec_tok *t = &d->s->tok;
    sam_decoder_trace *tr = d->trace;
    /* tokens = [iou_token, mask_tokens, sparse] per prompt */
    for (int g = 0; g < G; g++) {
        float *tk = t->tokens + (size_t)g * nq;
        memcpy(tk, m->iou_token, sizeof(float) * D);
        memcpy(tk + D, m->mask_tokens, sizeof(float) * (size_t)nmt * D);
        if (N)
            memcpy(tk + (size_t)(1 + nmt) * D, d->sparse + (size_t)(d->b0 + g) * N * D, sizeof(float) * (size_t)N * D);
    }
    memcpy(t->queries, t->tokens, sizeof(float) * nall);
    self_attention_step(d, 0);
    if (!d->sh.keys0) { /* a dense prompt: the prompts' own src, and layer 0's scores with it */
        t2i_project(d, t2i_of(m, 0));
        image_steps(d, STEP_SRC, 0);
    }
    for (int l = 0; l < c->dec_depth; l++) {
        const sam_twoway_w *L = &m->layers[l];
        /* (2) token -> image: layer 0 against the shared image keys all prompts at once */
        if (l == 0 && d->sh.keys0) {
            add_to(t->qpos, t->queries, t->tokens, nall);
            tok_attention(&L->t2i, D, heads, 1, t->qpos, rows, NULL, NULL, HW, d->sh.t2i_K0, d->sh.t2i_V0, t->qattn, t,
                          d->s->thr, d->tok_threads);
        } else {
            image_steps(d, STEP_T2I, l);
            saa_linear_cols(t->O, rows, L->t2i.internal, L->t2i.o_w, L->t2i.o_b, D, t->qattn, d->tok_threads);
        }
        add_vec(t->queries, t->qattn, (int)nall);
        saa_layer_norm(t->queries, rows, D, L->norm_w[1], L->norm_b[1], c->dec_eps, t->queries);
        /* (3) MLP (ReLU) */
        saa_linear_cols(t->queries, rows, D, L->lin1_w, L->lin1_b, c->dec_mlp_dim, t->mlp_h, d->tok_threads);
        saa_relu(t->mlp_h, (int64_t)rows * c->dec_mlp_dim);
        saa_linear_cols(t->mlp_h, rows, c->dec_mlp_dim, L->lin2_w, L->lin2_b, D, t->qattn, d->tok_threads);
        add_vec(t->queries, t->qattn, (int)nall);
        saa_layer_norm(t->queries, rows, D, L->norm_w[2], L->norm_b[2], c->dec_eps, t->queries);
        if (tr && l < 8 && tr->layer_queries[l])
            memcpy(tr->layer_queries[l] + (size_t)d->b0 * nq, t->queries, sizeof(float) * nall);
        /* (4) image -> token: token keys and values batched; then the next layer's self attention and
         * the next token->image query projection, which the image step needs for the next scores */
        add_to(t->qpos, t->queries, t->tokens, nall);
        saa_linear_cols(t->qpos, rows, D, L->i2t.k_w, L->i2t.k_b, L->i2t.internal, t->Ki, d->tok_threads);
        saa_linear_cols(t->queries, rows, D, L->i2t.v_w, L->i2t.v_b, L->i2t.internal, t->Vi, d->tok_threads);
        tok_i2t_scores(d, l);
        if (l + 1 < c->dec_depth) self_attention_step(d, l + 1);
        t2i_project(d, t2i_of(m, l + 1));
        image_steps(d, STEP_I2T, l);
    }
    /* final token -> image attention (scores made by the last image step) on the d->nfin rows */
    const sam_attn_w *fa = &m->final_attn;
    int nf = d->nfin, Ia = fa->internal;
    image_steps(d, STEP_T2I, c->dec_depth);
    for (int g = 0; g < G; g++)
        memcpy(t->Q + (size_t)g * nf * Ia, t->O + (size_t)g * Nt * Ia, sizeof(float) * nf * Ia);
    saa_linear_cols(t->Q, G * nf, Ia, fa->o_w, fa->o_b, D, t->qattn, d->tok_threads);
    for (int g = 0; g < G; g++)
        for (int i = 0; i < nf; i++) {
            float *q = t->queries + ((size_t)g * Nt + final_row(d, i)) * D;
            add_vec(q, t->qattn + ((size_t)g * nf + i) * D, D);
            saa_layer_norm(q, 1, D, m->norm_final_w, m->norm_final_b, c->dec_eps, q);
        }
    if (tr && tr->tokens_out) memcpy(tr->tokens_out + (size_t)d->b0 * nq, t->queries, sizeof(float) * nall);
    if (tr && tr->keys_out)
        for (int g = 0; g < G; g++)
            memcpy(tr->keys_out + (size_t)(d->b0 + g) * HW * D, d->s->img[g].keys, sizeof(float) * HW * D);
    /* hypernetworks on the mask tokens (those of the returned masks), IoU head on the iou token */
    for (int k = d->first; k < d->first + d->count; k++) {
        for (int g = 0; g < G; g++)
            memcpy(t->rows + (size_t)g * D, t->queries + g * nq + (size_t)(1 + k) * D, sizeof(float) * D);
        mlp_rows(&m->hyper[k], 3, D, D, D8, t->rows, G, t->qattn, t->mlp_tmp, d->tok_threads);
        for (int g = 0; g < G; g++)
            memcpy(t->hyper + ((size_t)g * nmt + k) * D8, t->qattn + (size_t)g * D8, sizeof(float) * D8);
    }
    for (int g = 0; g < G; g++) memcpy(t->rows + (size_t)g * D, t->queries + g * nq, sizeof(float) * D);
    mlp_rows(&m->iou_head, c->iou_head_depth, D, c->iou_head_hidden, nmt, t->rows, G, t->iou_all, t->mlp_tmp,
             d->tok_threads);
    image_steps(d, STEP_MASKS, 0);
    int m0 = d->multimask ? 1 : 0, nm = d->multimask ? nmt - 1 : 1;
    for (int g = 0; g < G; g++) {
        int b = d->b0 + g;
        memcpy(d->iou + (size_t)b * nm, t->iou_all + (size_t)g * nmt + m0, sizeof(float) * nm);
        if (tr && tr->hyper_in)
            memcpy(tr->hyper_in + (size_t)b * nmt * D8, t->hyper + (size_t)g * nmt * D8, sizeof(float) * nmt * D8);
        if (tr && tr->iou_all) memcpy(tr->iou_all + (size_t)b * nmt, t->iou_all + (size_t)g * nmt, sizeof(float) * nmt);
    }
}

size_t sam_decoder_state_size(const saa_sam_config *c)
{
    size_t HW = (size_t)c->emb_h * c->emb_w, D = (size_t)c->prompt_dim, Idim = D / (size_t)c->dec_downsample;
    return HW * D + (size_t)c->dec_depth * HW * Idim + 2 * HW * D + 3 * HW * Idim;
}

/* The image PE flattened to [HW, D] and each layer's pos Wq^T [HW, internal] (image->token
 * attention), what every prompt shares; state: [HW, D + dec_depth * internal] as laid out below. */
static void decoder_pos_state(const saa_sam *m, const float *dense_pe, float *state)
{
    const saa_sam_config *c = &m->cfg;
    int D = c->prompt_dim, HW = c->emb_h * c->emb_w;
    for (int c2 = 0; c2 < D; c2++)
        for (int p = 0; p < HW; p++) state[(size_t)p * D + c2] = dense_pe[(size_t)c2 * HW + p];
    float *Qpos = state + (size_t)HW * D;
    for (int l = 0; l < c->dec_depth; l++) {
        const sam_attn_w *a = &m->layers[l].i2t;
        saa_linear(state, HW, D, a->q_w, NULL, a->internal, Qpos + (size_t)l * HW * a->internal);
    }
}

/* The per-image part of the decoder (no mask prompt): decoder_pos_state, then src = embedding +
 * no_mask_embed flattened to [HW, D], src + PE, and the layer-0 projections of the image side,
 * which all prompts share. */
void sam_decoder_state(const saa_sam *m, const float *embedding, const float *dense_pe, float *state)
{
    const saa_sam_config *c = &m->cfg;
    int D = c->prompt_dim, HW = c->emb_h * c->emb_w, Idim = D / c->dec_downsample;
    size_t big = (size_t)HW * D;
    decoder_pos_state(m, dense_pe, state);
    float *pos = state, *keys0 = pos + big + (size_t)c->dec_depth * HW * Idim, *kpos0 = keys0 + big;
    float *K0 = kpos0 + big, *V0 = K0 + (size_t)HW * Idim, *Q0 = V0 + (size_t)HW * Idim;
    for (int c2 = 0; c2 < D; c2++) {
        const float *e = embedding + (size_t)c2 * HW;
        for (int p = 0; p < HW; p++) keys0[(size_t)p * D + c2] = e[p] + m->no_mask[c2];
    }
    add_to(kpos0, keys0, pos, big);
    const sam_twoway_w *L0 = &m->layers[0];
    saa_linear(kpos0, HW, D, L0->t2i.k_w, L0->t2i.k_b, Idim, K0);
    saa_linear(keys0, HW, D, L0->t2i.v_w, L0->t2i.v_b, Idim, V0);
    saa_linear(kpos0, HW, D, L0->i2t.q_w, L0->i2t.q_b, Idim, Q0);
}

int sam_decode_masks(saa_sam *m, const float *embedding, const float *dense_pe, const float *sparse,
                     const float *dense, int B, int N, int multimask, sam_decoder_trace *trace, float *low_res,
                     float *iou)
{
    const saa_sam_config *c = &m->cfg;
    int D = c->prompt_dim, HW = c->emb_h * c->emb_w, nmt = c->num_multimask_outputs + 1, Nt = 1 + nmt + N;
    int Idim = D / c->dec_downsample, nthreads = saa_threads();
    if (B <= 0) return SAA_OK;
    /* groups of at most GROUP_MAX prompts, as even as possible */
    int ngroups = (B + GROUP_MAX - 1) / GROUP_MAX, Gmax = (B + ngroups - 1) / ngroups;
    size_t big = (size_t)HW * D;
    /* the predictor's cached per-image state, else computed here */
    int cached = !dense && m->dec_state && m->has_image && embedding == m->embedding && dense_pe == m->dense_pe;
    size_t npos = big + (size_t)c->dec_depth * HW * Idim; /* decoder_pos_state */
    float *tmp = cached ? NULL : malloc(sizeof(float) * (dense ? npos : sam_decoder_state_size(c)));
    if (!cached && !tmp) return saa_set_error(SAA_ENOMEM, "sam: out of memory for the mask decoder");
    struct sam_dec_scratch *s = dec_scratch_get(m, Gmax, Nt, nthreads);
    if (!s) {
        free(tmp);
        return SAA_ENOMEM;
    }
    if (dense) { /* src is built per prompt */
        decoder_pos_state(m, dense_pe, tmp);
    } else if (!cached) {
        sam_decoder_state(m, embedding, dense_pe, tmp);
    }
    const float *state = cached ? m->dec_state : tmp;
    dec_call d = {0};
    d.m = m, d.embedding = embedding, d.sparse = sparse, d.dense = dense, d.B = B, d.N = N, d.Nt = Nt;
    d.multimask = multimask, d.nthreads = nthreads, d.trace = trace, d.low_res = low_res, d.iou = iou, d.s = s;
    d.sh.pos = state;
    for (int l = 0; l < c->dec_depth; l++) d.sh.i2t_Qpos[l] = state + big + (size_t)l * HW * Idim;
    if (!dense) {
        d.sh.keys0 = state + npos, d.sh.kpos0 = d.sh.keys0 + big, d.sh.t2i_K0 = d.sh.kpos0 + big;
        d.sh.t2i_V0 = d.sh.t2i_K0 + (size_t)HW * Idim, d.sh.i2t_Q0 = d.sh.t2i_V0 + (size_t)HW * Idim;
    }
    /* only the returned masks' hypernetworks and products (all of them when traced) */
    int all = trace && (trace->masks_all || trace->hyper_in);
    d.first = all || !multimask ? 0 : 1, d.count = all ? nmt : multimask ? nmt - 1 : 1;
    d.nfin = trace ? Nt : 1 + d.count;
    /* With at least as many prompts as threads, the threads take a prompt each (and split the
     * token-side products) with single-threaded sgemm; with fewer, sgemm is threaded and the rest
     * runs on one thread. Never both: OpenBLAS's and OpenMP's spinning thread pools alternating on
     * the same cores cost more than threading the small products gains. */
    int omp_mode = B >= nthreads, blas_prev = openblas_get_num_threads(), omp_prev = omp_get_max_threads();
    d.tok_threads = omp_mode ? nthreads : 1;
    if (omp_mode) openblas_set_num_threads(1);
    else omp_set_num_threads(1); /* inside the core ops too */
    for (d.b0 = 0; d.b0 < B; d.b0 += d.G) {
        d.G = B - d.b0 < Gmax ? B - d.b0 : Gmax;
        decode_group(&d);
    }
    if (omp_mode) openblas_set_num_threads(blas_prev);
    else omp_set_num_threads(omp_prev);
    free(tmp);
    return SAA_OK;
}

/* ---------- post-processing ---------- */

int sam_postprocess(const saa_sam *m, const float *low_res, int BC, int input_h, int input_w, int orig_h,
                    int orig_w, float *logits, float *cropped)
{
    /* F.interpolate to img_size x img_size, crop [:input_h, :input_w], F.interpolate to the original
     * size: only the kept window of the first resampling is computed, and the second is the identity
     * (torch copies) when the image was not resized. */
    int S = m->cfg.img_size, lh = 4 * m->cfg.emb_h, lw = 4 * m->cfg.emb_w;
    int same = input_h == orig_h && input_w == orig_w;
    float *crop = cropped ? cropped : same ? logits : malloc(sizeof(float) * (size_t)BC * input_h * input_w);
    if (!crop) return saa_set_error(SAA_ENOMEM, "out of memory");
    saa_interp_bilinear_window(low_res, BC, lh, lw, S, S, 0, input_h, input_w, crop);
    if (crop != logits) saa_interp_bilinear(crop, BC, input_h, input_w, orig_h, orig_w, 0, logits);
    if (crop != logits && crop != cropped) free(crop);
    return SAA_OK;
}
