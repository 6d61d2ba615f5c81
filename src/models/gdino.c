/* Grounding DINO after the backbone and the text encoder: input projections, position embeddings, the
 * fusion encoder, language-guided query selection, the decoder with iterative box refinement, the
 * contrastive heads, and SAA+'s bbox_suppression.
 *
 * Mirrors groundingdino/models/GroundingDINO/{groundingdino.py, transformer.py, fuse_modules.py,
 * transformer_vanilla.py, utils.py, backbone/position_encoding.py} (eval mode, batch 1, no padding) and
 * SAA/model.py. Activations are row-major [tokens, channels]. */
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <omp.h>

#include "models/gdino_impl.h"
#include "models/gdino_model.h"
#include "saa/tensor.h"
#include "saa/tokenizer.h"

/* OpenBLAS (declared here as its cblas.h varies between builds) */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

#define TWO_PI_F ((float)(2.0 * 3.14159265358979323846))
#define LN_EPS 1e-5f

/* ---------- config ---------- */

int saa_gdino_config_preset(const char *name, saa_gdino_config *c)
{
    memset(c, 0, sizeof *c);
    /* GroundingDINO_SwinT_OGC.py */
    c->hidden_dim = 256;
    c->nheads = 8;
    c->enc_layers = 6;
    c->dec_layers = 6;
    c->dim_feedforward = 2048;
    c->num_queries = 900;
    c->enc_n_points = 4;
    c->dec_n_points = 4;
    c->num_feature_levels = 4;
    c->max_text_len = SAA_MAX_TEXT_LEN; /* hard-coded in GroundingDINO.__init__ */
    c->pe_temperature_h = 20;
    c->pe_temperature_w = 20;
    /* swin_T_224_1k */
    c->swin_patch_size = 4;
    c->swin_embed_dim = 96;
    c->swin_window = 7;
    memcpy(c->swin_depths, (int[]){2, 2, 6, 2}, sizeof c->swin_depths);
    memcpy(c->swin_heads, (int[]){3, 6, 12, 24}, sizeof c->swin_heads);
    c->swin_mlp_ratio = 4.0f;
    c->swin_ln_eps = 1e-5f;
    c->swin_num_out = 3;
    memcpy(c->swin_out_indices, (int[]){1, 2, 3, 0}, sizeof c->swin_out_indices);
    /* bert-base-uncased */
    c->bert_vocab_size = 30522;
    c->bert_hidden = 768;
    c->bert_layers = 12;
    c->bert_heads = 12;
    c->bert_intermediate = 3072;
    c->bert_max_position = 512;
    c->bert_type_vocab = 2;
    c->bert_ln_eps = 1e-12f;
    /* SAA+ transform */
    c->resize_size = 800;
    c->resize_max_size = 1333;
    if (!name || !strcmp(name, "swint_ogc") || !strcmp(name, "swint")) return SAA_OK;
    if (!strcmp(name, "swinb") || !strcmp(name, "swinb_cogcoor")) {
        /* GroundingDINO_SwinB_cfg.py: swin_B_384_22k */
        c->swin_embed_dim = 128;
        c->swin_window = 12;
        memcpy(c->swin_depths, (int[]){2, 2, 18, 2}, sizeof c->swin_depths);
        memcpy(c->swin_heads, (int[]){4, 8, 16, 32}, sizeof c->swin_heads);
        return SAA_OK;
    }
    return saa_set_error(SAA_EINVAL, "gdino: unknown config preset '%s' (expected swint_ogc or swinb)", name);
}

static int json_int(const cJSON *o, const char *key, int *dst)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return 0;
    if (!cJSON_IsNumber(v)) return saa_set_error(SAA_EFORMAT, "gdino config: '%s' must be a number", key);
    *dst = v->valueint;
    return 0;
}

static int json_float(const cJSON *o, const char *key, float *dst)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return 0;
    if (!cJSON_IsNumber(v)) return saa_set_error(SAA_EFORMAT, "gdino config: '%s' must be a number", key);
    *dst = (float)v->valuedouble;
    return 0;
}

/* Integer array of at most max entries; *count receives the length when count != NULL. */
static int json_int_array(const cJSON *o, const char *key, int *dst, int max, int *count)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return 0;
    int n = cJSON_GetArraySize(v);
    if (!cJSON_IsArray(v) || n > max)
        return saa_set_error(SAA_EFORMAT, "gdino config: '%s' must be an array of at most %d numbers", key, max);
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(v, i);
        if (!cJSON_IsNumber(e)) return saa_set_error(SAA_EFORMAT, "gdino config: '%s' must hold numbers", key);
        dst[i] = e->valueint;
    }
    if (count) *count = n;
    return 0;
}

/* The model_fixed / bert_config choices this port implements (GroundingDINO_SwinT_OGC.py, bert-base-uncased);
 * a config asking for another value would silently compute something else, so it is refused. Keys not
 * listed (the two_stage_*_share flags, temperatures, max_text_len) do not change the computation here. */
static int check_fixed_keys(const cJSON *fixed, const cJSON *bert)
{
    static const struct {
        const char *key, *want; /* the value as JSON text: "\"standard\"", "true", "4" */
    } fixed_keys[] = {
        {"two_stage_type", "\"standard\""}, {"position_embedding", "\"sine\""},
        {"transformer_activation", "\"relu\""}, {"embed_init_tgt", "true"},
        {"dec_pred_bbox_embed_share", "true"}, {"use_text_enhancer", "true"},
        {"use_fusion_layer", "true"}, {"use_text_cross_attention", "true"},
        {"sub_sentence_present", "true"}, {"query_dim", "4"},
    };
    for (size_t i = 0; fixed && i < sizeof fixed_keys / sizeof fixed_keys[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(fixed, fixed_keys[i].key);
        char *text = v ? cJSON_PrintUnformatted(v) : NULL;
        const int same = !v || (text && !strcmp(text, fixed_keys[i].want));
        free(text);
        if (!same)
            return saa_set_error(SAA_EUNSUPPORTED, "gdino config: only model_fixed.%s = %s is implemented",
                                 fixed_keys[i].key, fixed_keys[i].want);
    }
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(bert, "hidden_act");
    if (act && !(cJSON_IsString(act) && !strcmp(act->valuestring, "gelu")))
        return saa_set_error(SAA_EUNSUPPORTED, "gdino config: only bert_config.hidden_act = \"gelu\" (exact erf) is "
                                               "implemented");
    return SAA_OK;
}

int saa_gdino_config_from_json(const cJSON *root, saa_gdino_config *c)
{
    saa_gdino_config_preset("swint_ogc", c);
    int rc = 0;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (m) {
        rc |= json_int(m, "hidden_dim", &c->hidden_dim);
        rc |= json_int(m, "nheads", &c->nheads);
        rc |= json_int(m, "enc_layers", &c->enc_layers);
        rc |= json_int(m, "dec_layers", &c->dec_layers);
        rc |= json_int(m, "dim_feedforward", &c->dim_feedforward);
        rc |= json_int(m, "num_queries", &c->num_queries);
        rc |= json_int(m, "enc_n_points", &c->enc_n_points);
        rc |= json_int(m, "dec_n_points", &c->dec_n_points);
        rc |= json_int(m, "num_feature_levels", &c->num_feature_levels);
        rc |= json_int_array(m, "return_interm_indices", c->swin_out_indices, SAA_GDINO_MAX_STAGES,
                             &c->swin_num_out);
    }
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(root, "model_fixed");
    if (f) {
        rc |= json_float(f, "pe_temperatureH", &c->pe_temperature_h);
        rc |= json_float(f, "pe_temperatureW", &c->pe_temperature_w);
        /* "max_text_len" is not read: GroundingDINO.__init__ sets self.max_text_len = 256 whatever
         * args.max_text_len says (and ContrastiveEmbed pads to its default 256) */
    }
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "swin_config");
    if (s) {
        rc |= json_int(s, "embed_dim", &c->swin_embed_dim);
        rc |= json_int_array(s, "depths", c->swin_depths, SAA_GDINO_MAX_STAGES, NULL);
        rc |= json_int_array(s, "num_heads", c->swin_heads, SAA_GDINO_MAX_STAGES, NULL);
        rc |= json_int(s, "window_size", &c->swin_window);
        rc |= json_float(s, "mlp_ratio", &c->swin_mlp_ratio);
        rc |= json_int(s, "patch_size", &c->swin_patch_size);
        rc |= json_int_array(s, "out_indices", c->swin_out_indices, SAA_GDINO_MAX_STAGES, &c->swin_num_out);
        rc |= json_float(s, "layer_norm_eps", &c->swin_ln_eps);
    }
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(root, "bert_config");
    if (b) {
        rc |= json_int(b, "vocab_size", &c->bert_vocab_size);
        rc |= json_int(b, "hidden_size", &c->bert_hidden);
        rc |= json_int(b, "num_hidden_layers", &c->bert_layers);
        rc |= json_int(b, "num_attention_heads", &c->bert_heads);
        rc |= json_int(b, "intermediate_size", &c->bert_intermediate);
        rc |= json_int(b, "max_position_embeddings", &c->bert_max_position);
        rc |= json_int(b, "type_vocab_size", &c->bert_type_vocab);
        rc |= json_float(b, "layer_norm_eps", &c->bert_ln_eps);
    }
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "preprocess");
    if (p) {
        rc |= json_int(p, "resize_size", &c->resize_size);
        rc |= json_int(p, "resize_max_size", &c->resize_max_size);
    }
    if (rc) return SAA_EFORMAT;
    if ((rc = check_fixed_keys(f, b)) != SAA_OK) return rc;
    if (c->bert_ln_eps != 1e-12f)
        return saa_set_error(SAA_EUNSUPPORTED, "gdino config: bert_config.layer_norm_eps other than 1e-12 is not "
                                               "implemented, got %g", (double)c->bert_ln_eps);
    if (c->hidden_dim != 256)
        return saa_set_error(SAA_EUNSUPPORTED, "gdino config: hidden_dim must be 256 (the official code hard-codes "
                                               "256-d text and 128-per-coordinate query sine embeddings), got %d",
                             c->hidden_dim);
    if (c->nheads < 2 || c->nheads % 2 || c->dim_feedforward % 2 || c->hidden_dim % c->nheads ||
        c->dim_feedforward / 2 % (c->nheads / 2) || c->num_feature_levels < c->swin_num_out ||
        c->num_feature_levels > MSDA_MAX_LEVELS || c->swin_num_out < 1 || c->num_queries < 1 ||
        c->dec_layers < 1 || c->enc_layers < 0 || c->enc_layers > GDINO_MAX_LAYERS || c->dec_layers > GDINO_MAX_LAYERS)
        return saa_set_error(SAA_EINVAL, "gdino config: inconsistent transformer sizes");
    return SAA_OK;
}

