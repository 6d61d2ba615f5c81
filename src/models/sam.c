/* SAM: configuration (presets, JSON, detection from shapes), checkpoint binding, and the predictor
 * (mirrors segment_anything/build_sam.py and predictor.py: SamPredictor). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "models/sam_internal.h"
#include "saa/json.h"

/* ---------- configuration ---------- */

/* build_sam._build_sam with the encoder of vit_h; callers overwrite what differs. */
static void config_defaults(saa_sam_config *c)
{
    memset(c, 0, sizeof *c);
    c->img_size = 1024;
    c->patch_size = 16;
    c->in_chans = 3;
    c->embed_dim = 1280;
    c->depth = 32;
    c->num_heads = 16;
    c->mlp_dim = 4 * 1280;
    c->out_chans = 256;
    c->qkv_bias = 1;
    c->use_abs_pos = 1;
    c->use_rel_pos = 1;
    c->window_size = 14;
    c->n_global = 4;
    int g[4] = {7, 15, 23, 31};
    memcpy(c->global_attn_indexes, g, sizeof g);
    c->block_eps = 1e-6f;
    c->neck_eps = 1e-6f;
    c->prompt_dim = 256;
    c->emb_h = c->emb_w = 64;
    c->input_h = c->input_w = 1024;
    c->mask_in_chans = 16;
    c->dec_depth = 2;
    c->dec_heads = 8;
    c->dec_mlp_dim = 2048;
    c->dec_downsample = 2;
    c->num_multimask_outputs = 3;
    c->iou_head_depth = 3;
    c->iou_head_hidden = 256;
    c->dec_eps = 1e-5f;
    c->upscale_eps = 1e-6f;
    const float mean[3] = {123.675f, 116.28f, 103.53f}, std[3] = {58.395f, 57.12f, 57.375f};
    memcpy(c->pixel_mean, mean, sizeof mean);
    memcpy(c->pixel_std, std, sizeof std);
    c->mask_threshold = 0.0f;
}

int saa_sam_config_preset(const char *name, saa_sam_config *cfg)
{
    config_defaults(cfg);
    int dim, depth, heads, g[4];
    if (!strcmp(name, "vit_h")) {
        dim = 1280, depth = 32, heads = 16;
        g[0] = 7, g[1] = 15, g[2] = 23, g[3] = 31;
    } else if (!strcmp(name, "vit_l")) {
        dim = 1024, depth = 24, heads = 16;
        g[0] = 5, g[1] = 11, g[2] = 17, g[3] = 23;
    } else if (!strcmp(name, "vit_b")) {
        dim = 768, depth = 12, heads = 12;
        g[0] = 2, g[1] = 5, g[2] = 8, g[3] = 11;
    } else {
        return saa_set_error(SAA_EINVAL, "sam: unknown preset \"%s\" (expected vit_b, vit_l or vit_h)", name);
    }
    cfg->embed_dim = dim;
    cfg->depth = depth;
    cfg->num_heads = heads;
    cfg->mlp_dim = 4 * dim;
    cfg->n_global = 4;
    memcpy(cfg->global_attn_indexes, g, sizeof g);
    return SAA_OK;
}

