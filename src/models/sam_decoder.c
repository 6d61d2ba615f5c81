/* SAM prompt encoder, mask decoder and mask post-processing (mirrors segment_anything/modeling/
 * prompt_encoder.py, mask_decoder.py, transformer.py, sam.py: postprocess_masks, and
 * utils/transforms.py: ResizeLongestSide.apply_coords). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

void sam_dense_pe(const saa_sam *m, float *pe)
{
    /* PositionEmbeddingRandom.forward(image_embedding_size): (cumsum(ones) - 0.5) / size, C x H x W */
    int D = m->cfg.prompt_dim, F = D / 2, h = m->cfg.emb_h, w = m->cfg.emb_w;
    float *v = malloc(sizeof(float) * (size_t)D);
    if (!v) return;
    for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++) {
            float x = ((float)(j + 1) - 0.5f) / (float)w, y = ((float)(i + 1) - 0.5f) / (float)h;
            pe_encode(m->pe_gauss, F, x, y, v);
            for (int c = 0; c < D; c++) pe[((size_t)c * h + i) * w + j] = v[c];
        }
    free(v);
}

void sam_apply_coords(const float *xy, int n, int orig_h, int orig_w, int long_side, saa_sam_coord_mode mode,
                      float *out)
{
    int nh, nw;
    saa_sam_preprocess_shape(orig_h, orig_w, long_side, &nh, &nw);
    double rx = (double)nw / orig_w, ry = (double)nh / orig_h;
    for (int i = 0; i < n; i++) {
        if (mode == SAA_SAM_COORDS_F32) {
            out[2 * i] = xy[2 * i] * (float)rx;
            out[2 * i + 1] = xy[2 * i + 1] * (float)ry;
        } else {
            out[2 * i] = (float)((double)xy[2 * i] * rx);
            out[2 * i + 1] = (float)((double)xy[2 * i + 1] * ry);
        }
    }
}

int sam_sparse_count(int n_points, int has_boxes)
{
    /* _embed_points pads one point when there is no box */
    return (n_points > 0 ? n_points + (has_boxes ? 0 : 1) : 0) + (has_boxes ? 2 : 0);
}