/* ---------- weights ---------- */

static void bind_lin(saa_binder *b, gd_lin *l, int64_t out, int64_t in, const char *name)
{
    l->w = saa_bind(b, 2, (int64_t[]){out, in}, "%s.weight", name);
    l->b = saa_bind(b, 1, (int64_t[]){out}, "%s.bias", name);
}

static void bind_ln(saa_binder *b, gd_ln *l, int64_t dim, const char *name)
{
    l->w = saa_bind(b, 1, (int64_t[]){dim}, "%s.weight", name);
    l->b = saa_bind(b, 1, (int64_t[]){dim}, "%s.bias", name);
}

static void bind_mha(saa_binder *b, gd_mha *m, int64_t d, int nheads, const char *name)
{
    m->nheads = nheads;
    m->in_w = saa_bind(b, 2, (int64_t[]){3 * d, d}, "%s.in_proj_weight", name);
    m->in_b = saa_bind(b, 1, (int64_t[]){3 * d}, "%s.in_proj_bias", name);
    char n[320];
    snprintf(n, sizeof n, "%.256s.out_proj", name);
    bind_lin(b, &m->out, d, d, n);
}

static void bind_mlp(saa_binder *b, gd_mlp *m, int64_t in, int64_t hidden, int64_t out, int nlayers, const char *name)
{
    m->n = nlayers;
    for (int i = 0; i < nlayers; i++) {
        char n[320];
        snprintf(n, sizeof n, "%.256s.layers.%d", name, i);
        bind_lin(b, &m->l[i], i == nlayers - 1 ? out : hidden, i == 0 ? in : hidden, n);
    }
}

int gdino_bind_transformer(saa_gdino *g, saa_weights *w)
{
    const saa_gdino_config *c = &g->cfg;
    const int64_t d = c->hidden_dim, dff = c->dim_feedforward, nl = c->num_feature_levels;
    char n[256];
    saa_binder *b = saa_binder_new(w, "");
    if (!b) return SAA_ENOMEM;
    bind_lin(b, &g->feat_map, d, c->bert_hidden, "feat_map");
    /* input projections: 1x1 conv per backbone output, then 3x3 stride-2 convs */
    int64_t cin = c->swin_embed_dim << c->swin_out_indices[c->swin_num_out - 1];
    for (int l = 0; l < nl; l++) {
        gd_proj *p = &g->proj[l];
        if (l < c->swin_num_out) {
            p->cin = c->swin_embed_dim << c->swin_out_indices[l];
            p->k = 1, p->stride = 1, p->pad = 0;
        } else {
            p->cin = (int)cin;
            p->k = 3, p->stride = 2, p->pad = 1;
            cin = d;
        }
        p->conv_w = saa_bind(b, 4, (int64_t[]){d, p->cin, p->k, p->k}, "input_proj.%d.0.weight", l);
        p->conv_b = saa_bind(b, 1, (int64_t[]){d}, "input_proj.%d.0.bias", l);
        p->gn_w = saa_bind(b, 1, (int64_t[]){d}, "input_proj.%d.1.weight", l);
        p->gn_b = saa_bind(b, 1, (int64_t[]){d}, "input_proj.%d.1.bias", l);
    }
    /* Transformer.__init__ creates level_embed only with num_feature_levels > 1 and encoder layers; without it
     * the encoder's lvl_pos_embed is the plain position embedding */
    g->level_embed = nl > 1 && c->enc_layers > 0 ? saa_bind(b, 2, (int64_t[]){nl, d}, "transformer.level_embed") : NULL;
    g->tgt_embed = saa_bind(b, 2, (int64_t[]){c->num_queries, d}, "transformer.tgt_embed.weight");
    for (int i = 0; i < c->enc_layers; i++) {
        gd_enc_layer *e = &g->enc[i];
        snprintf(n, sizeof n, "transformer.encoder.layers.%d.self_attn.", i);
        msda_bind(&e->attn, b, n, (int)d, c->nheads, (int)nl, c->enc_n_points);
        snprintf(n, sizeof n, "transformer.encoder.layers.%d.norm1", i), bind_ln(b, &e->norm1, d, n);
        snprintf(n, sizeof n, "transformer.encoder.layers.%d.norm2", i), bind_ln(b, &e->norm2, d, n);
        snprintf(n, sizeof n, "transformer.encoder.layers.%d.linear1", i), bind_lin(b, &e->linear1, dff, d, n);
        snprintf(n, sizeof n, "transformer.encoder.layers.%d.linear2", i), bind_lin(b, &e->linear2, d, dff, n);

        gd_text_layer *t = &g->text[i];
        snprintf(n, sizeof n, "transformer.encoder.text_layers.%d.self_attn", i);
        bind_mha(b, &t->attn, d, c->nheads / 2, n);
        snprintf(n, sizeof n, "transformer.encoder.text_layers.%d.linear1", i), bind_lin(b, &t->linear1, dff / 2, d, n);
        snprintf(n, sizeof n, "transformer.encoder.text_layers.%d.linear2", i), bind_lin(b, &t->linear2, d, dff / 2, n);
        snprintf(n, sizeof n, "transformer.encoder.text_layers.%d.norm1", i), bind_ln(b, &t->norm1, d, n);
        snprintf(n, sizeof n, "transformer.encoder.text_layers.%d.norm2", i), bind_ln(b, &t->norm2, d, n);

        gd_fusion *f = &g->fusion[i];
        const int64_t E = dff / 2;
        f->nheads = c->nheads / 2;
        f->embed = (int)E;
        snprintf(n, sizeof n, "transformer.encoder.fusion_layers.%d.layer_norm_v", i), bind_ln(b, &f->norm_v, d, n);
        snprintf(n, sizeof n, "transformer.encoder.fusion_layers.%d.layer_norm_l", i), bind_ln(b, &f->norm_l, d, n);
        snprintf(n, sizeof n, "transformer.encoder.fusion_layers.%d.attn.v_proj", i), bind_lin(b, &f->v_proj, E, d, n);
        snprintf(n, sizeof n, "transformer.encoder.fusion_layers.%d.attn.l_proj", i), bind_lin(b, &f->l_proj, E, d, n);
        snprintf(n, sizeof n, "transformer.encoder.fusion_layers.%d.attn.values_v_proj", i);
        bind_lin(b, &f->values_v, E, d, n);
        snprintf(n, sizeof n, "transformer.encoder.fusion_layers.%d.attn.values_l_proj", i);
        bind_lin(b, &f->values_l, E, d, n);
        snprintf(n, sizeof n, "transformer.encoder.fusion_layers.%d.attn.out_v_proj", i), bind_lin(b, &f->out_v, d, E, n);
        snprintf(n, sizeof n, "transformer.encoder.fusion_layers.%d.attn.out_l_proj", i), bind_lin(b, &f->out_l, d, E, n);
        f->gamma_v = saa_bind(b, 1, (int64_t[]){d}, "transformer.encoder.fusion_layers.%d.gamma_v", i);
        f->gamma_l = saa_bind(b, 1, (int64_t[]){d}, "transformer.encoder.fusion_layers.%d.gamma_l", i);
    }
    for (int i = 0; i < c->dec_layers; i++) {
        gd_dec_layer *e = &g->dec[i];
        snprintf(n, sizeof n, "transformer.decoder.layers.%d.cross_attn.", i);
        msda_bind(&e->cross, b, n, (int)d, c->nheads, (int)nl, c->dec_n_points);
        snprintf(n, sizeof n, "transformer.decoder.layers.%d.norm1", i), bind_ln(b, &e->norm1, d, n);
        snprintf(n, sizeof n, "transformer.decoder.layers.%d.ca_text", i), bind_mha(b, &e->ca_text, d, c->nheads, n);
        snprintf(n, sizeof n, "transformer.decoder.layers.%d.catext_norm", i), bind_ln(b, &e->catext_norm, d, n);
        snprintf(n, sizeof n, "transformer.decoder.layers.%d.self_attn", i), bind_mha(b, &e->self_attn, d, c->nheads, n);
        snprintf(n, sizeof n, "transformer.decoder.layers.%d.norm2", i), bind_ln(b, &e->norm2, d, n);
        snprintf(n, sizeof n, "transformer.decoder.layers.%d.linear1", i), bind_lin(b, &e->linear1, dff, d, n);
        snprintf(n, sizeof n, "transformer.decoder.layers.%d.linear2", i), bind_lin(b, &e->linear2, d, dff, n);
        snprintf(n, sizeof n, "transformer.decoder.layers.%d.norm3", i), bind_ln(b, &e->norm3, d, n);
        /* GroundingDINO.bbox_embed[i] (the same module as transformer.decoder.bbox_embed[i]) */
        snprintf(n, sizeof n, "bbox_embed.%d", i), bind_mlp(b, &g->bbox_embed[i], d, d, 4, 3, n);
    }
    bind_ln(b, &g->dec_norm, d, "transformer.decoder.norm");
    bind_mlp(b, &g->ref_point_head, 2 * d, d, d, 2, "transformer.decoder.ref_point_head");
    bind_lin(b, &g->enc_output, d, d, "transformer.enc_output");
    bind_ln(b, &g->enc_output_norm, d, "transformer.enc_output_norm");
    bind_mlp(b, &g->enc_bbox, d, d, 4, 3, "transformer.enc_out_bbox_embed");
    return saa_binder_finish(b);
}

