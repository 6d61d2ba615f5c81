/* Grounding DINO image side: SAA+ image preprocessing and the Swin Transformer backbone.
 *
 * Mirrors GroundingDINO/groundingdino/models/GroundingDINO/backbone/swin_transformer.py (SwinTransformer,
 * eval mode, ape=False) and the SAA+ transform of SAA/model.py: T.RandomResize([800], max_size=1333),
 * T.ToTensor(), T.Normalize(ImageNet) applied to a PIL RGB image. */
#ifndef SAA_MODELS_SWIN_H
#define SAA_MODELS_SWIN_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "saa/image.h"
#include "saa/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------- preprocessing ---------- */

/* Output size (oh, ow) of the official transforms.resize(image, None, size, max_size) on a w x h image:
 * get_size_with_aspect_ratio with Python's arithmetic (round half to even, int() truncation).
 * max_size <= 0 means None. */
void gdino_image_target_size(int w, int h, int size, int max_size, int *oh, int *ow);

/* RGB uint8 image -> PIL-bilinear resize to gdino_image_target_size(size, max_size), then ToTensor +
 * Normalize(mean [0.485,0.456,0.406], std [0.229,0.224,0.225]) in float32.
 * resized (optional, may be NULL): malloc'd oh*ow*3 uint8 (HWC); tensor: malloc'd float [3, oh, ow].
 * The detector gets RGB (SAA+ converts its cv2 BGR image with COLOR_BGR2RGB before the transform). */
int gdino_image_preprocess(const saa_image *rgb, int size, int max_size, uint8_t **resized, float **tensor,
                           int *oh, int *ow);

/* ---------- Swin Transformer ---------- */

#define SWIN_MAX_STAGES 4

typedef struct {
    int patch_size;                  /* 4 */
    int in_chans;                    /* 3 */
    int embed_dim;                   /* channels of stage 0 (stage i: embed_dim * 2^i) */
    int num_stages;                  /* 4 */
    int depths[SWIN_MAX_STAGES];     /* blocks per stage */
    int num_heads[SWIN_MAX_STAGES];
    int window_size;
    float mlp_ratio;                 /* hidden = int(dim * mlp_ratio) */
    int num_out;                     /* outputs, in stage order */
    int out_indices[SWIN_MAX_STAGES];
    int patch_norm;                  /* LayerNorm after the patch embedding */
    float ln_eps;                    /* nn.LayerNorm default 1e-5 */
    int pretrain_img_size;           /* informational (used only by ape, which Grounding DINO disables) */
} swin_config;

/* Official presets (build_swin_transformer + Grounding DINO's return_interm_indices [1, 2, 3]):
 * Swin-T of groundingdino_swint_ogc.pth (swin_T_224_1k) and Swin-B of groundingdino_swinb_cogcoor.pth
 * (swin_B_384_22k). */
void swin_config_swin_t(swin_config *c);
void swin_config_swin_b(swin_config *c);
/* build_swin_transformer's names: swin_T_224_1k, swin_B_224_22k, swin_B_384_22k, swin_L_224_22k,
 * swin_L_384_22k (out_indices [1, 2, 3]). */
int swin_config_from_name(const char *name, swin_config *c);
/* From a JSON object: the golden "swin_config" (embed_dim, depths, num_heads, window_size, and optionally
 * mlp_ratio, patch_size, out_indices, patch_norm, ape (must be false), layer_norm_eps, pretrain_img_size),
 * or a Grounding DINO config ("backbone" preset name and/or swin_embed_dim, swin_depths, swin_heads,
 * swin_window, swin_mlp_ratio, return_interm_indices); explicit keys override the preset. */
int swin_config_from_json(const cJSON *j, swin_config *c);

typedef struct swin_model swin_model;

/* Binds every tensor under prefix (e.g. "backbone.0."); the relative position index is computed here and,
 * when the checkpoint holds one, checked against it. Weights stay owned by w (keep it open). */
int swin_load(saa_weights *w, const char *prefix, const swin_config *cfg, swin_model **out);
void swin_free(swin_model *m);
const swin_config *swin_get_config(const swin_model *m);

/* Output feature maps, NCHW with batch 1: level l has shape [1, C[l], H[l], W[l]]. */
typedef struct {
    int num_levels;
    int C[SWIN_MAX_STAGES], H[SWIN_MAX_STAGES], W[SWIN_MAX_STAGES];
    float *data[SWIN_MAX_STAGES]; /* malloc'd, freed by swin_features_free */
} swin_features;

/* Runs the backbone on a normalised image x[3, H, W]. */
int swin_forward(swin_model *m, const float *x, int H, int W, swin_features *out);
void swin_features_free(swin_features *f);

/* ---------- building blocks (exposed for the unit tests) ---------- */

/* WindowAttention.relative_position_index: idx[N*N] with N = ws*ws. */
void swin_relative_position_index(int ws, int64_t *idx);
/* BasicLayer's SW-MSA mask for window number win (row-major over the Hp/ws x Wp/ws windows) of a
 * padded Hp x Wp map: mask[N*N], 0 or -100. */
void swin_shift_window_mask(int Hp, int Wp, int ws, int shift, int win, float *mask);
/* Gathers x[H, W, C] into windows of the cyclically shifted (by -shift), zero-padded map:
 * windows[(Hp/ws)*(Wp/ws) * ws*ws, C] (window_partition(torch.roll(pad(x)))). */
void swin_window_partition(const float *x, int H, int W, int C, int ws, int shift, float *windows);
/* Inverse: adds the window tokens back onto y[H, W, C] (y += window_reverse + roll back + crop). */
void swin_window_reverse_add(const float *windows, int H, int W, int C, int ws, int shift, float *y);

#ifdef __cplusplus
}
#endif
#endif
