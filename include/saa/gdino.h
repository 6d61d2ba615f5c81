/* Grounding DINO (Swin backbone + BERT + fusion transformer) as SAA+ uses it: text-prompted box
 * proposals for one image and many captions.
 *
 *   saa_gdino_config cfg;  saa_gdino_config_preset("swint_ogc", &cfg);
 *   saa_gdino *g;          saa_gdino_load("groundingdino_swint_ogc.pth", "vocab.txt", &cfg, &g);
 *   saa_gdino_set_image(g, &rgb);                  // backbone + input projections, computed once
 *   saa_gdino_detect(g, "crack. hole.", &filter, &det);   // per caption
 *
 * Mirrors GroundingDINO/groundingdino/models/GroundingDINO/groundingdino.py (GroundingDINO.forward) and
 * SAA/model.py (get_grounding_output, bbox_suppression) of the SAA+ repository. */
#ifndef SAA_GDINO_H
#define SAA_GDINO_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "saa/image.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SAA_GDINO_MAX_STAGES 4

typedef struct {
    /* transformer (names of GroundingDINO_SwinT_OGC.py) */
    int hidden_dim;         /* 256: the official code hard-codes 256-d text/query sine embeddings */
    int nheads;             /* 8; the text enhancer and the fusion layers use nheads / 2 */
    int enc_layers, dec_layers;
    int dim_feedforward;    /* 2048; text enhancer FFN and fusion embed_dim use dim_feedforward / 2 */
    int num_queries;        /* 900 */
    int enc_n_points, dec_n_points;
    int num_feature_levels; /* 4: the backbone outputs + extra stride-2 levels */
    int max_text_len;       /* 256 */
    float pe_temperature_h, pe_temperature_w; /* 20 */
    /* Swin backbone (backbone.0.*) */
    int swin_patch_size, swin_embed_dim, swin_window;
    int swin_depths[SAA_GDINO_MAX_STAGES], swin_heads[SAA_GDINO_MAX_STAGES];
    float swin_mlp_ratio, swin_ln_eps;
    int swin_num_out, swin_out_indices[SAA_GDINO_MAX_STAGES]; /* return_interm_indices, [1, 2, 3] */
    /* BERT text encoder (bert.*) */
    int bert_vocab_size, bert_hidden, bert_layers, bert_heads, bert_intermediate, bert_max_position,
        bert_type_vocab;
    float bert_ln_eps;
    /* SAA+ preprocessing: T.RandomResize([resize_size], max_size=resize_max_size) */
    int resize_size, resize_max_size;
} saa_gdino_config;

/* "swint_ogc" (groundingdino_swint_ogc.pth, the SAA+ default) or "swinb" (groundingdino_swinb_cogcoor.pth). */
int saa_gdino_config_preset(const char *name, saa_gdino_config *cfg);
/* A config in the golden folders' config.json format: keys "model", "swin_config", "bert_config",
 * optional "model_fixed" and "preprocess" (resize_size, resize_max_size); values not given keep the
 * Swin-T OGC preset. */
int saa_gdino_config_from_json(const cJSON *root, saa_gdino_config *cfg);

typedef struct saa_gdino saa_gdino;

/* Loads a groundingdino checkpoint (.pth with the state dict under "model", or .safetensors) and the
 * BERT vocabulary. */
int saa_gdino_load(const char *weights_path, const char *vocab_path, const saa_gdino_config *cfg,
                   saa_gdino **out);
void saa_gdino_free(saa_gdino *g);
const saa_gdino_config *saa_gdino_get_config(const saa_gdino *g);

/* Preprocesses an RGB image and runs the backbone and input projections once; every following
 * saa_gdino_detect reuses them. */
int saa_gdino_set_image(saa_gdino *g, const saa_image *rgb);

/* SAA+ Model.bbox_suppression settings. */
typedef struct {
    float box_threshold;        /* max sigmoid score over the 256 text columns must exceed it */
    float text_threshold;       /* tokens above it form the phrase */
    float object_max_area, object_min_area; /* normalised w*h strictly inside (min, max) */
    const char *filtered_phrase; /* boxes whose phrase contains it are dropped (NULL: none) */
} saa_gdino_filter;

typedef struct {
    /* raw model outputs for the caption */
    int num_queries, num_tokens;
    float *logits;       /* sigmoid(pred_logits) [num_queries, num_tokens] (the 256 - num_tokens others are 0) */
    float *boxes;        /* pred_boxes [num_queries, 4] (cx, cy, w, h) normalised */
    char *caption;       /* SAA+-normalised caption: lower(), strip(), '.' appended */
    /* after bbox_suppression, in query order */
    int num_kept;
    int *kept_query;     /* query index of each kept box */
    float *kept_boxes;   /* [num_kept, 4] (cx, cy, w, h) normalised */
    float *kept_xyxy;    /* [num_kept, 4] pixel (x0, y0, x1, y1) in the original image */
    float *kept_scores;  /* max sigmoid score */
    char **kept_phrases; /* phrase + "(" + str(score)[:4] + ")" exactly as SAA+ */
} saa_gdino_detections;

int saa_gdino_detect(saa_gdino *g, const char *caption, const saa_gdino_filter *filter,
                     saa_gdino_detections *out);
void saa_gdino_detections_free(saa_gdino_detections *d);

#ifdef __cplusplus
}
#endif
#endif