/* ---------- small helpers ---------- */

static void add_into(float *y, const float *x, int64_t n)
{
#pragma omp parallel for if (n > (1 << 20)) schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

static void add_to(const float *a, const float *b, int64_t n, float *y)
{
#pragma omp parallel for if (n > (1 << 20)) schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

/* MLP (groundingdino/models/GroundingDINO/utils.py): relu between layers. tmp: 2*rows*max(hidden) floats. */
static void mlp_forward(const gd_mlp *m, const float *x, int64_t rows, int64_t in, int64_t hidden, int64_t out,
                        float *y, float *tmp)
{
    const float *cur = x;
    int64_t cur_in = in;
    for (int i = 0; i < m->n; i++) {
        const int last = i == m->n - 1;
        const int64_t o = last ? out : hidden;
        float *dst = last ? y : tmp + (i % 2) * rows * hidden;
        par_linear_rows(cur, rows, cur_in, m->l[i].w, m->l[i].b, o, dst);
        if (!last) saa_relu(dst, rows * o);
        cur = dst;
        cur_in = o;
    }
}

static float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }

/* groundingdino/util/misc.py: inverse_sigmoid(x, eps=1e-3) */
static float inverse_sigmoidf(float x)
{
    x = x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x;
    float x1 = x < 1e-3f ? 1e-3f : x;
    float x2 = 1.0f - x;
    x2 = x2 < 1e-3f ? 1e-3f : x2;
    return logf(x1 / x2);
}

/* torch.nn.MultiheadAttention (batch 1, eval): q_in[Lq,d], k_in/v_in[Lk,d] -> out[Lq,d].
 * mask: additive [Lq,Lk] or NULL. */
static int mha_forward(const gd_mha *m, int64_t d, const float *q_in, int64_t Lq, const float *k_in,
                       const float *v_in, int64_t Lk, const float *mask, float *out)
{
    const int64_t nh = m->nheads, hd = d / nh;
    float *buf = malloc((size_t)(2 * Lq * d + 2 * Lk * d) * sizeof(float));
    if (!buf) return saa_set_error(SAA_ENOMEM, "gdino attention: out of memory");
    float *Q = buf, *K = Q + Lq * d, *V = K + Lk * d, *O = V + Lk * d;
    par_linear_rows(q_in, Lq, d, m->in_w, m->in_b, d, Q);
    par_linear_rows(k_in, Lk, d, m->in_w + d * d, m->in_b + d, d, K);
    par_linear_rows(v_in, Lk, d, m->in_w + 2 * d * d, m->in_b + 2 * d, d, V);
    const float scale = 1.0f / sqrtf((float)hd);
    /* heads in parallel, one score matrix per thread */
    const int nt = omp_get_max_threads() < nh ? omp_get_max_threads() : (int)nh;
    float *scores = malloc((size_t)nt * (size_t)(Lq * Lk) * sizeof(float));
    if (!scores) {
        free(buf);
        return saa_set_error(SAA_ENOMEM, "gdino attention: out of memory");
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t h = 0; h < nh; h++)
        saa_attention_head(Q + h * hd, d, K + h * hd, d, V + h * hd, d, Lq, Lk, hd, hd, scale, mask, O + h * hd, d,
                           scores + (int64_t)omp_get_thread_num() * Lq * Lk);
    free(scores);
    par_linear_rows(O, Lq, d, m->out.w, m->out.b, d, out);
    free(buf);
    return SAA_OK;
}

/* forward_ffn of the encoder/decoder layers and the text enhancer's FFN: x = LN(x + linear2(relu(linear1(x)))),
 * in place. Each thread runs whole row blocks (single-threaded sgemm) with its own [blk, dff] buffer. */
#define FFN_BLOCK 512
static int ffn_forward(const gd_lin *l1, const gd_lin *l2, const gd_ln *norm, int64_t d, int64_t dff, float *x,
                       int64_t rows)
{
    const int64_t nblk = (rows + FFN_BLOCK - 1) / FFN_BLOCK;
    const int nt = nblk < omp_get_max_threads() ? (int)nblk : omp_get_max_threads();
    float *buf = malloc((size_t)nt * (size_t)(FFN_BLOCK * (dff + d)) * sizeof(float));
    if (!buf) return saa_set_error(SAA_ENOMEM, "gdino ffn: out of memory");
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t bi = 0; bi < nblk; bi++) {
        float *h = buf + (int64_t)omp_get_thread_num() * FFN_BLOCK * (dff + d), *y = h + FFN_BLOCK * dff;
        const int64_t r0 = bi * FFN_BLOCK, nb = rows - r0 < FFN_BLOCK ? rows - r0 : FFN_BLOCK;
        float *xb = x + r0 * d;
        saa_linear(xb, nb, d, l1->w, l1->b, dff, h);
        saa_relu(h, nb * dff);
        saa_linear(h, nb, dff, l2->w, l2->b, d, y);
        for (int64_t i = 0; i < nb * d; i++) xb[i] += y[i];
        saa_layer_norm(xb, nb, d, norm->w, norm->b, LN_EPS, xb);
    }
    free(buf);
    return SAA_OK;
}

/* ---------- position embeddings ---------- */

/* PositionEmbeddingSineHW (normalize=True, scale 2*pi) of an unpadded H x W map:
 * pos[H*W, 2*npf] = [pos_y(npf), pos_x(npf)], each interleaved sin/cos. pos_y depends on the row only and
 * pos_x on the column only, so both are tabulated once. Returns SAA_OK or SAA_ENOMEM. */
