/* The Grounding DINO model struct (weights bound from the checkpoint, plus the per-image state). */
#ifndef SAA_MODELS_GDINO_MODEL_H
#define SAA_MODELS_GDINO_MODEL_H

#include "models/deform_attn.h"
#include "models/gdino_impl.h"
#include "saa/gdino.h"
#include "saa/tokenizer.h"
#include "saa/weights.h"

#define GDINO_MAX_LAYERS 16

typedef struct { const float *w, *b; } gd_lin;
typedef struct { const float *w, *b; } gd_ln;
typedef struct { int n; gd_lin l[3]; } gd_mlp;
typedef struct { int nheads; const float *in_w, *in_b; gd_lin out; } gd_mha;
typedef struct { const float *conv_w, *conv_b, *gn_w, *gn_b; int cin, k, stride, pad; } gd_proj;

typedef struct { msda_layer attn; gd_ln norm1, norm2; gd_lin linear1, linear2; } gd_enc_layer;
typedef struct { gd_mha attn; gd_lin linear1, linear2; gd_ln norm1, norm2; } gd_text_layer;
typedef struct {
    int nheads, embed;
    gd_ln norm_v, norm_l;
    gd_lin v_proj, l_proj, values_v, values_l, out_v, out_l;
    const float *gamma_v, *gamma_l;
} gd_fusion;
typedef struct {
    msda_layer cross;
    gd_ln norm1;
    gd_mha ca_text;
    gd_ln catext_norm;
    gd_mha self_attn;
    gd_ln norm2;
    gd_lin linear1, linear2;
    gd_ln norm3;
} gd_dec_layer;

struct swin_model;
struct saa_bert;
struct saa_tokenizer;

struct saa_gdino {
    saa_gdino_config cfg;
    saa_weights *weights;
    struct swin_model *swin;
    struct saa_bert *bert;
    struct saa_tokenizer *tok;

    gd_lin feat_map;
    gd_proj proj[MSDA_MAX_LEVELS];
    const float *level_embed, *tgt_embed;
    gd_enc_layer enc[GDINO_MAX_LAYERS];
    gd_text_layer text[GDINO_MAX_LAYERS];
    gd_fusion fusion[GDINO_MAX_LAYERS];
    gd_dec_layer dec[GDINO_MAX_LAYERS];
    gd_mlp bbox_embed[GDINO_MAX_LAYERS];
    gd_ln dec_norm;
    gd_mlp ref_point_head;
    gd_lin enc_output;
    gd_ln enc_output_norm;
    gd_mlp enc_bbox;

    int has_image;
    gdino_image image;
};

/* Binds every transformer/head tensor (everything but backbone.* and bert.*). */
int gdino_bind_transformer(saa_gdino *g, saa_weights *w);

/* Model without backbone/text encoder (benchmarks of the transformer alone). Takes w. */
int gdino_load_transformer_only(saa_weights *w, const saa_gdino_config *cfg, saa_gdino **out);
/* Whole model from an open checkpoint (takes w). */
int saa_gdino_load_weights(saa_weights *w, const char *vocab_path, const saa_gdino_config *cfg, saa_gdino **out);

/* SAA+ preprocessing + Swin + input projections of an RGB image. */
int gdino_backbone(saa_gdino *g, const saa_image *rgb, gdino_image *out);
/* Tokenizer + sub-sentence masks + BERT of a normalised caption: *hidden = last_hidden_state [in->len, Hb]
 * (malloc'd). On failure nothing is left allocated. */
int gdino_encode_text(const saa_gdino *g, const char *caption, saa_text_input *in, float **hidden);

#endif