static const cJSON *jget(const cJSON *o, const char *key)
{
    return o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

static void jint(const cJSON *o, const char *key, int *v)
{
    const cJSON *n = jget(o, key);
    if (cJSON_IsNumber(n)) *v = (int)n->valuedouble;
    else if (cJSON_IsBool(n)) *v = cJSON_IsTrue(n);
}

static void jfloat(const cJSON *o, const char *key, float *v)
{
    const cJSON *n = jget(o, key);
    if (cJSON_IsNumber(n)) *v = (float)n->valuedouble;
}

static int jpair(const cJSON *o, const char *key, int *a, int *b)
{
    const cJSON *n = jget(o, key);
    if (cJSON_IsArray(n) && cJSON_GetArraySize(n) == 2) {
        *a = (int)cJSON_GetArrayItem(n, 0)->valuedouble;
        *b = (int)cJSON_GetArrayItem(n, 1)->valuedouble;
        return 1;
    }
    if (cJSON_IsNumber(n)) {
        *a = *b = (int)n->valuedouble;
        return 1;
    }
    return 0;
}

static int check_config(const saa_sam_config *c)
{
    /* img_size need not be a multiple of the patch: PatchEmbed's stride-patch conv drops the remainder
     * and the token grid is img_size // patch_size (ImageEncoderViT.pos_embed) */
    if (c->img_size <= 0 || c->patch_size <= 0 || c->img_size < c->patch_size || c->embed_dim <= 0 ||
        c->num_heads <= 0 || c->embed_dim % c->num_heads || c->depth <= 0 || c->depth > SAA_SAM_MAX_DEPTH ||
        c->window_size < 0 || c->mlp_dim <= 0 || c->out_chans <= 0 || c->in_chans != 3)
        return saa_set_error(SAA_EINVAL, "sam config: inconsistent image encoder (img_size %d, patch %d, embed %d, "
                             "heads %d, depth %d, in_chans %d)", c->img_size, c->patch_size, c->embed_dim,
                             c->num_heads, c->depth, c->in_chans);
    /* the prompt dim must be even (PositionEmbeddingRandom(dim // 2) gives sin and cos halves) and at
     * least 8 (output_upscaling ends with dim // 8 channels); MaskDecoder floors dim / 4 and dim / 8 */
    if (c->prompt_dim < 8 || c->prompt_dim % 2 || c->prompt_dim != c->out_chans || c->emb_h <= 0 ||
        c->emb_w <= 0 || c->dec_heads <= 0 || c->dec_downsample <= 0 ||
        (c->prompt_dim / c->dec_downsample) % c->dec_heads || c->dec_depth < 1 || c->dec_depth > 8 ||
        c->num_multimask_outputs < 0 || c->iou_head_depth < 1 || c->iou_head_depth > 8)
        return saa_set_error(SAA_EINVAL, "sam config: inconsistent prompt encoder / mask decoder (dim %d, "
                             "out_chans %d, heads %d, downsample %d, depth %d)", c->prompt_dim, c->out_chans,
                             c->dec_heads, c->dec_downsample, c->dec_depth);
    if (c->emb_h != c->img_size / c->patch_size || c->emb_w != c->img_size / c->patch_size)
        return saa_set_error(SAA_EINVAL, "sam config: image_embedding_size %dx%d differs from the token grid %d",
                             c->emb_h, c->emb_w, c->img_size / c->patch_size);
    for (int i = 0; i < c->n_global; i++)
        if (c->global_attn_indexes[i] < 0 || c->global_attn_indexes[i] >= c->depth)
            return saa_set_error(SAA_EINVAL, "sam config: global attention index %d outside depth %d",
                                 c->global_attn_indexes[i], c->depth);
    return SAA_OK;
}

int saa_sam_config_from_json(const struct cJSON *model, saa_sam_config *c)
{
    config_defaults(c);
    if (!cJSON_IsObject(model)) return saa_set_error(SAA_EINVAL, "sam config: expected a JSON object");
    const cJSON *ie = jget(model, "image_encoder"), *pe = jget(model, "prompt_encoder"),
                *md = jget(model, "mask_decoder"), *tr = jget(md, "transformer");
    jint(ie, "img_size", &c->img_size);
    jint(ie, "patch_size", &c->patch_size);
    jint(ie, "in_chans", &c->in_chans);
    jint(ie, "embed_dim", &c->embed_dim);
    jint(ie, "depth", &c->depth);
    jint(ie, "num_heads", &c->num_heads);
    c->mlp_dim = 4 * c->embed_dim;
    float ratio = 0;
    jfloat(ie, "mlp_ratio", &ratio);
    if (ratio > 0) c->mlp_dim = (int)(c->embed_dim * ratio);
    jint(ie, "mlp_dim", &c->mlp_dim);
    jint(ie, "out_chans", &c->out_chans);
    jint(ie, "qkv_bias", &c->qkv_bias);
    jint(ie, "use_abs_pos", &c->use_abs_pos);
    jint(ie, "use_rel_pos", &c->use_rel_pos);
    jint(ie, "window_size", &c->window_size);
    const cJSON *gi = jget(ie, "global_attn_indexes");
    if (cJSON_IsArray(gi)) {
        c->n_global = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, gi)
        {
            if (c->n_global >= SAA_SAM_MAX_DEPTH) return saa_set_error(SAA_EINVAL, "sam config: too many global blocks");
            c->global_attn_indexes[c->n_global++] = (int)it->valuedouble;
        }
    }
    jfloat(ie, "block_layernorm_eps", &c->block_eps);
    jfloat(ie, "neck_layernorm2d_eps", &c->neck_eps);
    c->emb_h = c->emb_w = c->img_size / (c->patch_size > 0 ? c->patch_size : 1);
    c->input_h = c->input_w = c->img_size;
    c->prompt_dim = c->out_chans;
    jint(pe, "embed_dim", &c->prompt_dim);
    jpair(pe, "image_embedding_size", &c->emb_h, &c->emb_w);
    jpair(pe, "input_image_size", &c->input_h, &c->input_w);
    jint(pe, "mask_in_chans", &c->mask_in_chans);
    jint(md, "num_multimask_outputs", &c->num_multimask_outputs);
    jint(md, "iou_head_depth", &c->iou_head_depth);
    jint(md, "iou_head_hidden_dim", &c->iou_head_hidden);
    jfloat(md, "upscaling_layernorm2d_eps", &c->upscale_eps);
    int tdim = c->prompt_dim;
    jint(md, "transformer_dim", &tdim);
    jint(tr, "embedding_dim", &tdim);
    if (tdim != c->prompt_dim)
        return saa_set_error(SAA_EINVAL, "sam config: transformer_dim %d differs from the prompt embed_dim %d", tdim,
                             c->prompt_dim);
    jint(tr, "depth", &c->dec_depth);
    jint(tr, "num_heads", &c->dec_heads);
    jint(tr, "mlp_dim", &c->dec_mlp_dim);
    jint(tr, "attention_downsample_rate", &c->dec_downsample);
    jfloat(tr, "layernorm_eps", &c->dec_eps);
    const cJSON *mean = jget(model, "pixel_mean"), *std = jget(model, "pixel_std");
    for (int i = 0; i < 3; i++) {
        if (cJSON_GetArraySize(mean) == 3) c->pixel_mean[i] = (float)cJSON_GetArrayItem(mean, i)->valuedouble;
        if (cJSON_GetArraySize(std) == 3) c->pixel_std[i] = (float)cJSON_GetArrayItem(std, i)->valuedouble;
    }
    jfloat(model, "mask_threshold", &c->mask_threshold);
    return check_config(c);
}