static int sine_pos_hw(int64_t H, int64_t W, int64_t npf, float temp_h, float temp_w, float *pos)
{
    float *ty = malloc((size_t)((H + W) * npf) * sizeof(float));
    if (!ty) return saa_set_error(SAA_ENOMEM, "gdino: out of memory");
    float *tx = ty + H * npf;
    const float eps = 1e-6f;
    for (int64_t i = 0; i < npf; i += 2) {
        const float e0 = (2.0f * (float)(i / 2)) / (float)npf, e1 = (2.0f * (float)((i + 1) / 2)) / (float)npf;
        const float dy0 = powf(temp_h, e0), dy1 = powf(temp_h, e1), dx0 = powf(temp_w, e0), dx1 = powf(temp_w, e1);
        for (int64_t y = 0; y < H; y++) {
            const float ye = (float)(y + 1) / ((float)H + eps) * TWO_PI_F;
            ty[y * npf + i] = sinf(ye / dy0);
            ty[y * npf + i + 1] = cosf(ye / dy1);
        }
        for (int64_t x = 0; x < W; x++) {
            const float xe = (float)(x + 1) / ((float)W + eps) * TWO_PI_F;
            tx[x * npf + i] = sinf(xe / dx0);
            tx[x * npf + i + 1] = cosf(xe / dx1);
        }
    }
    for (int64_t y = 0; y < H; y++)
        for (int64_t x = 0; x < W; x++) {
            float *p = pos + (y * W + x) * 2 * npf;
            memcpy(p, ty + y * npf, (size_t)npf * sizeof(float));
            memcpy(p + npf, tx + x * npf, (size_t)npf * sizeof(float));
        }
    free(ty);
    return SAA_OK;
}

/* get_sine_pos_embed(pos[..., None], num_pos_feats=npf, temperature=10000, exchange_xy=False) of integer
 * positions: out[n, npf], interleaved sin/cos of pos * 2pi / dim_t. */
static void sine_pos_1d(const int64_t *ids, int64_t n, int64_t npf, float *out)
{
    for (int64_t t = 0; t < n; t++) {
        const float x = (float)ids[t] * TWO_PI_F;
        for (int64_t i = 0; i < npf; i += 2) {
            const float e = (2.0f * (float)(i / 2)) / (float)npf;
            const float dt = powf(10000.0f, e);
            out[t * npf + i] = sinf(x / dt);
            out[t * npf + i + 1] = cosf(x / dt);
        }
    }
}

/* gen_sineembed_for_position for 4-d boxes: out[nq, 4*128] in the order (y, x, w, h). */
static void sine_embed_boxes(const float *ref, int64_t nq, float *out)
{
    float dim_t[128];
    for (int i = 0; i < 128; i++) dim_t[i] = powf(10000.0f, (2.0f * (float)(i / 2)) / 128.0f);
    static const int order[4] = {1, 0, 2, 3};
    for (int64_t q = 0; q < nq; q++)
        for (int k = 0; k < 4; k++) {
            const float e = ref[q * 4 + order[k]] * TWO_PI_F;
            float *o = out + q * 512 + k * 128;
            for (int i = 0; i < 128; i += 2) {
                o[i] = sinf(e / dim_t[i]);
                o[i + 1] = cosf(e / dim_t[i + 1]);
            }
        }
}

/* ---------- image state ---------- */

void gdino_image_free(gdino_image *im)
{
    if (!im) return;
    free(im->src);
    free(im->pos);
    free(im->lvl_pos);
    free(im->ref);
    memset(im, 0, sizeof *im);
}

/* GroupNorm(groups) of a channels-last x[HW, C], in place (statistics in double). */
static void group_norm_rows(float *x, int64_t HW, int64_t C, int64_t groups, const float *w, const float *b, float eps)
{
    const int64_t cg = C / groups;
#pragma omp parallel for schedule(static)
    for (int64_t g = 0; g < groups; g++) {
        double s = 0, s2 = 0;
        for (int64_t i = 0; i < HW; i++)
            for (int64_t c = g * cg; c < (g + 1) * cg; c++) s += x[i * C + c];
        const double mean = s / (double)(HW * cg);
        for (int64_t i = 0; i < HW; i++)
            for (int64_t c = g * cg; c < (g + 1) * cg; c++) {
                const double dv = x[i * C + c] - mean;
                s2 += dv * dv;
            }
        const float m = (float)mean, rstd = (float)(1.0 / sqrt(s2 / (double)(HW * cg) + (double)eps));
        for (int64_t i = 0; i < HW; i++)
            for (int64_t c = g * cg; c < (g + 1) * cg; c++) x[i * C + c] = (x[i * C + c] - m) * rstd * w[c] + b[c];
    }
}

/* input_proj[l]: conv + GroupNorm(32) on x[cin, H, W] -> rows [OH*OW, d] of dst. A 1x1 conv is one gemm
 * straight into the token layout. chw: scratch of d*OH*OW floats for the 3x3 convs. */
static void input_proj(const gd_proj *p, int64_t d, const float *x, int64_t H, int64_t W, int64_t OH, int64_t OW,
                       float *dst, float *chw)
{
    if (p->k == 1 && p->stride == 1 && p->pad == 0) {
        for (int64_t i = 0; i < OH * OW; i++) memcpy(dst + i * d, p->conv_b, (size_t)d * sizeof(float));
        saa_gemm(1, 1, OH * OW, d, p->cin, 1.0f, x, H * W, p->conv_w, p->cin, 1.0f, dst, d); /* BLAS-threaded */
    } else {
        saa_conv_params cp = {p->stride, p->stride, p->pad, p->pad, 1, 1, 1};
        saa_conv2d(x, 1, p->cin, H, W, p->conv_w, d, p->k, p->k, p->conv_b, cp, chw);
        for (int64_t c = 0; c < d; c++)
            for (int64_t i = 0; i < OH * OW; i++) dst[i * d + c] = chw[c * OH * OW + i];
    }
    group_norm_rows(dst, OH * OW, d, 32, p->gn_w, p->gn_b, LN_EPS);
}

int gdino_image_from_features(const saa_gdino *g, int nfeat, const float *const *feats, const int *C,
                              const int *H, const int *W, gdino_image *out)
{
    const saa_gdino_config *c = &g->cfg;
    const int64_t d = c->hidden_dim, nl = c->num_feature_levels;
    memset(out, 0, sizeof *out);
    if (nfeat != c->swin_num_out)
        return saa_set_error(SAA_EINVAL, "gdino: %d backbone outputs, expected %d", nfeat, c->swin_num_out);
    msda_levels *lv = &out->lv;
    lv->n_levels = (int)nl;
    int64_t n = 0;
    for (int l = 0; l < nl; l++) {
        if (l < nfeat) {
            if (C[l] != g->proj[l].cin)
                return saa_set_error(SAA_ESHAPE, "gdino: backbone output %d has %d channels, expected %d", l, C[l],
                                     g->proj[l].cin);
            lv->H[l] = H[l], lv->W[l] = W[l];
        } else {
            lv->H[l] = saa_conv_out_size(lv->H[l - 1], 3, 2, 1, 1);
            lv->W[l] = saa_conv_out_size(lv->W[l - 1], 3, 2, 1, 1);
        }
        lv->start[l] = n;
        n += lv->H[l] * lv->W[l];
    }
    lv->n_tokens = n;
    out->src = malloc((size_t)(n * d) * sizeof(float));
    out->pos = malloc((size_t)(n * d) * sizeof(float));
    out->lvl_pos = malloc((size_t)(n * d) * sizeof(float));
    out->ref = malloc((size_t)(n * 2) * sizeof(float));
    float *chw = malloc((size_t)(lv->H[0] * lv->W[0] * d) * sizeof(float));
    if (!out->src || !out->pos || !out->lvl_pos || !out->ref || !chw) {
        free(chw);
        gdino_image_free(out);
        return saa_set_error(SAA_ENOMEM, "gdino: out of memory for the image tokens");
    }
    for (int l = 0; l < nl; l++) {
        const int64_t h = lv->H[l], w = lv->W[l], s = lv->start[l];
        if (l < nfeat) {
            input_proj(&g->proj[l], d, feats[l], h, w, h, w, out->src + s * d, chw);
        } else if (l == nfeat) {
            /* the first extra level projects the LAST BACKBONE FEATURE, not its projection */
            input_proj(&g->proj[l], d, feats[nfeat - 1], H[nfeat - 1], W[nfeat - 1], h, w, out->src + s * d, chw);
        } else {
            /* further levels project the previous projected level (back to [d, H, W] first) */
            const int64_t ph = lv->H[l - 1], pw = lv->W[l - 1], ps = lv->start[l - 1];
            float *prev = malloc((size_t)(ph * pw * d) * sizeof(float));
            if (!prev) {
                free(chw);
                gdino_image_free(out);
                return saa_set_error(SAA_ENOMEM, "gdino: out of memory");
            }
            for (int64_t i = 0; i < ph * pw; i++)
                for (int64_t ch = 0; ch < d; ch++) prev[ch * ph * pw + i] = out->src[(ps + i) * d + ch];
            input_proj(&g->proj[l], d, prev, ph, pw, h, w, out->src + s * d, chw);
            free(prev);
        }
        if (sine_pos_hw(h, w, d / 2, c->pe_temperature_h, c->pe_temperature_w, out->pos + s * d) != SAA_OK) {
            free(chw);
            gdino_image_free(out);
            return SAA_ENOMEM;
        }
        if (g->level_embed)
            for (int64_t i = 0; i < h * w; i++)
                add_to(out->pos + (s + i) * d, g->level_embed + l * d, d, out->lvl_pos + (s + i) * d);
        else
            memcpy(out->lvl_pos + s * d, out->pos + s * d, (size_t)(h * w * d) * sizeof(float));
        /* TransformerEncoder.get_reference_points with valid_ratios 1 */
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++) {
                out->ref[(s + y * w + x) * 2] = ((float)x + 0.5f) / (float)w;
                out->ref[(s + y * w + x) * 2 + 1] = ((float)y + 0.5f) / (float)h;
            }
    }
    free(chw);
    return SAA_OK;
}

