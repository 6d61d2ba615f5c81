/* Multi-scale deformable attention (Deformable DETR), as Grounding DINO runs it on the CPU:
 * groundingdino/models/GroundingDINO/ms_deform_attn.py, MultiScaleDeformableAttention.forward with the
 * pure-PyTorch path multi_scale_deformable_attn_pytorch (grid_sample bilinear, zero padding,
 * align_corners=False). Batch 1, no padded value tokens (SAA+ runs one unpadded image). */
#ifndef SAA_MODELS_DEFORM_ATTN_H
#define SAA_MODELS_DEFORM_ATTN_H

#include <stdint.h>

#include "saa/weights.h"

#define MSDA_MAX_LEVELS 8

typedef struct {
    int d_model, n_heads, n_levels, n_points;
    const float *sampling_offsets_w, *sampling_offsets_b; /* [heads*levels*points*2, d] */
    const float *attention_weights_w, *attention_weights_b; /* [heads*levels*points, d] */
    const float *value_proj_w, *value_proj_b;               /* [d, d] */
    const float *output_proj_w, *output_proj_b;             /* [d, d] */
} msda_layer;

/* Multi-scale value layout: level l is an H[l] x W[l] map starting at token start[l]. */
typedef struct {
    int n_levels;
    int64_t H[MSDA_MAX_LEVELS], W[MSDA_MAX_LEVELS], start[MSDA_MAX_LEVELS];
    int64_t n_tokens;
} msda_levels;

/* Row-parallel products for code that runs with OpenBLAS single-threaded (see gdino_run): the rows are
 * split over the OpenMP threads, each doing one single-threaded sgemm. Small products run directly.
 * par_linear_rows: y[rows, out] = x[rows, in] W[out, in]^T + b (b may be NULL).
 * par_gemm_rows: C[M, N] = alpha * A[M, K] op(B) + beta * C, op(B) = B^T (B [N, K]) if trans_b else B [K, N]. */
void par_linear_rows(const float *x, int64_t rows, int64_t in, const float *W, const float *b, int64_t out, float *y);
void par_gemm_rows(int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                   const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* Binds "<prefix>sampling_offsets.*", "attention_weights.*", "value_proj.*", "output_proj.*". */
void msda_bind(msda_layer *m, saa_binder *b, const char *prefix, int d_model, int n_heads, int n_levels,
               int n_points);

/* value_heads[heads][n_tokens][head_dim] = value_proj(value[n_tokens, d]) split per head (the layout
 * grid_sample reads: one contiguous channels-last map per head and level). tmp: n_tokens*d floats. */
void msda_project_value(const msda_layer *m, const float *value, int64_t n_tokens, float *value_heads,
                        float *tmp);

/* out[nq, d] = output_proj(deformable attention of query[nq, d] over value_heads).
 * ref_dim 2: ref[nq, 2] = (x, y) in [0,1], locations = ref + offset / (W_l, H_l) (encoder);
 * ref_dim 4: ref[nq, 4] = (cx, cy, w, h), locations = ref_xy + offset / n_points * ref_wh * 0.5 (decoder).
 * The same reference is used on every level (valid_ratios are 1 without padding).
 * tmp: nq*d floats (out must not alias it). Returns SAA_OK or SAA_ENOMEM. */
int msda_forward(const msda_layer *m, const msda_levels *lv, const float *query, int64_t nq, const float *ref,
                 int ref_dim, const float *value_heads, float *out, float *tmp);

/* The same attention with value_proj applied after sampling: bilinear sampling and the attention-weighted
 * sum are linear, so sum a * bilinear(value W^T + b) = (sum a * bilinear(value)) W^T + b * (weight that fell
 * inside the maps). Cheaper when the queries are few (decoder: nq << tokens) as no projected copy of the
 * value tokens is formed. value: [n_tokens, d] raw (memory). */
int msda_forward_unprojected(const msda_layer *m, const msda_levels *lv, const float *query, int64_t nq,
                             const float *ref, int ref_dim, const float *value, float *out);

#endif