int saa_sam_config_from_file(const char *path, saa_sam_config *cfg)
{
    cJSON *root = saa_json_load(path);
    if (!root) return SAA_EIO;
    cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    int rc = saa_sam_config_from_json(cJSON_IsObject(model) ? model : root, cfg);
    if (rc != SAA_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", saa_last_error());
        rc = saa_set_error(rc, "%s: %s", path, msg);
    }
    cJSON_Delete(root);
    return rc;
}

int saa_sam_config_from_weights(const saa_weights *w, saa_sam_config *cfg)
{
    const saa_tensor *pw = saa_weights_find(w, "image_encoder.patch_embed.proj.weight");
    if (!pw || pw->ndim != 4)
        return saa_set_error(SAA_EFORMAT, "%s: not a SAM checkpoint (missing image_encoder.patch_embed.proj.weight "
                             "[embed_dim, 3, 16, 16])", saa_weights_path(w));
    int dim = (int)pw->shape[0], depth = 0;
    char name[96];
    for (;;) {
        snprintf(name, sizeof name, "image_encoder.blocks.%d.norm1.weight", depth);
        if (!saa_weights_find(w, name)) break;
        depth++;
    }
    const char *preset = dim == 768 && depth == 12 ? "vit_b" : dim == 1024 && depth == 24 ? "vit_l"
                       : dim == 1280 && depth == 32 ? "vit_h" : NULL;
    if (!preset)
        return saa_set_error(SAA_EFORMAT, "%s: SAM image encoder with embed_dim %d and %d blocks matches no preset "
                             "(vit_b 768/12, vit_l 1024/24, vit_h 1280/32); give the config as JSON",
                             saa_weights_path(w), dim, depth);
    return saa_sam_config_preset(preset, cfg);
}

/* ---------- binding ---------- */

static void bind_attn(saa_binder *b, sam_attn_w *a, int D, int internal, const char *pfx)
{
    a->internal = internal;
    a->q_w = saa_bind(b, 2, (int64_t[]){internal, D}, "%s.q_proj.weight", pfx);
    a->q_b = saa_bind(b, 1, (int64_t[]){internal}, "%s.q_proj.bias", pfx);
    a->k_w = saa_bind(b, 2, (int64_t[]){internal, D}, "%s.k_proj.weight", pfx);
    a->k_b = saa_bind(b, 1, (int64_t[]){internal}, "%s.k_proj.bias", pfx);
    a->v_w = saa_bind(b, 2, (int64_t[]){internal, D}, "%s.v_proj.weight", pfx);
    a->v_b = saa_bind(b, 1, (int64_t[]){internal}, "%s.v_proj.bias", pfx);
    a->o_w = saa_bind(b, 2, (int64_t[]){D, internal}, "%s.out_proj.weight", pfx);
    a->o_b = saa_bind(b, 1, (int64_t[]){D}, "%s.out_proj.bias", pfx);
}

static void bind_mlp(saa_binder *b, sam_mlp_w *mlp, int depth, int in, int hidden, int out, const char *pfx)
{
    for (int l = 0; l < depth; l++) {
        int i = l == 0 ? in : hidden, o = l == depth - 1 ? out : hidden;
        mlp->w[l] = saa_bind(b, 2, (int64_t[]){o, i}, "%s.layers.%d.weight", pfx, l);
        mlp->b[l] = saa_bind(b, 1, (int64_t[]){o}, "%s.layers.%d.bias", pfx, l);
    }
}

static int is_global(const saa_sam_config *c, int i)
{
    for (int k = 0; k < c->n_global; k++)
        if (c->global_attn_indexes[k] == i) return 1;
    return 0;
}