/* ---------- encoder ---------- */

/* BiAttentionBlock (fuse_modules.py BiAttentionBlock + BiMultiHeadAttention), in place on v[N, d] and
 * l[T, d], with the image-side projections folded into the (few) text tokens:
 *   logits  (v Wq^T + bq) k_h^T * scale      = v (k_h Wq_h)^T * scale + (bq_h . k_h) * scale
 *   out_v   softmax_T(.) vl_h, then out_v_proj = softmax_T(.) (vl_h Wo_h^T) + bo
 *   out_l   softmax_N(.) (v Wvv_h^T + bvv_h)     = (softmax_N(.) v) Wvv_h^T + bvv_h  (rows sum to 1)
 * so nothing of size [N, embed_dim] is formed: the cost is O(N * heads * T * d) instead of
 * O(N * embed_dim * d). The softmax steps are those of the official code: subtract the GLOBAL max, clamp
 * to [-50000, 50000]; the text side subtracts its per-row max over image tokens and clamps again. */
#define FUSION_BLOCK 512
static int fusion_forward(const gd_fusion *f, int64_t d, float *v, int64_t N, float *l, int64_t T)
{
    const int64_t nh = f->nheads, E = f->embed, hd = E / nh, HT = nh * T;
    const float scale = powf((float)hd, -0.5f);
    float *S = malloc((size_t)(N * HT) * sizeof(float)); /* [N][heads][T] */
    float *small = malloc((size_t)(3 * T * E + 3 * HT * d + 3 * HT + T * d) * sizeof(float));
    float *blkbuf = malloc((size_t)omp_get_max_threads() * FUSION_BLOCK * (size_t)(HT > d ? HT : d) * sizeof(float));
    if (!S || !small || !blkbuf) {
        free(S), free(small), free(blkbuf);
        return saa_set_error(SAA_ENOMEM, "gdino fusion: out of memory");
    }
    float *k = small, *vl = k + T * E, *out_l = vl + T * E;
    float *Kq = out_l + T * E, *M = Kq + HT * d, *Z = M + HT * d;
    float *kb = Z + HT * d, *cmax = kb + HT, *csum = cmax + HT, *dl = csum + HT;

    saa_layer_norm(v, N, d, f->norm_v.w, f->norm_v.b, LN_EPS, v);
    saa_layer_norm(l, T, d, f->norm_l.w, f->norm_l.b, LN_EPS, l);
    saa_linear(l, T, d, f->l_proj.w, f->l_proj.b, E, k);
    saa_linear(l, T, d, f->values_l.w, f->values_l.b, E, vl);
    for (int64_t h = 0; h < nh; h++) {
        /* Kq_h[T, d] = k_h Wq_h * scale; kb_h[t] = (bq_h . k_h[t]) * scale */
        saa_gemm(0, 0, T, d, hd, scale, k + h * hd, E, f->v_proj.w + h * hd * d, d, 0.0f, Kq + h * T * d, d);
        for (int64_t t = 0; t < T; t++) {
            float s = 0;
            for (int64_t j = 0; j < hd; j++) s += f->v_proj.b[h * hd + j] * k[t * E + h * hd + j];
            kb[h * T + t] = s * scale;
        }
        /* M_h[T, d] = vl_h Wo_h^T (Wo = out_v_proj.weight [d, E]) */
        saa_gemm(0, 1, T, d, hd, 1.0f, vl + h * hd, E, f->out_v.w + h * hd, E, 0.0f, M + h * T * d, d);
    }
    /* attention logits S[n, (h, t)] and their global max */
    par_linear_rows(v, N, d, Kq, kb, HT, S);
    float gmax = -INFINITY;
    for (int64_t i = 0; i < N * HT; i++) gmax = S[i] > gmax ? S[i] : gmax;
    for (int64_t j = 0; j < HT; j++) cmax[j] = -INFINITY, csum[j] = 0.0f;
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < HT; j++) {
            const float x = S[n * HT + j] - gmax;
            S[n * HT + j] = x < -50000.0f ? -50000.0f : x > 50000.0f ? 50000.0f : x;
        }
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < HT; j++) cmax[j] = S[n * HT + j] > cmax[j] ? S[n * HT + j] : cmax[j];
    /* text side: softmax over the image tokens of (S^T - row max), clamped; Z = P_l v accumulated over row
     * blocks, one partial Z per thread */
    memset(Z, 0, (size_t)(HT * d) * sizeof(float));
    const int nt = omp_get_max_threads();
    float *part = calloc((size_t)nt * (size_t)(HT * d + HT), sizeof(float));
    if (!part) {
        free(S), free(small), free(blkbuf);
        return saa_set_error(SAA_ENOMEM, "gdino fusion: out of memory");
    }
    const int64_t nblk = (N + FUSION_BLOCK - 1) / FUSION_BLOCK;
#pragma omp parallel num_threads(nt)
    {
        const int tid = omp_get_thread_num();
        float *Zt = part + (int64_t)tid * (HT * d + HT), *ct = Zt + HT * d;
        float *eb = blkbuf + (int64_t)tid * FUSION_BLOCK * (HT > d ? HT : d);
#pragma omp for schedule(static)
        for (int64_t bi = 0; bi < nblk; bi++) {
            const int64_t r0 = bi * FUSION_BLOCK, nb = N - r0 < FUSION_BLOCK ? N - r0 : FUSION_BLOCK;
            for (int64_t i = 0; i < nb; i++)
                for (int64_t j = 0; j < HT; j++) {
                    float x = S[(r0 + i) * HT + j] - cmax[j];
                    x = x < -50000.0f ? -50000.0f : x;
                    eb[i * HT + j] = expf(x);
                    ct[j] += eb[i * HT + j];
                }
            saa_gemm(1, 0, HT, d, nb, 1.0f, eb, HT, v + r0 * d, d, 1.0f, Zt, d);
        }
    }
    for (int t = 0; t < nt; t++) {
        const float *Zt = part + (int64_t)t * (HT * d + HT);
        for (int64_t i = 0; i < HT * d; i++) Z[i] += Zt[i];
        for (int64_t j = 0; j < HT; j++) csum[j] += Zt[HT * d + j];
    }
    free(part);
    for (int64_t j = 0; j < HT; j++)
        for (int64_t c = 0; c < d; c++) Z[j * d + c] /= csum[j];
    /* out_l_h = Z_h Wvv_h^T + bvv_h, then delta_l = out_l_proj(out_l) */
    for (int64_t h = 0; h < nh; h++) {
        saa_gemm(0, 1, T, hd, d, 1.0f, Z + h * T * d, d, f->values_v.w + h * hd * d, d, 0.0f, out_l + h * hd, E);
        for (int64_t t = 0; t < T; t++)
            for (int64_t j = 0; j < hd; j++) out_l[t * E + h * hd + j] += f->values_v.b[h * hd + j];
    }
    saa_linear(out_l, T, E, f->out_l.w, f->out_l.b, d, dl);
    for (int64_t t = 0; t < T; t++)
        for (int64_t c = 0; c < d; c++) l[t * d + c] += f->gamma_l[c] * dl[t * d + c];
    /* image side: softmax over the text tokens per head; delta_v = P_v M + bo; v = v + gamma_v * delta_v */
    saa_softmax_rows(S, N * nh, T);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t bi = 0; bi < nblk; bi++) {
        float *db = blkbuf + (int64_t)omp_get_thread_num() * FUSION_BLOCK * (HT > d ? HT : d);
        const int64_t r0 = bi * FUSION_BLOCK, nb = N - r0 < FUSION_BLOCK ? N - r0 : FUSION_BLOCK;
        saa_gemm(0, 0, nb, d, HT, 1.0f, S + r0 * HT, HT, M, d, 0.0f, db, d);
        float *vb = v + r0 * d;
        for (int64_t i = 0; i < nb; i++)
            for (int64_t c = 0; c < d; c++) vb[i * d + c] += f->gamma_v[c] * (db[i * d + c] + f->out_v.b[c]);
    }
    free(S), free(small), free(blkbuf);
    return SAA_OK;
}

