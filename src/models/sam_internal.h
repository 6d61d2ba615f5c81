/* SAM internals shared by sam.c (config, loading, predictor), sam_encoder.c, sam_decoder.c and the
 * golden checker (which runs every stage on stored inputs). */
#ifndef SAA_SAM_INTERNAL_H
#define SAA_SAM_INTERNAL_H

#include "saa/sam.h"

typedef struct {
    const float *norm1_w, *norm1_b, *norm2_w, *norm2_b;
    const float *qkv_w, *qkv_b, *proj_w, *proj_b;
    const float *lin1_w, *lin1_b, *lin2_w, *lin2_b;
    const float *rel_pos_h, *rel_pos_w; /* stored tables [len_h, head_dim], [len_w, head_dim] */
    int len_h, len_w;
    int window;     /* window size, 0 = global attention */
    int size;       /* attention grid side: window or token grid */
    float *rh, *rw; /* get_rel_pos results [size, size, head_dim] (owned) */
} sam_block_w;

typedef struct {
    const float *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b;
    int internal;
} sam_attn_w;

typedef struct {
    sam_attn_w self_attn, t2i, i2t;
    const float *norm_w[4], *norm_b[4];
    const float *lin1_w, *lin1_b, *lin2_w, *lin2_b;
} sam_twoway_w;

typedef struct {
    const float *w[8], *b[8];
} sam_mlp_w;

struct saa_sam {
    saa_sam_config cfg;
    saa_weights *weights;
    int owns_weights;
    int grid; /* token grid side (img_size / patch_size) */
    /* image encoder */
    const float *patch_w, *patch_b, *pos_embed;
    sam_block_w *blocks;
    const float *neck0_w, *neck1_w, *neck1_b, *neck2_w, *neck3_w, *neck3_b;
    /* prompt encoder */
    const float *pe_gauss; /* [2, prompt_dim/2] */
    const float *point_embed[4], *not_a_point, *no_mask;
    /* mask decoder */
    const float *iou_token, *mask_tokens;
    sam_twoway_w *layers;
    sam_attn_w final_attn;
    const float *norm_final_w, *norm_final_b;
    const float *up0_w, *up0_b, *up1_w, *up1_b, *up3_w, *up3_b;
    float *up0_wp, *up3_wp; /* the ConvTranspose2d layers as linears: weight [4 O, C] + bias [4 O] (owned) */
    sam_mlp_w *hyper; /* num_multimask_outputs + 1 */
    sam_mlp_w iou_head;
    /* predictor state */
    float *embedding; /* [out_chans, emb_h, emb_w] */
    float *dense_pe;  /* [prompt_dim, emb_h, emb_w] */
    float *dec_state; /* sam_decoder_state of the current image (set with the embedding) */
    struct sam_dec_scratch *dec_scratch; /* decoder buffers kept across calls (sam_decode_masks) */
    int has_image, orig_h, orig_w, input_h, input_w;
};

/* segment_anything/modeling/image_encoder.py: get_rel_pos (with the linear resampling of a table of
 * another length). table [len, dim] -> out [q_size, k_size, dim]. */
int sam_get_rel_pos(int q_size, int k_size, const float *table, int len, int dim, float *out);

/* Sam.preprocess on the resized uint8 image (HxWx3, nh x nw): input [3, img, img]. */
void sam_normalize_pad(const saa_sam_config *cfg, const uint8_t *resized, int nh, int nw, float *input);

/* Tests: nonzero forces the portable (non-AVX-512) attention softmax. */
extern int sam_disable_simd;
/* nn.GELU() (erf) over n values, vectorised as PyTorch's CPU kernel; threads split the range. */
void sam_gelu(float *x, int64_t n, int nthreads);