static void add_vec(float *x, const float *a, int n)
{
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

/* transformer.py Attention: projections to the internal dim, heads, softmax(q k^T / sqrt(c)), out. */
static int dec_attention(const sam_attn_w *a, int D, int heads, const float *q_in, int Lq, const float *k_in,
                         int Lk, const float *v_in, float *out)
{
    int Idim = a->internal, ch = Idim / heads;
    float *Q = malloc(sizeof(float) * (size_t)Lq * Idim), *K = malloc(sizeof(float) * (size_t)Lk * Idim),
          *V = malloc(sizeof(float) * (size_t)Lk * Idim), *O = malloc(sizeof(float) * (size_t)Lq * Idim),
          *S = malloc(sizeof(float) * (size_t)Lq * Lk);
    if (!Q || !K || !V || !O || !S) {
        free(Q), free(K), free(V), free(O), free(S);
        return saa_set_error(SAA_ENOMEM, "out of memory");
    }
    saa_linear(q_in, Lq, D, a->q_w, a->q_b, Idim, Q);
    saa_linear(k_in, Lk, D, a->k_w, a->k_b, Idim, K);
    saa_linear(v_in, Lk, D, a->v_w, a->v_b, Idim, V);
    float div = (float)sqrt((double)ch);
    for (int h = 0; h < heads; h++) {
        saa_gemm(0, 1, Lq, Lk, ch, 1.0f, Q + h * ch, Idim, K + h * ch, Idim, 0.0f, S, Lk);
        size_t n = (size_t)Lq * Lk;
        for (size_t i = 0; i < n; i++) S[i] = S[i] / div;
        saa_softmax_rows(S, Lq, Lk);
        saa_gemm(0, 0, Lq, ch, Lk, 1.0f, S, Lk, V + h * ch, Idim, 0.0f, O + h * ch, Idim);
    }
    saa_linear(O, Lq, Idim, a->o_w, a->o_b, D, out);
    free(Q), free(K), free(V), free(O), free(S);
    return SAA_OK;
}

static void add_to(float *dst, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = a[i] + b[i];
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

int sam_decode_masks(const saa_sam *m, const float *embedding, const float *dense_pe, const float *sparse,
                     const float *dense, int B, int N, int multimask, sam_decoder_trace *trace, float *low_res,
                     float *iou)
{
    const saa_sam_config *c = &m->cfg;
    int D = c->prompt_dim, h = c->emb_h, w = c->emb_w, HW = h * w, nmt = c->num_multimask_outputs + 1;
    int Nt = 1 + nmt + N, heads = c->dec_heads, D4 = D / 4, D8 = D / 8, UH = 4 * h, UW = 4 * w, UHW = UH * UW;
    int m0 = multimask ? 1 : 0, nm = multimask ? nmt - 1 : 1;
    size_t big = (size_t)HW * D;
    float *pos = malloc(sizeof(float) * big), *keys = malloc(sizeof(float) * big), *kpos = malloc(sizeof(float) * big),
          *kattn = malloc(sizeof(float) * big);
    float *tokens = malloc(sizeof(float) * (size_t)Nt * D), *queries = malloc(sizeof(float) * (size_t)Nt * D),
          *qpos = malloc(sizeof(float) * (size_t)Nt * D), *qattn = malloc(sizeof(float) * (size_t)Nt * D);
    float *mlp_h = malloc(sizeof(float) * (size_t)Nt * c->dec_mlp_dim);
    float *src_nchw = malloc(sizeof(float) * big), *up1 = malloc(sizeof(float) * (size_t)D4 * 4 * HW),
          *up2 = malloc(sizeof(float) * (size_t)D8 * UHW);
    float *hyper = malloc(sizeof(float) * (size_t)nmt * D8), *masks = malloc(sizeof(float) * (size_t)nmt * UHW);
    float *iou_all = malloc(sizeof(float) * (size_t)nmt);
    int hid = D > c->iou_head_hidden ? D : c->iou_head_hidden;
    float *mlp_tmp = malloc(sizeof(float) * 2 * (size_t)hid);
    int rc = SAA_OK;
    if (!pos || !keys || !kpos || !kattn || !tokens || !queries || !qpos || !qattn || !mlp_h || !src_nchw || !up1 ||
        !up2 || !hyper || !masks || !iou_all || !mlp_tmp) {
        rc = saa_set_error(SAA_ENOMEM, "out of memory");
        goto done;
    }
    /* image_pe flattened to [HW, D] */
    for (int c2 = 0; c2 < D; c2++)
        for (int p = 0; p < HW; p++) pos[(size_t)p * D + c2] = dense_pe[(size_t)c2 * HW + p];
    for (int b = 0; b < B; b++) {
        /* tokens = [iou_token, mask_tokens, sparse]; src = embedding + dense, flattened [HW, D] */
        memcpy(tokens, m->iou_token, sizeof(float) * D);
        memcpy(tokens + D, m->mask_tokens, sizeof(float) * (size_t)nmt * D);
        if (N) memcpy(tokens + (size_t)(1 + nmt) * D, sparse + (size_t)b * N * D, sizeof(float) * (size_t)N * D);
        for (int c2 = 0; c2 < D; c2++) {
            const float *e = embedding + (size_t)c2 * HW;
            for (int p = 0; p < HW; p++)
                keys[(size_t)p * D + c2] =
                    e[p] + (dense ? dense[((size_t)b * D + c2) * HW + p] : m->no_mask[c2]);
        }
        memcpy(queries, tokens, sizeof(float) * (size_t)Nt * D);
        size_t nq = (size_t)Nt * D;
        for (int l = 0; l < c->dec_depth; l++) {
            const sam_twoway_w *L = &m->layers[l];
            /* (1) self attention: layer 0 replaces the queries (skip_first_layer_pe) */
            if (l == 0) {
                if ((rc = dec_attention(&L->self_attn, D, heads, queries, Nt, queries, Nt, queries, qattn))) goto done;
                memcpy(queries, qattn, sizeof(float) * nq);
            } else {
                add_to(qpos, queries, tokens, nq);
                if ((rc = dec_attention(&L->self_attn, D, heads, qpos, Nt, qpos, Nt, queries, qattn))) goto done;
                add_vec(queries, qattn, (int)nq);
            }
            saa_layer_norm(queries, Nt, D, L->norm_w[0], L->norm_b[0], c->dec_eps, queries);
            /* (2) token -> image */
            add_to(qpos, queries, tokens, nq);
            add_to(kpos, keys, pos, big);
            if ((rc = dec_attention(&L->t2i, D, heads, qpos, Nt, kpos, HW, keys, qattn))) goto done;
            add_vec(queries, qattn, (int)nq);
            saa_layer_norm(queries, Nt, D, L->norm_w[1], L->norm_b[1], c->dec_eps, queries);
            /* (3) MLP (ReLU) */
            saa_linear(queries, Nt, D, L->lin1_w, L->lin1_b, c->dec_mlp_dim, mlp_h);
            saa_relu(mlp_h, (int64_t)Nt * c->dec_mlp_dim);
            saa_linear(mlp_h, Nt, c->dec_mlp_dim, L->lin2_w, L->lin2_b, D, qattn);
            add_vec(queries, qattn, (int)nq);
            saa_layer_norm(queries, Nt, D, L->norm_w[2], L->norm_b[2], c->dec_eps, queries);
            /* (4) image -> token */
            add_to(qpos, queries, tokens, nq);
            if ((rc = dec_attention(&L->i2t, D, heads, kpos, HW, qpos, Nt, queries, kattn))) goto done;
            for (size_t i = 0; i < big; i++) keys[i] += kattn[i];
            saa_layer_norm(keys, HW, D, L->norm_w[3], L->norm_b[3], c->dec_eps, keys);
            if (trace && l < 8) {
                if (trace->layer_queries[l]) memcpy(trace->layer_queries[l] + (size_t)b * nq, queries, sizeof(float) * nq);
                if (trace->layer_keys[l]) memcpy(trace->layer_keys[l] + (size_t)b * big, keys, sizeof(float) * big);
            }
        }
        /* final token -> image attention */
        add_to(qpos, queries, tokens, nq);
        add_to(kpos, keys, pos, big);
        if ((rc = dec_attention(&m->final_attn, D, heads, qpos, Nt, kpos, HW, keys, qattn))) goto done;
        add_vec(queries, qattn, (int)nq);
        saa_layer_norm(queries, Nt, D, m->norm_final_w, m->norm_final_b, c->dec_eps, queries);
        if (trace && trace->tokens_out) memcpy(trace->tokens_out + (size_t)b * nq, queries, sizeof(float) * nq);
        if (trace && trace->keys_out) memcpy(trace->keys_out + (size_t)b * big, keys, sizeof(float) * big);
        /* output_upscaling on keys as [D, h, w] */
        for (int p = 0; p < HW; p++)
            for (int c2 = 0; c2 < D; c2++) src_nchw[(size_t)c2 * HW + p] = keys[(size_t)p * D + c2];
        saa_conv_transpose2d(src_nchw, 1, D, h, w, m->up0_w, D4, 2, 2, m->up0_b, 2, 0, up1);
        saa_layer_norm2d(up1, D4, (int64_t)4 * HW, m->up1_w, m->up1_b, c->upscale_eps, up1);
        saa_gelu_erf(up1, (int64_t)D4 * 4 * HW);
        saa_conv_transpose2d(up1, 1, D4, 2 * h, 2 * w, m->up3_w, D8, 2, 2, m->up3_b, 2, 0, up2);
        saa_gelu_erf(up2, (int64_t)D8 * UHW);
        if (trace && trace->upscaled) memcpy(trace->upscaled + (size_t)b * D8 * UHW, up2, sizeof(float) * D8 * UHW);
        /* hypernetworks on the mask tokens; masks = hyper_in @ upscaled */
        for (int i = 0; i < nmt; i++)
            mlp_row(&m->hyper[i], 3, D, D, D8, queries + (size_t)(1 + i) * D, hyper + (size_t)i * D8, mlp_tmp);
        if (trace && trace->hyper_in) memcpy(trace->hyper_in + (size_t)b * nmt * D8, hyper, sizeof(float) * nmt * D8);
        saa_gemm(0, 0, nmt, UHW, D8, 1.0f, hyper, D8, up2, UHW, 0.0f, masks, UHW);
        if (trace && trace->masks_all)
            memcpy(trace->masks_all + (size_t)b * nmt * UHW, masks, sizeof(float) * (size_t)nmt * UHW);
        mlp_row(&m->iou_head, c->iou_head_depth, D, c->iou_head_hidden, nmt, queries, iou_all, mlp_tmp);
        if (trace && trace->iou_all) memcpy(trace->iou_all + (size_t)b * nmt, iou_all, sizeof(float) * nmt);
        /* multimask_output: masks 1..nmt-1, else mask 0 */
        memcpy(low_res + (size_t)b * nm * UHW, masks + (size_t)m0 * UHW, sizeof(float) * (size_t)nm * UHW);
        memcpy(iou + (size_t)b * nm, iou_all + m0, sizeof(float) * nm);
    }
done:
    free(pos), free(keys), free(kpos), free(kattn), free(tokens), free(queries), free(qpos), free(qattn);
    free(mlp_h), free(src_nchw), free(up1), free(up2), free(hyper), free(masks), free(iou_all), free(mlp_tmp);
    return rc;
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