/* Text enhancer (transformer_vanilla.py TransformerEncoderLayer, post-norm, relu), in place on l[T, d].
 * The attention mask is ~text_self_attention_masks; the key padding mask is ignored (as upstream). */
static int text_layer_forward(const gd_text_layer *t, int64_t d, int64_t dff, float *l, int64_t T,
                              const float *pos_text, const float *mask)
{
    float *qk = malloc((size_t)(2 * T * d) * sizeof(float));
    if (!qk) return saa_set_error(SAA_ENOMEM, "gdino text layer: out of memory");
    float *o = qk + T * d;
    add_to(l, pos_text, T * d, qk);
    int rc = mha_forward(&t->attn, d, qk, T, qk, l, T, mask, o);
    if (rc == SAA_OK) {
        add_into(l, o, T * d);
        saa_layer_norm(l, T, d, t->norm1.w, t->norm1.b, LN_EPS, l);
        rc = ffn_forward(&t->linear1, &t->linear2, &t->norm2, d, dff, l, T);
    }
    free(qk);
    return rc;
}

/* ---------- traces and outputs ---------- */

static void free_list(float **p, int n)
{
    if (!p) return;
    for (int i = 0; i < n; i++) free(p[i]);
    free(p);
}

void gdino_trace_free(gdino_trace *t)
{
    if (!t) return;
    free(t->feat_map);
    free_list(t->fusion_image, t->n_enc);
    free_list(t->fusion_text, t->n_enc);
    free(t->memory);
    free(t->memory_text);
    free(t->output_memory);
    free(t->output_proposals);
    free(t->enc_logits);
    free(t->max_logits);
    free(t->topk_index);
    free(t->topk_logits);
    free(t->refpoint_unsig);
    free_list(t->query_pos, t->n_dec);
    free_list(t->dec_out, t->n_dec);
    free_list(t->dec_hs, t->n_dec);
    free_list(t->refs, t->n_dec + 1);
    memset(t, 0, sizeof *t);
}

void gdino_raw_free(gdino_raw *r)
{
    if (!r) return;
    free(r->pred_logits);
    free(r->pred_boxes);
    memset(r, 0, sizeof *r);
}

static float *dup_floats(const float *x, int64_t n)
{
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (p && n > 0) memcpy(p, x, (size_t)n * sizeof(float));
    return p;
}

/* ---------- query selection ---------- */

void gdino_encoder_output_proposals(const float *memory, int64_t dim, const msda_levels *lv, float *output_memory,
                                    float *proposals)
{
    for (int l = 0; l < lv->n_levels; l++) {
        const int64_t H = lv->H[l], W = lv->W[l], s = lv->start[l];
        const float wh = 0.05f * (float)(1 << l);
        for (int64_t y = 0; y < H; y++)
            for (int64_t x = 0; x < W; x++) {
                const int64_t r = s + y * W + x;
                const float p[4] = {((float)x + 0.5f) / (float)W, ((float)y + 0.5f) / (float)H, wh, wh};
                int valid = 1;
                for (int k = 0; k < 4; k++) valid &= p[k] > 0.01f && p[k] < 0.99f;
                for (int k = 0; k < 4; k++) proposals[r * 4 + k] = valid ? logf(p[k] / (1.0f - p[k])) : INFINITY;
                if (valid)
                    memcpy(output_memory + r * dim, memory + r * dim, (size_t)dim * sizeof(float));
                else
                    memset(output_memory + r * dim, 0, (size_t)dim * sizeof(float));
            }
    }
}

/* ---------- the whole transformer ---------- */