static int bind_all(saa_sam *m)
{
    const saa_sam_config *c = &m->cfg;
    int C = c->embed_dim, hd = C / c->num_heads, G = m->grid, D = c->prompt_dim;
    saa_binder *b = saa_binder_new(m->weights, "image_encoder.");
    if (!b) return saa_set_error(SAA_ENOMEM, "out of memory");
    m->patch_w = saa_bind(b, 4, (int64_t[]){C, c->in_chans, c->patch_size, c->patch_size}, "patch_embed.proj.weight");
    m->patch_b = saa_bind(b, 1, (int64_t[]){C}, "patch_embed.proj.bias");
    if (c->use_abs_pos) m->pos_embed = saa_bind(b, 4, (int64_t[]){1, G, G, C}, "pos_embed");
    for (int i = 0; i < c->depth; i++) {
        sam_block_w *k = &m->blocks[i];
        k->window = is_global(c, i) ? 0 : c->window_size;
        k->size = k->window ? k->window : G;
        k->norm1_w = saa_bind(b, 1, (int64_t[]){C}, "blocks.%d.norm1.weight", i);
        k->norm1_b = saa_bind(b, 1, (int64_t[]){C}, "blocks.%d.norm1.bias", i);
        k->norm2_w = saa_bind(b, 1, (int64_t[]){C}, "blocks.%d.norm2.weight", i);
        k->norm2_b = saa_bind(b, 1, (int64_t[]){C}, "blocks.%d.norm2.bias", i);
        k->qkv_w = saa_bind(b, 2, (int64_t[]){3 * C, C}, "blocks.%d.attn.qkv.weight", i);
        if (c->qkv_bias) k->qkv_b = saa_bind(b, 1, (int64_t[]){3 * C}, "blocks.%d.attn.qkv.bias", i);
        k->proj_w = saa_bind(b, 2, (int64_t[]){C, C}, "blocks.%d.attn.proj.weight", i);
        k->proj_b = saa_bind(b, 1, (int64_t[]){C}, "blocks.%d.attn.proj.bias", i);
        k->lin1_w = saa_bind(b, 2, (int64_t[]){c->mlp_dim, C}, "blocks.%d.mlp.lin1.weight", i);
        k->lin1_b = saa_bind(b, 1, (int64_t[]){c->mlp_dim}, "blocks.%d.mlp.lin1.bias", i);
        k->lin2_w = saa_bind(b, 2, (int64_t[]){C, c->mlp_dim}, "blocks.%d.mlp.lin2.weight", i);
        k->lin2_b = saa_bind(b, 1, (int64_t[]){C}, "blocks.%d.mlp.lin2.bias", i);
        if (c->use_rel_pos) {
            /* table lengths come from the checkpoint (get_rel_pos resamples any length) */
            const saa_tensor *th = saa_bind_tensor(b, 2, (int64_t[]){-1, hd}, "blocks.%d.attn.rel_pos_h", i);
            const saa_tensor *tw = saa_bind_tensor(b, 2, (int64_t[]){-1, hd}, "blocks.%d.attn.rel_pos_w", i);
            if (th) k->rel_pos_h = th->data, k->len_h = (int)th->shape[0];
            if (tw) k->rel_pos_w = tw->data, k->len_w = (int)tw->shape[0];
        }
    }
    m->neck0_w = saa_bind(b, 4, (int64_t[]){c->out_chans, C, 1, 1}, "neck.0.weight");
    m->neck1_w = saa_bind(b, 1, (int64_t[]){c->out_chans}, "neck.1.weight");
    m->neck1_b = saa_bind(b, 1, (int64_t[]){c->out_chans}, "neck.1.bias");
    m->neck2_w = saa_bind(b, 4, (int64_t[]){c->out_chans, c->out_chans, 3, 3}, "neck.2.weight");
    m->neck3_w = saa_bind(b, 1, (int64_t[]){c->out_chans}, "neck.3.weight");
    m->neck3_b = saa_bind(b, 1, (int64_t[]){c->out_chans}, "neck.3.bias");

    if (saa_binder_set_prefix(b, "prompt_encoder.") != SAA_OK) {
        saa_binder_finish(b);
        return saa_set_error(SAA_ENOMEM, "out of memory");
    }
    m->pe_gauss = saa_bind(b, 2, (int64_t[]){2, D / 2}, "pe_layer.positional_encoding_gaussian_matrix");
    for (int i = 0; i < 4; i++) m->point_embed[i] = saa_bind(b, 2, (int64_t[]){1, D}, "point_embeddings.%d.weight", i);
    m->not_a_point = saa_bind(b, 2, (int64_t[]){1, D}, "not_a_point_embed.weight");
    m->no_mask = saa_bind(b, 2, (int64_t[]){1, D}, "no_mask_embed.weight");

    int nmt = c->num_multimask_outputs + 1, Idim = D / c->dec_downsample;
    if (saa_binder_set_prefix(b, "mask_decoder.") != SAA_OK) {
        saa_binder_finish(b);
        return saa_set_error(SAA_ENOMEM, "out of memory");
    }
    m->iou_token = saa_bind(b, 2, (int64_t[]){1, D}, "iou_token.weight");
    m->mask_tokens = saa_bind(b, 2, (int64_t[]){nmt, D}, "mask_tokens.weight");
    char pfx[128];
    for (int l = 0; l < c->dec_depth; l++) {
        sam_twoway_w *L = &m->layers[l];
        snprintf(pfx, sizeof pfx, "transformer.layers.%d.self_attn", l);
        bind_attn(b, &L->self_attn, D, D, pfx);
        snprintf(pfx, sizeof pfx, "transformer.layers.%d.cross_attn_token_to_image", l);
        bind_attn(b, &L->t2i, D, Idim, pfx);
        snprintf(pfx, sizeof pfx, "transformer.layers.%d.cross_attn_image_to_token", l);
        bind_attn(b, &L->i2t, D, Idim, pfx);
        for (int n = 0; n < 4; n++) {
            L->norm_w[n] = saa_bind(b, 1, (int64_t[]){D}, "transformer.layers.%d.norm%d.weight", l, n + 1);
            L->norm_b[n] = saa_bind(b, 1, (int64_t[]){D}, "transformer.layers.%d.norm%d.bias", l, n + 1);
        }
        L->lin1_w = saa_bind(b, 2, (int64_t[]){c->dec_mlp_dim, D}, "transformer.layers.%d.mlp.lin1.weight", l);
        L->lin1_b = saa_bind(b, 1, (int64_t[]){c->dec_mlp_dim}, "transformer.layers.%d.mlp.lin1.bias", l);
        L->lin2_w = saa_bind(b, 2, (int64_t[]){D, c->dec_mlp_dim}, "transformer.layers.%d.mlp.lin2.weight", l);
        L->lin2_b = saa_bind(b, 1, (int64_t[]){D}, "transformer.layers.%d.mlp.lin2.bias", l);
    }
    bind_attn(b, &m->final_attn, D, Idim, "transformer.final_attn_token_to_image");
    m->norm_final_w = saa_bind(b, 1, (int64_t[]){D}, "transformer.norm_final_attn.weight");
    m->norm_final_b = saa_bind(b, 1, (int64_t[]){D}, "transformer.norm_final_attn.bias");
    m->up0_w = saa_bind(b, 4, (int64_t[]){D, D / 4, 2, 2}, "output_upscaling.0.weight");
    m->up0_b = saa_bind(b, 1, (int64_t[]){D / 4}, "output_upscaling.0.bias");
    m->up1_w = saa_bind(b, 1, (int64_t[]){D / 4}, "output_upscaling.1.weight");
    m->up1_b = saa_bind(b, 1, (int64_t[]){D / 4}, "output_upscaling.1.bias");
    m->up3_w = saa_bind(b, 4, (int64_t[]){D / 4, D / 8, 2, 2}, "output_upscaling.3.weight");
    m->up3_b = saa_bind(b, 1, (int64_t[]){D / 8}, "output_upscaling.3.bias");
    for (int i = 0; i < nmt; i++) {
        snprintf(pfx, sizeof pfx, "output_hypernetworks_mlps.%d", i);
        bind_mlp(b, &m->hyper[i], 3, D, D, D / 8, pfx);
    }
    bind_mlp(b, &m->iou_head, c->iou_head_depth, D, c->iou_head_hidden, nmt, "iou_prediction_head");
    /* one report listing every missing or mis-shaped tensor of the three parts */
    return saa_binder_finish(b);
}

