/* Segment Anything (SAM) inference, numerically as the official segment_anything package
 * (SamPredictor.set_image / predict / predict_torch), reading the official checkpoints
 * (sam_vit_b_01ec64.pth, sam_vit_l_0b3195.pth, sam_vit_h_4b8939.pth) or any state_dict with the
 * official tensor names.
 *
 *   saa_sam *sam;
 *   saa_sam_load("sam_vit_h_4b8939.pth", NULL, &sam);   // config detected from the tensor shapes
 *   saa_sam_set_image(sam, &img);                         // image encoder runs once, embedding cached
 *   saa_sam_prompt p = {.batch = 3, .boxes = boxes};     // any number of boxes and/or points
 *   saa_sam_masks out;
 *   saa_sam_predict(sam, &p, &out);                       // one batched prompt-encoder + decoder call
 *   ... out.masks, out.iou, out.low_res_logits ...
 *   saa_sam_masks_free(&out);
 *   saa_sam_free(sam);
 */
#ifndef SAA_SAM_H
#define SAA_SAM_H

#include <stdint.h>

#include "saa/image.h"
#include "saa/tensor.h"
#include "saa/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SAA_SAM_MAX_DEPTH 128

/* Hyper-parameters (names follow segment_anything/build_sam.py and the modeling classes). */
typedef struct {
    /* ImageEncoderViT */
    int img_size, patch_size, in_chans;
    int embed_dim, depth, num_heads, mlp_dim, out_chans;
    int qkv_bias, use_abs_pos, use_rel_pos;
    int window_size;
    int n_global;
    int global_attn_indexes[SAA_SAM_MAX_DEPTH];
    float block_eps, neck_eps; /* block LayerNorm (build_sam passes 1e-6), neck LayerNorm2d */
    /* PromptEncoder */
    int prompt_dim, emb_h, emb_w, input_h, input_w, mask_in_chans;
    /* MaskDecoder + TwoWayTransformer */
    int dec_depth, dec_heads, dec_mlp_dim, dec_downsample;
    int num_multimask_outputs, iou_head_depth, iou_head_hidden;
    float dec_eps, upscale_eps;
    /* Sam */
    float pixel_mean[3], pixel_std[3];
    float mask_threshold;
} saa_sam_config;

/* "vit_b", "vit_l", "vit_h" (build_sam_vit_*). */
int saa_sam_config_preset(const char *name, saa_sam_config *cfg);
/* A config given as JSON: the "model" object of a golden folder's config.json (keys image_encoder,
 * prompt_encoder, mask_decoder, pixel_mean, pixel_std, mask_threshold); missing keys take the
 * build_sam defaults. */
struct cJSON;
int saa_sam_config_from_json(const struct cJSON *model, saa_sam_config *cfg);
/* Reads a JSON file: a golden folder's config.json (its "model" object is used) or the model object
 * itself. */
int saa_sam_config_from_file(const char *path, saa_sam_config *cfg);
/* Picks vit_b / vit_l / vit_h from the checkpoint's tensor shapes (embed dim and block count). */
int saa_sam_config_from_weights(const saa_weights *w, saa_sam_config *cfg);

typedef struct saa_sam saa_sam;

/* Opens a checkpoint (.pth or .safetensors; tensor names with or without a "model." style nesting
 * handled by saa_weights_open) and binds every tensor; cfg NULL = detect from shapes. A missing or
 * mis-shaped tensor fails with an error naming it and the expected shape. */
int saa_sam_load(const char *path, const saa_sam_config *cfg, saa_sam **out);
/* Same on an opened map; take_ownership: closed by saa_sam_free. */
int saa_sam_from_weights(saa_weights *w, int take_ownership, const saa_sam_config *cfg, saa_sam **out);
void saa_sam_free(saa_sam *m);
/* A map with every tensor the model binds, official names and shapes (rel-pos tables of the natural
 * length), filled with uniform random values in [-scale, scale] (biases, LayerNorm and embedding
 * tables alike) from a fixed seed: for benchmarks and tests of other sizes without a checkpoint. */
int saa_sam_random_weights(const saa_sam_config *cfg, uint64_t seed, float scale, saa_weights **out);
const saa_sam_config *saa_sam_get_config(const saa_sam *m);

/* SamPredictor.set_image: ResizeLongestSide(img_size) with PIL bilinear, normalisation, zero padding,
 * image encoder. img is 8-bit HxWx3 in the channel order SAM should see (SAA+ passes cv2's BGR
 * array, see sam_tiny README S1). The embedding is cached until the next call. */
int saa_sam_set_image(saa_sam *m, const saa_image *img);
/* Sets a precomputed embedding [out_chans, emb_h, emb_w] for an image of orig_h x orig_w. */
int saa_sam_set_embedding(saa_sam *m, const float *embedding, int orig_h, int orig_w);
/* The cached embedding [out_chans, emb_h, emb_w] (predictor.features), NULL before set_image. */
const float *saa_sam_image_embedding(const saa_sam *m);

/* How original-frame prompts are moved to the resized frame (ResizeLongestSide). */
typedef enum {
    SAA_SAM_COORDS_F64 = 0, /* SamPredictor.predict: apply_coords/apply_boxes in float64, then float32 */
    SAA_SAM_COORDS_F32 = 1  /* apply_boxes_torch / apply_coords_torch: float32(x) * float32(ratio) */
} saa_sam_coord_mode;

/* One batched call: `batch` prompts, each with n_points points and/or one box. */
typedef struct {
    int batch;
    int n_points;          /* points per prompt (0: no points) */
    const float *points;   /* [batch, n_points, 2] (x, y) in original image pixels */
    const int *labels;     /* [batch, n_points]: 1 foreground, 0 background, -1 ignored */
    const float *boxes;    /* [batch, 4] (x0, y0, x1, y1) in original image pixels, or NULL */
    int multimask_output;  /* 0: mask 0 only; 1: masks 1..num_multimask_outputs */
    saa_sam_coord_mode coord_mode;
} saa_sam_prompt;

typedef struct {
    int batch, n_masks;
    int h, w;              /* original image size */
    uint8_t *masks;        /* [batch, n_masks, h, w]: logits > mask_threshold (NULL from decode) */
    float *logits;         /* [batch, n_masks, h, w]: postprocess_masks output (NULL from decode) */
    float *iou;            /* [batch, n_masks] */
    int low_h, low_w;      /* 4 * emb_h, 4 * emb_w (256 x 256 for the official models) */
    float *low_res_logits; /* [batch, n_masks, low_h, low_w] */
} saa_sam_masks;

/* SamPredictor.predict_torch: prompt encoder, mask decoder, postprocess_masks, threshold. Like
 * set_image, one call at a time per model: the decoder keeps its work buffers in it. */
int saa_sam_predict(saa_sam *m, const saa_sam_prompt *p, saa_sam_masks *out);
/* The same without postprocessing: fills iou and low_res_logits only. */
int saa_sam_decode(saa_sam *m, const saa_sam_prompt *p, saa_sam_masks *out);
void saa_sam_masks_free(saa_sam_masks *r);

/* ResizeLongestSide.get_preprocess_shape. */
void saa_sam_preprocess_shape(int h, int w, int long_side, int *newh, int *neww);

#ifdef __cplusplus
}
#endif
#endif