static int timing_clock = CLOCK_MONOTONIC;
void gdino_timing_cpu_clock(int on) { timing_clock = on ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC; }

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(timing_clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int gdino_run(const saa_gdino *g, const gdino_image *im, const gdino_text *text, const int64_t *forced_topk,
              gdino_trace *trace, gdino_raw *out)
{
    return gdino_run_timed(g, im, text, forced_topk, trace, out, NULL);
}

int gdino_run_timed(const saa_gdino *g, const gdino_image *im, const gdino_text *text, const int64_t *forced_topk,
                    gdino_trace *trace, gdino_raw *out, gdino_timing *tm)
{
    gdino_timing tm_local;
    if (!tm) tm = &tm_local;
    /* Every large product below is split over the OpenMP threads with single-threaded sgemm calls (no
     * OpenBLAS thread pool competing with the OpenMP team); restored on return. */
    const int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    double t0 = wall_s(), t1;
#define LAP(field) (t1 = wall_s(), tm->field += t1 - t0, t0 = t1)
    const saa_gdino_config *c = &g->cfg;
    const int64_t d = c->hidden_dim, dff = c->dim_feedforward, N = im->lv.n_tokens, nq = c->num_queries;
    int64_t T = text->T;
    int rc = SAA_OK;
    memset(out, 0, sizeof *out);
    if (T > c->max_text_len) T = c->max_text_len; /* the official code slices to max_text_len */
    if (T < 1) return saa_set_error(SAA_EINVAL, "gdino: empty caption");
    if (N < nq) return saa_set_error(SAA_EINVAL, "gdino: %lld image tokens < %lld queries", (long long)N, (long long)nq);
    if (trace) {
        memset(trace, 0, sizeof *trace);
        trace->n_enc = c->enc_layers;
        trace->n_dec = c->dec_layers;
    }

    /* working buffers */
    float *memory = dup_floats(im->src, N * d);
    float *mtext = malloc((size_t)(T * d) * sizeof(float));
    float *pos_text = malloc((size_t)(T * d) * sizeof(float));
    float *tmask = malloc((size_t)(T * T) * sizeof(float));
    float *qbuf = malloc((size_t)(N * d) * sizeof(float));
    float *vheads = malloc((size_t)(N * d) * sizeof(float));
    float *tmp = malloc((size_t)(N * d) * sizeof(float));
    float *src2 = malloc((size_t)(N * d) * sizeof(float));
    /* scratch of the box / query-position MLPs on the nq queries (hidden layers ping-pong: 2 * nq * d; the
     * image-token buffers above are too small when N < 2 * nq) */
    float *mlp_tmp = malloc((size_t)(2 * nq * d) * sizeof(float));
    float *logits = NULL, *maxl = NULL, *props = NULL;
    int64_t *topk = NULL;
    float *topv = NULL, *refu = NULL, *ref = NULL, *tgt = NULL, *qpos = NULL, *sine = NULL, *dq = NULL,
          *dtmp = NULL, *hs = NULL, *delta = NULL;
    if (!memory || !mtext || !pos_text || !tmask || !qbuf || !vheads || !tmp || !src2 || !mlp_tmp) {
        rc = saa_set_error(SAA_ENOMEM, "gdino: out of memory for the encoder");
        goto done;
    }

    /* feat_map: Linear(bert hidden, d) of the BERT output */
    par_linear_rows(text->bert_hidden, T, c->bert_hidden, g->feat_map.w, g->feat_map.b, d, mtext);
    if (trace && !(trace->feat_map = dup_floats(mtext, T * d))) goto oom;
    sine_pos_1d(text->position_ids, T, d, pos_text);
    for (int64_t i = 0; i < T; i++)
        for (int64_t j = 0; j < T; j++) tmask[i * T + j] = text->self_mask[i * text->T + j] ? 0.0f : -INFINITY;

    /* ----- encoder: per layer fusion -> text enhancer -> deformable self-attention ----- */
    if (trace && (!(trace->fusion_image = calloc((size_t)c->enc_layers + 1, sizeof(float *))) ||
                  !(trace->fusion_text = calloc((size_t)c->enc_layers + 1, sizeof(float *)))))
        goto oom;
    for (int i = 0; i < c->enc_layers; i++) {
        const gd_enc_layer *e = &g->enc[i];
        t0 = wall_s();
        if ((rc = fusion_forward(&g->fusion[i], d, memory, N, mtext, T)) != SAA_OK) goto done;
        LAP(fusion);
        if (trace && (!(trace->fusion_image[i] = dup_floats(memory, N * d)) ||
                      !(trace->fusion_text[i] = dup_floats(mtext, T * d))))
            goto oom;
        t0 = wall_s();
        if ((rc = text_layer_forward(&g->text[i], d, dff / 2, mtext, T, pos_text, tmask)) != SAA_OK) goto done;
        LAP(text);
        add_to(memory, im->lvl_pos, N * d, qbuf);
        msda_project_value(&e->attn, memory, N, vheads, tmp);
        if ((rc = msda_forward(&e->attn, &im->lv, qbuf, N, im->ref, 2, vheads, src2, tmp)) != SAA_OK) goto done;
        add_into(memory, src2, N * d);
        saa_layer_norm(memory, N, d, e->norm1.w, e->norm1.b, LN_EPS, memory);
        LAP(enc_deform);
        if ((rc = ffn_forward(&e->linear1, &e->linear2, &e->norm2, d, dff, memory, N)) != SAA_OK) goto done;
        LAP(enc_ffn);
    }
    if (trace && (!(trace->memory = dup_floats(memory, N * d)) || !(trace->memory_text = dup_floats(mtext, T * d))))
        goto oom;

    /* ----- language-guided query selection (two_stage_type "standard") ----- */
    t0 = wall_s();
    logits = malloc((size_t)(N * T) * sizeof(float));
    maxl = malloc((size_t)N * sizeof(float));
    props = malloc((size_t)(N * 4) * sizeof(float));
    topk = malloc((size_t)nq * sizeof(int64_t));
    topv = malloc((size_t)nq * sizeof(float));
    refu = malloc((size_t)(nq * 4) * sizeof(float));
    if (!logits || !maxl || !props || !topk || !topv || !refu) goto oom;
    /* output_memory (in qbuf) = enc_output_norm(enc_output(memory with invalid rows zeroed)) */
    gdino_encoder_output_proposals(memory, d, &im->lv, src2, props);
    par_linear_rows(src2, N, d, g->enc_output.w, g->enc_output.b, d, qbuf);
    saa_layer_norm(qbuf, N, d, g->enc_output_norm.w, g->enc_output_norm.b, LN_EPS, qbuf);
    /* ContrastiveEmbed: output_memory @ memory_text^T; the score is the max over the (-inf padded) 256 columns */
    par_gemm_rows(1, N, T, d, 1.0f, qbuf, d, mtext, d, 0.0f, logits, T);
    for (int64_t n = 0; n < N; n++) {
        float mx = -INFINITY;
        for (int64_t t = 0; t < T; t++) mx = logits[n * T + t] > mx ? logits[n * T + t] : mx;
        maxl[n] = mx;
    }
    saa_topk(maxl, N, nq, topk, topv);
    const int64_t *sel = forced_topk ? forced_topk : topk;
    for (int64_t q = 0; q < nq; q++)
        if (sel[q] < 0 || sel[q] >= N) {
            rc = saa_set_error(SAA_EINVAL, "gdino: query index %lld out of range", (long long)sel[q]);
            goto done;
        }
    /* refpoint = gather(enc_out_bbox_embed(output_memory) + proposals): the MLP only on the selected rows */
    for (int64_t q = 0; q < nq; q++) memcpy(tmp + q * d, qbuf + sel[q] * d, (size_t)d * sizeof(float));
    mlp_forward(&g->enc_bbox, tmp, nq, d, d, 4, refu, mlp_tmp);
    for (int64_t q = 0; q < nq; q++)
        for (int k = 0; k < 4; k++) refu[q * 4 + k] += props[sel[q] * 4 + k];
    if (trace) {
        if (!(trace->output_memory = dup_floats(qbuf, N * d)) || !(trace->output_proposals = dup_floats(props, N * 4)) ||
            !(trace->enc_logits = dup_floats(logits, N * T)) || !(trace->max_logits = dup_floats(maxl, N)) ||
            !(trace->topk_logits = dup_floats(topv, nq)) || !(trace->refpoint_unsig = dup_floats(refu, nq * 4)) ||
            !(trace->topk_index = malloc((size_t)nq * sizeof(int64_t))))
            goto oom;
        memcpy(trace->topk_index, topk, (size_t)nq * sizeof(int64_t));
    }

    LAP(query_select);
    /* ----- decoder ----- */
    ref = malloc((size_t)(nq * 4) * sizeof(float));
    tgt = dup_floats(g->tgt_embed, nq * d); /* embed_init_tgt: content queries are tgt_embed */
    qpos = malloc((size_t)(nq * d) * sizeof(float));
    sine = malloc((size_t)(nq * 2 * d) * sizeof(float));
    dq = malloc((size_t)(nq * d) * sizeof(float));
    dtmp = malloc((size_t)(nq * d) * sizeof(float));
    hs = malloc((size_t)(nq * d) * sizeof(float));
    delta = malloc((size_t)(nq * 4) * sizeof(float));
    if (!ref || !tgt || !qpos || !sine || !dq || !dtmp || !hs || !delta) goto oom;
    for (int64_t i = 0; i < nq * 4; i++) ref[i] = sigmoidf_(refu[i]);
    if (trace) {
        if (!(trace->query_pos = calloc((size_t)c->dec_layers, sizeof(float *))) ||
            !(trace->dec_out = calloc((size_t)c->dec_layers, sizeof(float *))) ||
            !(trace->dec_hs = calloc((size_t)c->dec_layers, sizeof(float *))) ||
            !(trace->refs = calloc((size_t)c->dec_layers + 1, sizeof(float *))) ||
            !(trace->refs[0] = dup_floats(ref, nq * 4)))
            goto oom;
    }
    for (int i = 0; i < c->dec_layers; i++) {
        const gd_dec_layer *e = &g->dec[i];
        /* query_pos = ref_point_head(gen_sineembed_for_position(ref * valid_ratio)) */
        sine_embed_boxes(ref, nq, sine);
        mlp_forward(&g->ref_point_head, sine, nq, 2 * d, d, d, qpos, mlp_tmp);
        /* self-attention: q = k = tgt + query_pos, v = tgt */
        add_to(tgt, qpos, nq * d, dq);
        if ((rc = mha_forward(&e->self_attn, d, dq, nq, dq, tgt, nq, NULL, dtmp)) != SAA_OK) goto done;
        add_into(tgt, dtmp, nq * d);
        saa_layer_norm(tgt, nq, d, e->norm2.w, e->norm2.b, LN_EPS, tgt);
        /* text cross-attention */
        add_to(tgt, qpos, nq * d, dq);
        if ((rc = mha_forward(&e->ca_text, d, dq, nq, mtext, mtext, T, NULL, dtmp)) != SAA_OK) goto done;
        add_into(tgt, dtmp, nq * d);
        saa_layer_norm(tgt, nq, d, e->catext_norm.w, e->catext_norm.b, LN_EPS, tgt);
        /* deformable image cross-attention */
        add_to(tgt, qpos, nq * d, dq);
        if ((rc = msda_forward_unprojected(&e->cross, &im->lv, dq, nq, ref, 4, memory, dtmp)) != SAA_OK) goto done;
        add_into(tgt, dtmp, nq * d);
        saa_layer_norm(tgt, nq, d, e->norm1.w, e->norm1.b, LN_EPS, tgt);
        if ((rc = ffn_forward(&e->linear1, &e->linear2, &e->norm3, d, dff, tgt, nq)) != SAA_OK) goto done;
        saa_layer_norm(tgt, nq, d, g->dec_norm.w, g->dec_norm.b, LN_EPS, hs);
        if (trace && (!(trace->query_pos[i] = dup_floats(qpos, nq * d)) || !(trace->dec_out[i] = dup_floats(tgt, nq * d)) ||
                      !(trace->dec_hs[i] = dup_floats(hs, nq * d))))
            goto oom;
        if (i == c->dec_layers - 1) {
            /* final boxes: bbox_embed(decoder.norm(output)) + inverse_sigmoid(reference of this layer) */
            mlp_forward(&g->bbox_embed[i], hs, nq, d, d, 4, delta, mlp_tmp);
            out->pred_boxes = malloc((size_t)(nq * 4) * sizeof(float));
            if (!out->pred_boxes) goto oom;
            for (int64_t k = 0; k < nq * 4; k++) out->pred_boxes[k] = sigmoidf_(delta[k] + inverse_sigmoidf(ref[k]));
        }
        /* iterative refinement uses bbox_embed(RAW output) */
        mlp_forward(&g->bbox_embed[i], tgt, nq, d, d, 4, delta, mlp_tmp);
        for (int64_t k = 0; k < nq * 4; k++) ref[k] = sigmoidf_(delta[k] + inverse_sigmoidf(ref[k]));
        if (trace && !(trace->refs[i + 1] = dup_floats(ref, nq * 4))) goto oom;
    }
    /* contrastive class logits of the last layer: hs @ memory_text^T */
    out->nq = (int)nq;
    out->T = (int)T;
    out->pred_logits = malloc((size_t)(nq * T) * sizeof(float));
    if (!out->pred_logits) goto oom;
    saa_gemm(0, 1, nq, T, d, 1.0f, hs, d, mtext, d, 0.0f, out->pred_logits, T);
    LAP(decoder);
    goto done;
oom:
    rc = saa_set_error(SAA_ENOMEM, "gdino: out of memory");
done:
    free(memory), free(mtext), free(pos_text), free(tmask), free(qbuf), free(vheads), free(tmp), free(src2);
    free(mlp_tmp);
    free(logits), free(maxl), free(props), free(topk), free(topv), free(refu);
    free(ref), free(tgt), free(qpos), free(sine), free(dq), free(dtmp), free(hs), free(delta);
    if (rc != SAA_OK) {
        gdino_raw_free(out);
        if (trace) gdino_trace_free(trace);
    }
    openblas_set_num_threads(blas_threads);
    return rc;
#undef LAP
}

/* ---------- SAA+ bbox_suppression ---------- */

void gdino_python_float_repr(float xf, char *buf, size_t n)
{
    const double x = (double)xf;
    if (isnan(x)) {
        snprintf(buf, n, "nan");
        return;
    }
    if (isinf(x)) {
        snprintf(buf, n, x < 0 ? "-inf" : "inf");
        return;
    }
    if (x == 0) {
        snprintf(buf, n, signbit(x) ? "-0.0" : "0.0");
        return;
    }
    /* shortest digit string that round-trips */
    char sci[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(sci, sizeof sci, "%.*e", p - 1, x);
        if (strtod(sci, NULL) == x) break;
    }
    /* sci = [-]d[.ddd]e[+-]XX */
    const char *s = sci;
    int neg = 0;
    if (*s == '-') neg = 1, s++;
    char digits[24];
    int nd = 0;
    for (; *s && *s != 'e'; s++)
        if (isdigit((unsigned char)*s)) digits[nd++] = *s;
    digits[nd] = 0;
    while (nd > 1 && digits[nd - 1] == '0') digits[--nd] = 0;
    const int exp10 = atoi(s + 1);
    const int decpt = exp10 + 1; /* value = 0.digits * 10^decpt */
    char out[64];
    int k = 0;
    if (neg) out[k++] = '-';
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            out[k++] = '0', out[k++] = '.';
            for (int i = 0; i < -decpt; i++) out[k++] = '0';
            for (int i = 0; i < nd; i++) out[k++] = digits[i];
        } else if (decpt >= nd) {
            for (int i = 0; i < nd; i++) out[k++] = digits[i];
            for (int i = nd; i < decpt; i++) out[k++] = '0';
            out[k++] = '.', out[k++] = '0';
        } else {
            for (int i = 0; i < nd; i++) {
                if (i == decpt) out[k++] = '.';
                out[k++] = digits[i];
            }
        }
        out[k] = 0;
    } else {
        out[k++] = digits[0];
        if (nd > 1) {
            out[k++] = '.';
            for (int i = 1; i < nd; i++) out[k++] = digits[i];
        }
        snprintf(out + k, sizeof out - (size_t)k, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    }
    snprintf(buf, n, "%s", out);
}