/* get_rel_pos is a function of the weights only: computed once per block. */
static int precompute_rel_pos(saa_sam *m)
{
    int hd = m->cfg.embed_dim / m->cfg.num_heads;
    for (int i = 0; i < m->cfg.depth && m->cfg.use_rel_pos; i++) {
        sam_block_w *k = &m->blocks[i];
        size_t n = (size_t)k->size * (size_t)k->size * (size_t)hd;
        k->rh = malloc(n * sizeof(float));
        k->rw = malloc(n * sizeof(float));
        if (!k->rh || !k->rw) return saa_set_error(SAA_ENOMEM, "out of memory");
        int rc = sam_get_rel_pos(k->size, k->size, k->rel_pos_h, k->len_h, hd, k->rh);
        if (rc == SAA_OK) rc = sam_get_rel_pos(k->size, k->size, k->rel_pos_w, k->len_w, hd, k->rw);
        if (rc != SAA_OK) return rc;
    }
    return SAA_OK;
}

int saa_sam_from_weights(saa_weights *w, int take_ownership, const saa_sam_config *cfg, saa_sam **out)
{
    *out = NULL;
    saa_sam *m = calloc(1, sizeof *m);
    if (!m) {
        if (take_ownership) saa_weights_close(w);
        return saa_set_error(SAA_ENOMEM, "out of memory");
    }
    m->weights = w;
    m->owns_weights = take_ownership;
    int rc = cfg ? SAA_OK : saa_sam_config_from_weights(w, &m->cfg);
    if (cfg) m->cfg = *cfg;
    if (rc == SAA_OK) rc = check_config(&m->cfg);
    if (rc != SAA_OK) {
        saa_sam_free(m);
        return rc;
    }
    const saa_sam_config *c = &m->cfg;
    m->grid = c->img_size / c->patch_size;
    m->blocks = calloc((size_t)c->depth, sizeof *m->blocks);
    m->layers = calloc((size_t)c->dec_depth, sizeof *m->layers);
    m->hyper = calloc((size_t)c->num_multimask_outputs + 1, sizeof *m->hyper);
    m->dense_pe = malloc(sizeof(float) * (size_t)c->prompt_dim * (size_t)(c->emb_h * c->emb_w));
    if (!m->blocks || !m->layers || !m->hyper || !m->dense_pe) {
        saa_sam_free(m);
        return saa_set_error(SAA_ENOMEM, "out of memory");
    }
    rc = bind_all(m);
    if (rc == SAA_OK) rc = precompute_rel_pos(m);
    if (rc == SAA_OK) rc = sam_decoder_prepare(m);
    if (rc != SAA_OK) {
        saa_sam_free(m);
        return rc;
    }
    if ((rc = sam_dense_pe(m, m->dense_pe)) != SAA_OK) {
        saa_sam_free(m);
        return rc;
    }
    *out = m;
    return SAA_OK;
}

int saa_sam_load(const char *path, const saa_sam_config *cfg, saa_sam **out)
{
    *out = NULL;
    saa_weights *w;
    int rc = saa_weights_open(path, &w);
    if (rc != SAA_OK) return rc;
    return saa_sam_from_weights(w, 1, cfg, out);
}

void saa_sam_free(saa_sam *m)
{
    if (!m) return;
    if (m->blocks)
        for (int i = 0; i < m->cfg.depth; i++) {
            free(m->blocks[i].rh);
            free(m->blocks[i].rw);
        }
    free(m->blocks);
    free(m->layers);
    free(m->hyper);
    free(m->dense_pe);
    free(m->embedding);
    free(m->dec_state);
    free(m->up0_wp);
    free(m->up3_wp);
    sam_dec_scratch_free(m->dec_scratch);
    if (m->owns_weights) saa_weights_close(m->weights);
    free(m);
}

const saa_sam_config *saa_sam_get_config(const saa_sam *m) { return &m->cfg; }

/* ---------- predictor ---------- */

void saa_sam_preprocess_shape(int h, int w, int long_side, int *newh, int *neww)
{
    /* ResizeLongestSide.get_preprocess_shape: double arithmetic, int() truncation */
    double scale = long_side * 1.0 / (double)(h > w ? h : w);
    *newh = (int)((double)h * scale + 0.5);
    *neww = (int)((double)w * scale + 0.5);
}