/* Encoder stages. tokens are NHWC [grid*grid, embed_dim]. */
int sam_patch_embed(const saa_sam *m, const float *input, float *tokens); /* conv, before pos_embed */
void sam_add_pos_embed(const saa_sam *m, float *tokens);
typedef struct sam_encoder_ws sam_encoder_ws;
sam_encoder_ws *sam_encoder_ws_new(const saa_sam *m);
void sam_encoder_ws_free(sam_encoder_ws *ws);
/* One Block in place on x; attn_out (optional) receives the attention branch before the residual add. */
int sam_encoder_block(const saa_sam *m, sam_encoder_ws *ws, int i, float *x, float *attn_out);
/* Neck on NHWC tokens; the optional outputs are NCHW [out_chans, grid, grid]; out is the embedding. */
int sam_neck(const saa_sam *m, const float *tokens, float *neck0, float *neck1, float *neck2, float *out);
/* Whole image encoder: input [3, img, img] -> embedding [out_chans, grid, grid]. */
int sam_encode(const saa_sam *m, const float *input, float *embedding);

/* Prompt encoder. */
int sam_dense_pe(const saa_sam *m, float *pe); /* [prompt_dim, emb_h, emb_w] */
/* ResizeLongestSide.apply_coords(_torch) on n (x, y) pairs. */
void sam_apply_coords(const float *xy, int n, int orig_h, int orig_w, int long_side, saa_sam_coord_mode mode,
                      float *out);
/* The same on double coordinates: SamPredictor.predict transforms float64 numpy prompts before the
 * float32 cast, so rounding them to float first can move the result by one ulp. */
void sam_apply_coords_f64(const double *xy, int n, int orig_h, int orig_w, int long_side, saa_sam_coord_mode mode,
                          float *out);
/* Number of sparse tokens for a prompt shape. */
int sam_sparse_count(int n_points, int has_boxes);
/* PromptEncoder.forward (no mask): coords/boxes already in the resized frame. sparse [B, N, D]. */
void sam_embed_prompts(const saa_sam *m, int B, int n_points, const float *coords, const int *labels,
                       const float *boxes, float *sparse);

/* Optional decoder intermediates (each NULL or sized as the golden tensors, per batch element
 * contiguous): layer_queries[l] [B, Nt, D], layer_keys[l] [B, HW, D], tokens_out [B, Nt, D],
 * keys_out [B, HW, D], upscaled [B, D/8, 4h, 4w], hyper_in [B, nmt, D/8], masks_all [B, nmt, 4h, 4w],
 * iou_all [B, nmt]. */
typedef struct {
    float *layer_queries[8], *layer_keys[8];
    float *tokens_out, *keys_out, *upscaled, *hyper_in, *masks_all, *iou_all;
} sam_decoder_trace;

/* MaskDecoder.forward. embedding [D, h, w] (shared), dense_pe [D, h, w], sparse [B, N, D], dense
 * [B, D, h, w] or NULL for the no-mask embedding. low_res [B, nm, 4h, 4w], iou [B, nm]. The
 * decoder's scratch buffers stay in m for the next call (one call at a time per model). */
int sam_decode_masks(saa_sam *m, const float *embedding, const float *dense_pe, const float *sparse,
                     const float *dense, int B, int N, int multimask, sam_decoder_trace *trace, float *low_res,
                     float *iou);

/* Derived decoder weights (at load). */
int sam_decoder_prepare(saa_sam *m);

/* Per-image decoder state shared by all prompts without a mask (computed by set_image). */
size_t sam_decoder_state_size(const saa_sam_config *c);
void sam_decoder_state(const saa_sam *m, const float *embedding, const float *dense_pe, float *state);
void sam_dec_scratch_free(struct sam_dec_scratch *s);

/* Sam.postprocess_masks: low_res [BC, lh, lw] -> logits [BC, orig_h, orig_w]; cropped (optional)
 * receives the first interpolation after the crop [BC, input_h, input_w]. */
int sam_postprocess(const saa_sam *m, const float *low_res, int BC, int input_h, int input_w, int orig_h,
                    int orig_w, float *logits, float *cropped);

#endif