void gdino_suppression_free(gdino_suppression *s)
{
    if (!s) return;
    free(s->box_score);
    free(s->area);
    free(s->score_area_mask);
    for (int i = 0; i < s->n_candidates; i++) free(s->candidate_phrases ? s->candidate_phrases[i] : NULL);
    free(s->candidate_phrases);
    free(s->phrase_keep_mask);
    for (int i = 0; i < s->n_kept; i++) {
        free(s->kept_phrases ? s->kept_phrases[i] : NULL);
        free(s->kept_phrases_with_score ? s->kept_phrases_with_score[i] : NULL);
    }
    free(s->kept_query);
    free(s->kept_boxes);
    free(s->kept_scores);
    free(s->kept_phrases);
    free(s->kept_phrases_with_score);
    memset(s, 0, sizeof *s);
}

int gdino_bbox_suppression(const float *logits, const float *boxes, int nq, int T, const int32_t *ids, int T_ids,
                           const saa_tokenizer *tok, const saa_gdino_filter *f, gdino_suppression *s)
{
    memset(s, 0, sizeof *s);
    s->nq = nq;
    s->box_score = malloc((size_t)(nq > 0 ? nq : 1) * sizeof(float));
    s->area = malloc((size_t)(nq > 0 ? nq : 1) * sizeof(float));
    s->score_area_mask = calloc((size_t)(nq > 0 ? nq : 1), 1);
    s->candidate_phrases = calloc((size_t)(nq > 0 ? nq : 1), sizeof(char *));
    s->phrase_keep_mask = calloc((size_t)(nq > 0 ? nq : 1), 1);
    s->kept_query = calloc((size_t)(nq > 0 ? nq : 1), sizeof(int));
    s->kept_boxes = calloc((size_t)(nq > 0 ? nq : 1) * 4, sizeof(float));
    s->kept_scores = calloc((size_t)(nq > 0 ? nq : 1), sizeof(float));
    s->kept_phrases = calloc((size_t)(nq > 0 ? nq : 1), sizeof(char *));
    s->kept_phrases_with_score = calloc((size_t)(nq > 0 ? nq : 1), sizeof(char *));
    int32_t *sel = malloc((size_t)(T > 0 ? T : 1) * sizeof(int32_t));
    if (!s->box_score || !s->area || !s->score_area_mask || !s->candidate_phrases || !s->phrase_keep_mask ||
        !s->kept_query || !s->kept_boxes || !s->kept_scores || !s->kept_phrases || !s->kept_phrases_with_score ||
        !sel) {
        free(sel);
        gdino_suppression_free(s);
        return saa_set_error(SAA_ENOMEM, "bbox_suppression: out of memory");
    }
    /* comparisons against Python floats happen in float32 (tensor dtype) */
    const float box_thr = f->box_threshold, text_thr = f->text_threshold;
    const float max_area = f->object_max_area, min_area = f->object_min_area;
    for (int q = 0; q < nq; q++) {
        /* max over the 256 columns: the padded ones are sigmoid(-inf) = 0 */
        float mx = T < 256 ? 0.0f : -INFINITY;
        for (int t = 0; t < T; t++) mx = logits[(int64_t)q * T + t] > mx ? logits[(int64_t)q * T + t] : mx;
        s->box_score[q] = mx;
        s->area[q] = boxes[q * 4 + 2] * boxes[q * 4 + 3];
        s->score_area_mask[q] = mx > box_thr && s->area[q] < max_area && s->area[q] > min_area;
    }
    for (int q = 0; q < nq; q++) {
        if (!s->score_area_mask[q]) continue;
        /* get_phrases_from_posmap(logit > text_threshold, tokenized, tokenizer) */
        int n = 0;
        for (int t = 0; t < T && t < T_ids; t++)
            if (logits[(int64_t)q * T + t] > text_thr) sel[n++] = ids[t];
        char *phrase = saa_tokenizer_decode(tok, sel, n);
        if (!phrase) {
            free(sel);
            gdino_suppression_free(s);
            return saa_set_error(SAA_ENOMEM, "bbox_suppression: out of memory");
        }
        const int c = s->n_candidates++;
        s->candidate_phrases[c] = phrase;
        /* pred_phrase.count(filtered_phrase) > 0: a substring test ("" matches everything) */
        const int drop = f->filtered_phrase && strstr(phrase, f->filtered_phrase) != NULL;
        s->phrase_keep_mask[c] = !drop;
        if (drop) continue;
        const int k = s->n_kept++;
        char num[64];
        gdino_python_float_repr(s->box_score[q], num, sizeof num);
        num[4] = 0; /* str(...)[:4] */
        size_t len = strlen(phrase) + strlen(num) + 3;
        s->kept_phrases[k] = strdup(phrase);
        s->kept_phrases_with_score[k] = malloc(len);
        if (!s->kept_phrases[k] || !s->kept_phrases_with_score[k]) {
            free(sel);
            gdino_suppression_free(s);
            return saa_set_error(SAA_ENOMEM, "bbox_suppression: out of memory");
        }
        snprintf(s->kept_phrases_with_score[k], len, "%s(%s)", phrase, num);
        s->kept_query[k] = q;
        memcpy(s->kept_boxes + k * 4, boxes + q * 4, 4 * sizeof(float));
        s->kept_scores[k] = s->box_score[q];
    }
    free(sel);
    return SAA_OK;
}

/* ---------- model lifetime ---------- */

int gdino_load_transformer_only(saa_weights *w, const saa_gdino_config *cfg, saa_gdino **out)
{
    *out = NULL;
    saa_gdino *g = calloc(1, sizeof *g);
    if (!g) {
        saa_weights_close(w);
        return saa_set_error(SAA_ENOMEM, "gdino: out of memory");
    }
    g->cfg = *cfg;
    g->weights = w;
    int rc = gdino_bind_transformer(g, w);
    if (rc != SAA_OK) {
        saa_gdino_free(g);
        return rc;
    }
    *out = g;
    return SAA_OK;
}

const saa_gdino_config *saa_gdino_get_config(const saa_gdino *g) { return &g->cfg; }