void sam_normalize_pad(const saa_sam_config *cfg, const uint8_t *resized, int nh, int nw, float *input)
{
    int S = cfg->img_size;
    /* Sam.preprocess: (x - mean) / std in float32, then zeros on the right/bottom */
    for (int ch = 0; ch < 3; ch++) {
        float *o = input + (size_t)ch * S * S;
        float mean = cfg->pixel_mean[ch], std = cfg->pixel_std[ch];
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++)
                o[(size_t)y * S + x] =
                    (y < nh && x < nw) ? ((float)resized[((size_t)y * nw + x) * 3 + ch] - mean) / std : 0.0f;
    }
}

/* After a new embedding: the decoder's per-image state, then the image counts as set. */
static int image_state(saa_sam *m)
{
    if (!m->dec_state) m->dec_state = malloc(sizeof(float) * sam_decoder_state_size(&m->cfg));
    if (!m->dec_state) return saa_set_error(SAA_ENOMEM, "out of memory");
    sam_decoder_state(m, m->embedding, m->dense_pe, m->dec_state);
    m->has_image = 1;
    return SAA_OK;
}

int saa_sam_set_image(saa_sam *m, const saa_image *img)
{
    const saa_sam_config *c = &m->cfg;
    if (!img || img->c != 3 || img->w <= 0 || img->h <= 0)
        return saa_set_error(SAA_EINVAL, "sam: set_image expects an 8-bit HxWx3 image");
    int nh, nw;
    saa_sam_preprocess_shape(img->h, img->w, c->img_size, &nh, &nw);
    uint8_t *resized = malloc((size_t)nh * nw * 3);
    float *input = malloc(sizeof(float) * 3 * (size_t)c->img_size * c->img_size);
    if (!m->embedding)
        m->embedding = malloc(sizeof(float) * (size_t)c->out_chans * (size_t)(m->grid * m->grid));
    if (!resized || !input || !m->embedding) {
        free(resized);
        free(input);
        return saa_set_error(SAA_ENOMEM, "out of memory");
    }
    saa_resize_pil_bilinear_u8(img->data, img->w, img->h, 3, resized, nw, nh);
    sam_normalize_pad(c, resized, nh, nw, input);
    free(resized);
    m->has_image = 0;
    int rc = sam_encode(m, input, m->embedding);
    free(input);
    if (rc != SAA_OK) return rc;
    m->orig_h = img->h, m->orig_w = img->w, m->input_h = nh, m->input_w = nw;
    return image_state(m);
}

int saa_sam_set_embedding(saa_sam *m, const float *embedding, int orig_h, int orig_w)
{
    m->has_image = 0;
    size_t n = (size_t)m->cfg.out_chans * (size_t)(m->grid * m->grid);
    if (!m->embedding) m->embedding = malloc(sizeof(float) * n);
    if (!m->embedding) return saa_set_error(SAA_ENOMEM, "out of memory");
    memcpy(m->embedding, embedding, sizeof(float) * n);
    m->orig_h = orig_h, m->orig_w = orig_w;
    saa_sam_preprocess_shape(orig_h, orig_w, m->cfg.img_size, &m->input_h, &m->input_w);
    return image_state(m);
}

const float *saa_sam_image_embedding(const saa_sam *m) { return m->has_image ? m->embedding : NULL; }

void saa_sam_masks_free(saa_sam_masks *r)
{
    if (!r) return;
    free(r->masks);
    free(r->logits);
    free(r->iou);
    free(r->low_res_logits);
    memset(r, 0, sizeof *r);
}

static int predict(saa_sam *m, const saa_sam_prompt *p, saa_sam_masks *out, int post)
{
    memset(out, 0, sizeof *out);
    const saa_sam_config *c = &m->cfg;
    if (!m->has_image) return saa_set_error(SAA_EINVAL, "sam: an image must be set before mask prediction");
    if (!p || p->batch < 1 || p->n_points < 0 || (p->n_points > 0 && (!p->points || !p->labels)))
        return saa_set_error(SAA_EINVAL, "sam: predict expects batch >= 1 and labels with every point");
    int B = p->batch, np = p->n_points, N = sam_sparse_count(np, p->boxes != NULL);
    int nm = p->multimask_output ? c->num_multimask_outputs : 1;
    int lh = 4 * c->emb_h, lw = 4 * c->emb_w;
    float *coords = np ? malloc(sizeof(float) * (size_t)B * np * 2) : NULL;
    float *boxes = p->boxes ? malloc(sizeof(float) * (size_t)B * 4) : NULL;
    float *sparse = malloc(sizeof(float) * (size_t)B * (size_t)(N ? N : 1) * c->prompt_dim);
    out->batch = B, out->n_masks = nm, out->h = m->orig_h, out->w = m->orig_w, out->low_h = lh, out->low_w = lw;
    out->iou = malloc(sizeof(float) * (size_t)B * nm);
    out->low_res_logits = malloc(sizeof(float) * (size_t)B * nm * lh * lw);
    int rc = SAA_OK;
    if ((np && !coords) || (p->boxes && !boxes) || !sparse || !out->iou || !out->low_res_logits) {
        rc = saa_set_error(SAA_ENOMEM, "out of memory");
        goto done;
    }
    long side = c->img_size;
    if (np) sam_apply_coords(p->points, B * np, m->orig_h, m->orig_w, (int)side, p->coord_mode, coords);
    if (boxes) sam_apply_coords(p->boxes, B * 2, m->orig_h, m->orig_w, (int)side, p->coord_mode, boxes);
    sam_embed_prompts(m, B, np, coords, p->labels, boxes, sparse);
    rc = sam_decode_masks(m, m->embedding, m->dense_pe, sparse, NULL, B, N, p->multimask_output, NULL,
                          out->low_res_logits, out->iou);
    if (rc != SAA_OK || !post) goto done;
    size_t total = (size_t)B * nm * m->orig_h * m->orig_w;
    out->logits = malloc(sizeof(float) * total);
    out->masks = malloc(total);
    if (!out->logits || !out->masks) {
        rc = saa_set_error(SAA_ENOMEM, "out of memory");
        goto done;
    }
    rc = sam_postprocess(m, out->low_res_logits, B * nm, m->input_h, m->input_w, m->orig_h, m->orig_w, out->logits,
                         NULL);
    for (size_t i = 0; i < total; i++) out->masks[i] = out->logits[i] > c->mask_threshold;
done:
    free(coords);
    free(boxes);
    free(sparse);
    if (rc != SAA_OK) saa_sam_masks_free(out);
    return rc;
}

int saa_sam_predict(saa_sam *m, const saa_sam_prompt *p, saa_sam_masks *out) { return predict(m, p, out, 1); }
int saa_sam_decode(saa_sam *m, const saa_sam_prompt *p, saa_sam_masks *out) { return predict(m, p, out, 0); }

/* ---------- random weights ---------- */

typedef struct {
    saa_weights *w;
    uint64_t state;
    float scale;
    int rc;
} random_ctx;

static float next_uniform(uint64_t *s)
{
    /* splitmix64 -> 24-bit uniform in [-1, 1) */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (float)(z >> 40) / 8388608.0f - 1.0f;
}

static void add_random(random_ctx *ctx, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void add_random(random_ctx *ctx, int ndim, const int64_t *shape, const char *fmt, ...)
{
    if (ctx->rc != SAA_OK) return;
    char name[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    saa_tensor *t = saa_tensor_new(SAA_F32, ndim, shape);
    if (!t) {
        ctx->rc = SAA_ENOMEM;
        return;
    }
    float *d = t->data;
    int64_t n = saa_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) d[i] = ctx->scale * next_uniform(&ctx->state);
    ctx->rc = saa_weights_add(ctx->w, name, t);
}

static void random_attn(random_ctx *x, const char *pfx, int D, int internal)
{
    const char *p[4] = {"q_proj", "k_proj", "v_proj", "out_proj"};
    for (int i = 0; i < 4; i++) {
        int o = i < 3 ? internal : D, in = i < 3 ? D : internal;
        add_random(x, 2, (int64_t[]){o, in}, "%s.%s.weight", pfx, p[i]);
        add_random(x, 1, (int64_t[]){o}, "%s.%s.bias", pfx, p[i]);
    }
}

static void random_mlp(random_ctx *x, const char *pfx, int depth, int in, int hidden, int out)
{
    for (int l = 0; l < depth; l++) {
        int i = l == 0 ? in : hidden, o = l == depth - 1 ? out : hidden;
        add_random(x, 2, (int64_t[]){o, i}, "%s.layers.%d.weight", pfx, l);
        add_random(x, 1, (int64_t[]){o}, "%s.layers.%d.bias", pfx, l);
    }
}

int saa_sam_random_weights(const saa_sam_config *c, uint64_t seed, float scale, saa_weights **out)
{
    *out = NULL;
    int rc = check_config(c);
    if (rc != SAA_OK) return rc;
    random_ctx x = {saa_weights_alloc("random SAM weights"), seed, scale, SAA_OK};
    if (!x.w) return SAA_ENOMEM;
    int C = c->embed_dim, hd = C / c->num_heads, G = c->img_size / c->patch_size, D = c->prompt_dim;
    int O = c->out_chans, nmt = c->num_multimask_outputs + 1, Idim = D / c->dec_downsample;
    add_random(&x, 4, (int64_t[]){C, c->in_chans, c->patch_size, c->patch_size}, "image_encoder.patch_embed.proj.weight");
    add_random(&x, 1, (int64_t[]){C}, "image_encoder.patch_embed.proj.bias");
    if (c->use_abs_pos) add_random(&x, 4, (int64_t[]){1, G, G, C}, "image_encoder.pos_embed");
    for (int i = 0; i < c->depth; i++) {
        int size = is_global(c, i) ? G : c->window_size;
        add_random(&x, 1, (int64_t[]){C}, "image_encoder.blocks.%d.norm1.weight", i);
        add_random(&x, 1, (int64_t[]){C}, "image_encoder.blocks.%d.norm1.bias", i);
        add_random(&x, 2, (int64_t[]){3 * C, C}, "image_encoder.blocks.%d.attn.qkv.weight", i);
        if (c->qkv_bias) add_random(&x, 1, (int64_t[]){3 * C}, "image_encoder.blocks.%d.attn.qkv.bias", i);
        add_random(&x, 2, (int64_t[]){C, C}, "image_encoder.blocks.%d.attn.proj.weight", i);
        add_random(&x, 1, (int64_t[]){C}, "image_encoder.blocks.%d.attn.proj.bias", i);
        if (c->use_rel_pos) {
            add_random(&x, 2, (int64_t[]){2 * size - 1, hd}, "image_encoder.blocks.%d.attn.rel_pos_h", i);
            add_random(&x, 2, (int64_t[]){2 * size - 1, hd}, "image_encoder.blocks.%d.attn.rel_pos_w", i);
        }
        add_random(&x, 1, (int64_t[]){C}, "image_encoder.blocks.%d.norm2.weight", i);
        add_random(&x, 1, (int64_t[]){C}, "image_encoder.blocks.%d.norm2.bias", i);
        add_random(&x, 2, (int64_t[]){c->mlp_dim, C}, "image_encoder.blocks.%d.mlp.lin1.weight", i);
        add_random(&x, 1, (int64_t[]){c->mlp_dim}, "image_encoder.blocks.%d.mlp.lin1.bias", i);
        add_random(&x, 2, (int64_t[]){C, c->mlp_dim}, "image_encoder.blocks.%d.mlp.lin2.weight", i);
        add_random(&x, 1, (int64_t[]){C}, "image_encoder.blocks.%d.mlp.lin2.bias", i);
    }
    add_random(&x, 4, (int64_t[]){O, C, 1, 1}, "image_encoder.neck.0.weight");
    add_random(&x, 1, (int64_t[]){O}, "image_encoder.neck.1.weight");
    add_random(&x, 1, (int64_t[]){O}, "image_encoder.neck.1.bias");
    add_random(&x, 4, (int64_t[]){O, O, 3, 3}, "image_encoder.neck.2.weight");
    add_random(&x, 1, (int64_t[]){O}, "image_encoder.neck.3.weight");
    add_random(&x, 1, (int64_t[]){O}, "image_encoder.neck.3.bias");
    add_random(&x, 2, (int64_t[]){2, D / 2}, "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix");
    for (int i = 0; i < 4; i++) add_random(&x, 2, (int64_t[]){1, D}, "prompt_encoder.point_embeddings.%d.weight", i);
    add_random(&x, 2, (int64_t[]){1, D}, "prompt_encoder.not_a_point_embed.weight");
    add_random(&x, 2, (int64_t[]){1, D}, "prompt_encoder.no_mask_embed.weight");
    add_random(&x, 2, (int64_t[]){1, D}, "mask_decoder.iou_token.weight");
    add_random(&x, 2, (int64_t[]){nmt, D}, "mask_decoder.mask_tokens.weight");
    char pfx[128];
    for (int l = 0; l < c->dec_depth; l++) {
        snprintf(pfx, sizeof pfx, "mask_decoder.transformer.layers.%d.self_attn", l);
        random_attn(&x, pfx, D, D);
        snprintf(pfx, sizeof pfx, "mask_decoder.transformer.layers.%d.cross_attn_token_to_image", l);
        random_attn(&x, pfx, D, Idim);
        snprintf(pfx, sizeof pfx, "mask_decoder.transformer.layers.%d.cross_attn_image_to_token", l);
        random_attn(&x, pfx, D, Idim);
        for (int n = 1; n <= 4; n++) {
            add_random(&x, 1, (int64_t[]){D}, "mask_decoder.transformer.layers.%d.norm%d.weight", l, n);
            add_random(&x, 1, (int64_t[]){D}, "mask_decoder.transformer.layers.%d.norm%d.bias", l, n);
        }
        add_random(&x, 2, (int64_t[]){c->dec_mlp_dim, D}, "mask_decoder.transformer.layers.%d.mlp.lin1.weight", l);
        add_random(&x, 1, (int64_t[]){c->dec_mlp_dim}, "mask_decoder.transformer.layers.%d.mlp.lin1.bias", l);
        add_random(&x, 2, (int64_t[]){D, c->dec_mlp_dim}, "mask_decoder.transformer.layers.%d.mlp.lin2.weight", l);
        add_random(&x, 1, (int64_t[]){D}, "mask_decoder.transformer.layers.%d.mlp.lin2.bias", l);
    }
    random_attn(&x, "mask_decoder.transformer.final_attn_token_to_image", D, Idim);
    add_random(&x, 1, (int64_t[]){D}, "mask_decoder.transformer.norm_final_attn.weight");
    add_random(&x, 1, (int64_t[]){D}, "mask_decoder.transformer.norm_final_attn.bias");
    add_random(&x, 4, (int64_t[]){D, D / 4, 2, 2}, "mask_decoder.output_upscaling.0.weight");
    add_random(&x, 1, (int64_t[]){D / 4}, "mask_decoder.output_upscaling.0.bias");
    add_random(&x, 1, (int64_t[]){D / 4}, "mask_decoder.output_upscaling.1.weight");
    add_random(&x, 1, (int64_t[]){D / 4}, "mask_decoder.output_upscaling.1.bias");
    add_random(&x, 4, (int64_t[]){D / 4, D / 8, 2, 2}, "mask_decoder.output_upscaling.3.weight");
    add_random(&x, 1, (int64_t[]){D / 8}, "mask_decoder.output_upscaling.3.bias");
    for (int i = 0; i < nmt; i++) {
        snprintf(pfx, sizeof pfx, "mask_decoder.output_hypernetworks_mlps.%d", i);
        random_mlp(&x, pfx, 3, D, D, D / 8);
    }
    random_mlp(&x, "mask_decoder.iou_prediction_head", c->iou_head_depth, D, c->iou_head_hidden, nmt);
    if (x.rc != SAA_OK) {
        saa_weights_close(x.w);
        return x.rc == SAA_ENOMEM ? saa_set_error(SAA_ENOMEM, "out of memory for random SAM weights") : x.rc;
    }
    *out = x.w;
    return SAA_OK;
}
