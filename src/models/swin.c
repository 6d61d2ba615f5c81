/* Grounding DINO image side: SAA+ preprocessing and the Swin Transformer backbone.
 *
 * Mirrors groundingdino/models/GroundingDINO/backbone/swin_transformer.py (eval mode, ape=False,
 * dilation=False) and groundingdino/datasets/transforms.py (resize with max_size, ToTensor, Normalize).
 *
 * Layout: activations are token-major [H*W, C] (the official x of shape (B, H*W, C)). Every linear layer
 * is one sgemm over a block of tokens; window attention runs per (window, head) with one score matrix per
 * thread. The shifted-window pipeline (norm1 -> pad -> roll -> window_partition -> attention -> proj ->
 * window_reverse -> roll back -> crop -> residual) is done in blocks of window rows so the qkv buffer stays
 * small: the partition gathers straight from the normalised map, the reverse scatters straight onto the
 * residual stream. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "models/swin.h"
#include "saa/tensor.h"

/* ---------- preprocessing ---------- */

/* mirrors transforms.py: resize.get_size_with_aspect_ratio (Python float/int arithmetic) */
void gdino_image_target_size(int w, int h, int size, int max_size, int *oh, int *ow)
{
    if (w <= 0 || h <= 0 || size <= 0) { /* nothing sensible to scale: keep the size */
        *oh = h;
        *ow = w;
        return;
    }
    if (max_size > 0) {
        double mn = (double)(w < h ? w : h), mx = (double)(w > h ? w : h);
        if (mx / mn * (double)size > (double)max_size)
            size = (int)nearbyint((double)max_size * mn / mx); /* Python round(): half to even */
    }
    if ((w <= h && w == size) || (h <= w && h == size)) {
        *oh = h;
        *ow = w;
        return;
    }
    if (w < h) {
        *ow = size;
        *oh = (int)((double)((int64_t)size * h) / (double)w);
    } else {
        *oh = size;
        *ow = (int)((double)((int64_t)size * w) / (double)h);
    }
}

int gdino_image_preprocess(const saa_image *rgb, int size, int max_size, uint8_t **resized, float **tensor,
                           int *oh_out, int *ow_out)
{
    if (resized) *resized = NULL;
    *tensor = NULL;
    if (!rgb || !rgb->data || rgb->c != 3 || rgb->w <= 0 || rgb->h <= 0 || size <= 0)
        return saa_set_error(SAA_EINVAL, "gdino_image_preprocess: expected an RGB image and a positive size");
    int oh, ow;
    gdino_image_target_size(rgb->w, rgb->h, size, max_size, &oh, &ow);
    if (oh <= 0 || ow <= 0)
        return saa_set_error(SAA_EINVAL, "gdino_image_preprocess: %dx%d image resizes to an empty %dx%d",
                             rgb->w, rgb->h, ow, oh);
    size_t npix = (size_t)oh * (size_t)ow;
    uint8_t *u8 = malloc(npix * 3);
    float *t = malloc(npix * 3 * sizeof(float));
    if (!u8 || !t) {
        free(u8);
        free(t);
        return saa_set_error(SAA_ENOMEM, "gdino_image_preprocess: out of memory for %dx%d", ow, oh);
    }
    if (oh == rgb->h && ow == rgb->w) /* torchvision returns the image itself: no resampling */
        memcpy(u8, rgb->data, npix * 3);
    else
        saa_resize_pil_bilinear_u8(rgb->data, rgb->w, rgb->h, 3, u8, ow, oh);
    /* ToTensor (u8 / 255 in float32), then Normalize: (x - mean) / std in float32 */
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    for (int c = 0; c < 3; c++) {
        float *tc = t + (size_t)c * npix;
        for (size_t i = 0; i < npix; i++) {
            float x = (float)u8[i * 3 + (size_t)c] / 255.0f;
            tc[i] = (x - mean[c]) / std[c];
        }
    }
    if (resized)
        *resized = u8;
    else
        free(u8);
    *tensor = t;
    *oh_out = oh;
    *ow_out = ow;
    return SAA_OK;
}

/* ---------- configuration ---------- */

static void config_common(swin_config *c)
{
    memset(c, 0, sizeof *c);
    c->patch_size = 4;
    c->in_chans = 3;
    c->num_stages = 4;
    c->mlp_ratio = 4.0f;
    c->num_out = 3; /* Grounding DINO return_interm_indices [1, 2, 3] */
    c->out_indices[0] = 1;
    c->out_indices[1] = 2;
    c->out_indices[2] = 3;
    c->patch_norm = 1;
    c->ln_eps = 1e-5f;
}

/* mirrors backbone/swin_transformer.py: build_swin_transformer's model_para_dict, with
 * pretrain_img_size = int(name.split("_")[-2]) as backbone.py: build_backbone derives it */
int swin_config_from_name(const char *name, swin_config *c)
{
    static const struct {
        const char *name;
        int embed, depths[4], heads[4], window, pretrain;
    } presets[] = {
        {"swin_T_224_1k", 96, {2, 2, 6, 2}, {3, 6, 12, 24}, 7, 224},
        {"swin_B_224_22k", 128, {2, 2, 18, 2}, {4, 8, 16, 32}, 7, 224},
        {"swin_B_384_22k", 128, {2, 2, 18, 2}, {4, 8, 16, 32}, 12, 384},
        {"swin_L_224_22k", 192, {2, 2, 18, 2}, {6, 12, 24, 48}, 7, 224},
        {"swin_L_384_22k", 192, {2, 2, 18, 2}, {6, 12, 24, 48}, 12, 384},
    };
    for (size_t i = 0; name && i < sizeof presets / sizeof presets[0]; i++) {
        if (strcmp(name, presets[i].name)) continue;
        config_common(c);
        c->embed_dim = presets[i].embed;
        memcpy(c->depths, presets[i].depths, sizeof c->depths);
        memcpy(c->num_heads, presets[i].heads, sizeof c->num_heads);
        c->window_size = presets[i].window;
        c->pretrain_img_size = presets[i].pretrain;
        return SAA_OK;
    }
    return saa_set_error(SAA_EINVAL, "swin: unknown backbone \"%s\" (expected swin_T_224_1k, swin_B_224_22k, "
                                     "swin_B_384_22k, swin_L_224_22k or swin_L_384_22k)", name ? name : "(null)");
}

void swin_config_swin_t(swin_config *c) { swin_config_from_name("swin_T_224_1k", c); }

void swin_config_swin_b(swin_config *c) { swin_config_from_name("swin_B_384_22k", c); }

/* j[key] (or j[alt]) as an int array of 1..max entries; 0 when absent, -1 when malformed */
static int json_int_array(const cJSON *j, const char *key, const char *alt, int *out, int max, int *n)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!a && alt) a = cJSON_GetObjectItemCaseSensitive(j, alt);
    if (!a) return 0;
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) < 1 || cJSON_GetArraySize(a) > max) return -1;
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, a) {
        if (!cJSON_IsNumber(it)) return -1;
        out[i++] = it->valueint;
    }
    *n = i;
    return 1;
}

static const cJSON *json_number(const cJSON *j, const char *key, const char *alt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v && alt) v = cJSON_GetObjectItemCaseSensitive(j, alt);
    return cJSON_IsNumber(v) ? v : NULL;
}

int swin_config_from_json(const cJSON *j, swin_config *c)
{
    if (!cJSON_IsObject(j)) return saa_set_error(SAA_EFORMAT, "swin config: expected a JSON object");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "backbone");
    int have_preset = 0;
    if (cJSON_IsString(v)) {
        int rc = swin_config_from_name(v->valuestring, c);
        if (rc != SAA_OK) return rc;
        have_preset = 1;
    } else {
        config_common(c);
        c->pretrain_img_size = 224;
    }
    /* golden "swin_config" keys, or the "swin_*" keys of a Grounding DINO tiny config */
    int nd = 0, nh = 0;
    int rd = json_int_array(j, "depths", "swin_depths", c->depths, SWIN_MAX_STAGES, &nd);
    int rh = json_int_array(j, "num_heads", "swin_heads", c->num_heads, SWIN_MAX_STAGES, &nh);
    if (rd < 0 || rh < 0 || ((rd || rh || !have_preset) && (rd != 1 || rh != 1 || nd != nh)))
        return saa_set_error(SAA_EFORMAT, "swin config: expected \"depths\" and \"num_heads\" arrays of equal "
                                          "length (1..%d)", SWIN_MAX_STAGES);
    if (rd == 1) c->num_stages = nd;
    if ((v = json_number(j, "embed_dim", "swin_embed_dim")))
        c->embed_dim = v->valueint;
    else if (!have_preset)
        return saa_set_error(SAA_EFORMAT, "swin config: expected a number \"embed_dim\"");
    if ((v = json_number(j, "window_size", "swin_window")))
        c->window_size = v->valueint;
    else if (!have_preset)
        return saa_set_error(SAA_EFORMAT, "swin config: expected a number \"window_size\"");
    if ((v = json_number(j, "mlp_ratio", "swin_mlp_ratio"))) c->mlp_ratio = (float)v->valuedouble;
    if ((v = json_number(j, "patch_size", NULL))) c->patch_size = v->valueint;
    if ((v = json_number(j, "layer_norm_eps", NULL))) c->ln_eps = (float)v->valuedouble;
    if ((v = json_number(j, "pretrain_img_size", NULL))) c->pretrain_img_size = v->valueint;
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "patch_norm"))) c->patch_norm = cJSON_IsTrue(v);
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "ape")) && cJSON_IsTrue(v))
        return saa_set_error(SAA_EUNSUPPORTED, "swin config: ape (absolute position embedding) is not supported "
                                               "(Grounding DINO builds Swin with ape=False)");
    if (json_int_array(j, "out_indices", "return_interm_indices", c->out_indices, SWIN_MAX_STAGES, &c->num_out) < 0)
        return saa_set_error(SAA_EFORMAT, "swin config: \"out_indices\" must be an array of stage numbers");
    return SAA_OK;
}

static int config_validate(const swin_config *c)
{
    if (c->num_stages < 1 || c->num_stages > SWIN_MAX_STAGES || c->embed_dim <= 0 || c->window_size <= 0 ||
        c->patch_size <= 0 || c->in_chans <= 0 || !(c->mlp_ratio > 0) || c->num_out < 1 ||
        c->num_out > c->num_stages)
        return saa_set_error(SAA_EINVAL, "swin config: invalid sizes");
    for (int s = 0; s < c->num_stages; s++) {
        int dim = c->embed_dim << s;
        if (c->depths[s] < 0 || c->num_heads[s] <= 0 || dim % c->num_heads[s])
            return saa_set_error(SAA_EINVAL, "swin config: stage %d has dim %d, %d heads, depth %d", s, dim,
                                 c->num_heads[s], c->depths[s]);
    }
    for (int i = 0; i < c->num_out; i++)
        if (c->out_indices[i] < 0 || c->out_indices[i] >= c->num_stages ||
            (i > 0 && c->out_indices[i] <= c->out_indices[i - 1]))
            return saa_set_error(SAA_EINVAL, "swin config: out_indices must be increasing stage numbers < %d",
                                 c->num_stages);
    return SAA_OK;
}

/* ---------- building blocks ---------- */

/* mirrors WindowAttention.__init__: relative_position_index */
void swin_relative_position_index(int ws, int64_t *idx)
{
    int n = ws * ws;
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) {
            int dy = a / ws - b / ws + ws - 1, dx = a % ws - b % ws + ws - 1;
            idx[(int64_t)a * n + b] = (int64_t)dy * (2 * ws - 1) + dx;
        }
}

/* Region of a coordinate of the shifted padded map (BasicLayer.forward h_slices / w_slices:
 * [0, P-ws), [P-ws, P-shift), [P-shift, P)). */
static inline int shift_region(int p, int P, int ws, int shift)
{
    return p < P - ws ? 0 : (p < P - shift ? 1 : 2);
}

static void window_labels(int Hp, int Wp, int ws, int shift, int wy, int wx, int *labels)
{
    for (int iy = 0; iy < ws; iy++)
        for (int ix = 0; ix < ws; ix++)
            labels[iy * ws + ix] =
                shift_region(wy * ws + iy, Hp, ws, shift) * 3 + shift_region(wx * ws + ix, Wp, ws, shift);
}

/* mirrors BasicLayer.forward: attn_mask (img_mask region ids; -100 where they differ) */
void swin_shift_window_mask(int Hp, int Wp, int ws, int shift, int win, float *mask)
{
    int n = ws * ws, nww = Wp / ws;
    int *labels = malloc(sizeof(int) * (size_t)n);
    if (!labels) return;
    window_labels(Hp, Wp, ws, shift, win / nww, win % nww, labels);
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) mask[(int64_t)a * n + b] = labels[a] == labels[b] ? 0.0f : -100.0f;
    free(labels);
}

/* Source pixel of the token at shifted coordinate (py, px) of the padded map: torch.roll by -shift means
 * shifted[p] = padded[(p + shift) mod P]; -1 when it falls in the zero padding. */
static inline int64_t window_source(int py, int px, int H, int W, int Hp, int Wp, int shift)
{
    int sy = (py + shift) % Hp, sx = (px + shift) % Wp;
    return (sy < H && sx < W) ? (int64_t)sy * W + sx : -1;
}

/* window_partition(roll(pad(x))) for windows [win0, win0 + nwin) (row-major window numbers):
 * windows[(w - win0) * N + t, C]. */
static void gather_windows(const float *x, int H, int W, int C, int ws, int shift, int64_t win0, int64_t nwin,
                           float *windows)
{
    const int Hp = (H + ws - 1) / ws * ws, Wp = (W + ws - 1) / ws * ws, nww = Wp / ws, n = ws * ws;
    for (int64_t w = 0; w < nwin; w++) {
        const int wy = (int)((win0 + w) / nww), wx = (int)((win0 + w) % nww);
        for (int t = 0; t < n; t++) {
            int64_t src = window_source(wy * ws + t / ws, wx * ws + t % ws, H, W, Hp, Wp, shift);
            float *dst = windows + (w * n + t) * C;
            if (src >= 0)
                memcpy(dst, x + src * C, sizeof(float) * (size_t)C);
            else
                memset(dst, 0, sizeof(float) * (size_t)C);
        }
    }
}

/* window_reverse + roll back + crop for windows [win0, win0 + nwin), added onto y (the residual stream).
 * Every pixel belongs to exactly one window, so disjoint window ranges write disjoint pixels. */
static void scatter_add_windows(const float *windows, int H, int W, int C, int ws, int shift, int64_t win0,
                                int64_t nwin, float *y)
{
    const int Hp = (H + ws - 1) / ws * ws, Wp = (W + ws - 1) / ws * ws, nww = Wp / ws, n = ws * ws;
    for (int64_t w = 0; w < nwin; w++) {
        const int wy = (int)((win0 + w) / nww), wx = (int)((win0 + w) % nww);
        for (int t = 0; t < n; t++) {
            int64_t dst = window_source(wy * ws + t / ws, wx * ws + t % ws, H, W, Hp, Wp, shift);
            if (dst < 0) continue;
            const float *s = windows + (w * n + t) * C;
            float *d = y + dst * C;
            for (int c = 0; c < C; c++) d[c] += s[c];
        }
    }
}

static int64_t window_count(int H, int W, int ws)
{
    return (int64_t)((H + ws - 1) / ws) * ((W + ws - 1) / ws);
}

void swin_window_partition(const float *x, int H, int W, int C, int ws, int shift, float *windows)
{
    const int64_t nwin = window_count(H, W, ws), n = (int64_t)ws * ws;
#pragma omp parallel for schedule(static)
    for (int64_t w = 0; w < nwin; w++) gather_windows(x, H, W, C, ws, shift, w, 1, windows + w * n * C);
}

void swin_window_reverse_add(const float *windows, int H, int W, int C, int ws, int shift, float *y)
{
    const int64_t nwin = window_count(H, W, ws), n = (int64_t)ws * ws;
#pragma omp parallel for schedule(static)
    for (int64_t w = 0; w < nwin; w++) scatter_add_windows(windows + w * n * C, H, W, C, ws, shift, w, 1, y);
}

/* ---------- model ---------- */

typedef struct {
    const float *norm1_w, *norm1_b, *qkv_w, *qkv_b, *proj_w, *proj_b;
    const float *norm2_w, *norm2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
    float *attn_bias; /* relative position bias gathered once: [heads, N, N] */
    const saa_tensor *rp_table, *rp_index; /* as bound (rp_index optional); used while loading */
} swin_block;

typedef struct {
    int dim, heads, depth, hidden;
    swin_block *blocks;
    const float *down_norm_w, *down_norm_b, *down_w; /* PatchMerging (NULL in the last stage) */
    const float *out_norm_w, *out_norm_b;            /* norm{i} when i is an output stage */
} swin_stage;

struct swin_model {
    swin_config cfg;
    const float *pe_w, *pe_b, *pe_norm_w, *pe_norm_b;
    swin_stage stages[SWIN_MAX_STAGES];
};

const swin_config *swin_get_config(const swin_model *m) { return &m->cfg; }

void swin_free(swin_model *m)
{
    if (!m) return;
    for (int s = 0; s < SWIN_MAX_STAGES; s++) {
        if (!m->stages[s].blocks) continue;
        for (int b = 0; b < m->stages[s].depth; b++) free(m->stages[s].blocks[b].attn_bias);
        free(m->stages[s].blocks);
    }
    free(m);
}

static int is_output_stage(const swin_config *c, int s)
{
    for (int i = 0; i < c->num_out; i++)
        if (c->out_indices[i] == s) return 1;
    return 0;
}

int swin_load(saa_weights *w, const char *prefix, const swin_config *cfg, swin_model **out)
{
    *out = NULL;
    int rc = config_validate(cfg);
    if (rc != SAA_OK) return rc;
    swin_model *m = calloc(1, sizeof *m);
    if (!m) return saa_set_error(SAA_ENOMEM, "swin_load: out of memory");
    m->cfg = *cfg;
    const int ws = cfg->window_size, n = ws * ws, ps = cfg->patch_size, E = cfg->embed_dim;
    const int64_t table_rows = (int64_t)(2 * ws - 1) * (2 * ws - 1);
    for (int s = 0; s < cfg->num_stages; s++) {
        swin_stage *st = &m->stages[s];
        st->dim = E << s;
        st->heads = cfg->num_heads[s];
        st->depth = cfg->depths[s];
        st->hidden = (int)((double)st->dim * (double)cfg->mlp_ratio); /* int(dim * mlp_ratio) */
        st->blocks = calloc((size_t)(st->depth > 0 ? st->depth : 1), sizeof(swin_block));
        if (!st->blocks) {
            swin_free(m);
            return saa_set_error(SAA_ENOMEM, "swin_load: out of memory");
        }
    }

    saa_binder *b = saa_binder_new(w, prefix);
    if (!b) {
        swin_free(m);
        return saa_set_error(SAA_ENOMEM, "swin_load: out of memory");
    }
    m->pe_w = saa_bind(b, 4, (int64_t[]){E, cfg->in_chans, ps, ps}, "patch_embed.proj.weight");
    m->pe_b = saa_bind(b, 1, (int64_t[]){E}, "patch_embed.proj.bias");
    if (cfg->patch_norm) {
        m->pe_norm_w = saa_bind(b, 1, (int64_t[]){E}, "patch_embed.norm.weight");
        m->pe_norm_b = saa_bind(b, 1, (int64_t[]){E}, "patch_embed.norm.bias");
    }
    for (int s = 0; s < cfg->num_stages; s++) {
        swin_stage *st = &m->stages[s];
        const int64_t d = st->dim, hd = st->hidden;
        for (int i = 0; i < st->depth; i++) {
            swin_block *bl = &st->blocks[i];
#define P(...) "layers.%d.blocks.%d." __VA_ARGS__, s, i
            bl->norm1_w = saa_bind(b, 1, (int64_t[]){d}, P("norm1.weight"));
            bl->norm1_b = saa_bind(b, 1, (int64_t[]){d}, P("norm1.bias"));
            bl->rp_table =
                saa_bind_tensor(b, 2, (int64_t[]){table_rows, st->heads}, P("attn.relative_position_bias_table"));
            bl->rp_index = saa_bind_optional(b, 2, (int64_t[]){n, n}, P("attn.relative_position_index"));
            bl->qkv_w = saa_bind(b, 2, (int64_t[]){3 * d, d}, P("attn.qkv.weight"));
            bl->qkv_b = saa_bind(b, 1, (int64_t[]){3 * d}, P("attn.qkv.bias"));
            bl->proj_w = saa_bind(b, 2, (int64_t[]){d, d}, P("attn.proj.weight"));
            bl->proj_b = saa_bind(b, 1, (int64_t[]){d}, P("attn.proj.bias"));
            bl->norm2_w = saa_bind(b, 1, (int64_t[]){d}, P("norm2.weight"));
            bl->norm2_b = saa_bind(b, 1, (int64_t[]){d}, P("norm2.bias"));
            bl->fc1_w = saa_bind(b, 2, (int64_t[]){hd, d}, P("mlp.fc1.weight"));
            bl->fc1_b = saa_bind(b, 1, (int64_t[]){hd}, P("mlp.fc1.bias"));
            bl->fc2_w = saa_bind(b, 2, (int64_t[]){d, hd}, P("mlp.fc2.weight"));
            bl->fc2_b = saa_bind(b, 1, (int64_t[]){d}, P("mlp.fc2.bias"));
#undef P
        }
        if (s < cfg->num_stages - 1) {
            st->down_w = saa_bind(b, 2, (int64_t[]){2 * d, 4 * d}, "layers.%d.downsample.reduction.weight", s);
            st->down_norm_w = saa_bind(b, 1, (int64_t[]){4 * d}, "layers.%d.downsample.norm.weight", s);
            st->down_norm_b = saa_bind(b, 1, (int64_t[]){4 * d}, "layers.%d.downsample.norm.bias", s);
        }
        if (is_output_stage(cfg, s)) {
            st->out_norm_w = saa_bind(b, 1, (int64_t[]){d}, "norm%d.weight", s);
            st->out_norm_b = saa_bind(b, 1, (int64_t[]){d}, "norm%d.bias", s);
        }
    }
    rc = saa_binder_finish(b);
    if (rc != SAA_OK) {
        swin_free(m);
        return rc;
    }

    /* relative position bias, gathered once per block (WindowAttention.forward) */
    int64_t *rpi = malloc(sizeof(int64_t) * (size_t)n * (size_t)n);
    if (!rpi) {
        swin_free(m);
        return saa_set_error(SAA_ENOMEM, "swin_load: out of memory");
    }
    swin_relative_position_index(ws, rpi);
    for (int s = 0; s < cfg->num_stages && rc == SAA_OK; s++) {
        swin_stage *st = &m->stages[s];
        for (int i = 0; i < st->depth && rc == SAA_OK; i++) {
            const saa_tensor *tab = st->blocks[i].rp_table, *idx = st->blocks[i].rp_index;
            if (idx) { /* the stored buffer must be the one the official module computes */
                for (int64_t k = 0; k < (int64_t)n * n; k++)
                    if (saa_tensor_get(idx, k) != (double)rpi[k]) {
                        rc = saa_set_error(SAA_EFORMAT,
                                           "%s: %slayers.%d.blocks.%d.attn.relative_position_index differs from "
                                           "the index of window size %d at entry %lld",
                                           saa_weights_path(w), prefix ? prefix : "", s, i, ws, (long long)k);
                        break;
                    }
            }
            if (rc != SAA_OK) break;
            const float *table = tab ? (const float *)tab->data : NULL;
            float *bias = malloc(sizeof(float) * (size_t)st->heads * (size_t)n * (size_t)n);
            if (!bias || !table) {
                free(bias);
                rc = saa_set_error(SAA_ENOMEM, "swin_load: out of memory");
                break;
            }
            for (int h = 0; h < st->heads; h++)
                for (int64_t k = 0; k < (int64_t)n * n; k++)
                    bias[(int64_t)h * n * n + k] = table[rpi[k] * st->heads + h];
            st->blocks[i].attn_bias = bias;
        }
    }
    free(rpi);
    if (rc != SAA_OK) {
        swin_free(m);
        return rc;
    }
    *out = m;
    return SAA_OK;
}

/* ---------- forward ---------- */

/* Work split: every thread runs whole tasks with single-threaded sgemm calls (no OpenBLAS threads
 * competing with the OpenMP team). An attention task is a group of windows: partition + norm1, qkv,
 * attention, proj and the residual add all stay in that thread's buffers; an MLP task is a block of
 * token rows. */
enum { TASK_ROWS = 1024 };

/* y[rows, out] (=|+=) x[rows, in] W[out, in]^T + b, on the calling thread */
static void linear_rows(const float *x, int64_t rows, int64_t in, const float *W, const float *bias, int64_t out,
                        float *y, int accumulate)
{
    if (rows <= 0) return;
    if (bias) {
        for (int64_t r = 0; r < rows; r++) {
            float *yr = y + r * out;
            if (accumulate)
                for (int64_t o = 0; o < out; o++) yr[o] += bias[o];
            else
                memcpy(yr, bias, sizeof(float) * (size_t)out);
        }
    }
    float beta = (bias || accumulate) ? 1.0f : 0.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)rows, (blasint)out, (blasint)in, 1.0f, x,
                (blasint)in, W, (blasint)in, beta, y, (blasint)out);
}

/* Task sizes of a stage with an h x w map: g windows per attention task, r rows per row task; both capped
 * so that every thread gets at least two tasks. */
static void plan_stage(int h, int w, int ws, int nthreads, int64_t *g, int64_t *r)
{
    const int64_t n = (int64_t)ws * ws, nwin = window_count(h, w, ws), T = (int64_t)h * w;
    const int64_t parts = 2 * (int64_t)nthreads;
    int64_t gg = TASK_ROWS / n, rr = TASK_ROWS;
    if (gg > (nwin + parts - 1) / parts) gg = (nwin + parts - 1) / parts;
    if (rr > (T + parts - 1) / parts) rr = (T + parts - 1) / parts;
    *g = gg < 1 ? 1 : gg;
    *r = rr < 1 ? 1 : rr;
}

/* Per-thread attention scratch: S[N, N], mask[N, N], Kt[d, N], labels[N] (ints in float slots). */
static size_t attention_scratch_floats(int n, int d)
{
    size_t f = 2 * (size_t)n * n + (size_t)d * n + (size_t)n;
    return (f + 15) & ~(size_t)15;
}

/* Windows [win0, win0 + nw): qkv[nw*N, 3C] -> out[nw*N, C], every head, on the calling thread.
 * mirrors WindowAttention.forward: softmax(q * scale @ k^T + relative bias (+ shift mask)) @ v;
 * the two products are single-threaded sgemm calls on strided views of qkv (one score matrix at a time). */
static void attention_windows(const float *qkv, int64_t win0, int64_t nw, int n, int C, int heads,
                              const float *attn_bias, int shift, int Hp, int Wp, int ws, float *out, float *scratch)
{
    const int d = C / heads, nww = Wp / ws;
    const float scale = 1.0f / sqrtf((float)d); /* head_dim ** -0.5 */
    const int ld = 3 * C;
    float *S = scratch;                        /* [N, N] scores of one head */
    float *mask = S + (size_t)n * n;           /* [N, N] shift mask of the window */
    float *Kt = mask + (size_t)n * n;          /* [d, N] keys of one head, transposed */
    int *labels = (int *)(Kt + (size_t)d * n); /* [N] shift regions of the window's tokens */
    for (int64_t w = 0; w < nw; w++) {
        const float *base = qkv + w * n * ld;
        int masked = 0; /* shifted windows away from the last row/column see one region only */
        if (shift > 0) {
            window_labels(Hp, Wp, ws, shift, (int)((win0 + w) / nww), (int)((win0 + w) % nww), labels);
            for (int j = 1; j < n; j++) masked |= labels[j] != labels[0];
            if (masked) /* BasicLayer's attn_mask of this window */
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < n; j++) mask[(int64_t)i * n + j] = labels[i] == labels[j] ? 0.0f : -100.0f;
        }
        for (int h = 0; h < heads; h++) {
            const float *bias = attn_bias + (int64_t)h * n * n;
            for (int j = 0; j < n; j++) { /* K^T of this head, so both products take OpenBLAS's small NN path */
                const float *kj = base + (int64_t)j * ld + C + h * d;
                for (int k = 0; k < d; k++) Kt[(int64_t)k * n + j] = kj[k];
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, d, scale, base + h * d, ld, Kt, n, 0.0f,
                        S, n);
            const int64_t nn = (int64_t)n * n;
            if (masked) {
#pragma omp simd
                for (int64_t k = 0; k < nn; k++) S[k] += bias[k] + mask[k];
            } else {
#pragma omp simd
                for (int64_t k = 0; k < nn; k++) S[k] += bias[k];
            }
            saa_softmax_rows(S, n, n);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, n, 1.0f, S, n, base + 2 * C + h * d, ld,
                        0.0f, out + w * n * C + h * d, C);
        }
    }
}

/* Zeroes the window tokens that fall in the padding (F.pad comes after norm1). */
static void zero_padding(float *windows, int H, int W, int C, int ws, int shift, int64_t win0, int64_t nw)
{
    const int Hp = (H + ws - 1) / ws * ws, Wp = (W + ws - 1) / ws * ws, nww = Wp / ws, n = ws * ws;
    if (Hp == H && Wp == W) return;
    for (int64_t w = 0; w < nw; w++) {
        const int wy = (int)((win0 + w) / nww), wx = (int)((win0 + w) % nww);
        for (int t = 0; t < n; t++)
            if (window_source(wy * ws + t / ws, wx * ws + t % ws, H, W, Hp, Wp, shift) < 0)
                memset(windows + (w * n + t) * C, 0, sizeof(float) * (size_t)C);
    }
}

typedef struct {
    float *arena;       /* nthreads * per_thread floats */
    size_t per_thread;  /* floats per thread */
    size_t win_floats;  /* offset of the row-task area within a thread's part */
    int nthreads;
} work_buffers;

static float *thread_part(const work_buffers *wb)
{
#ifdef _OPENMP
    return wb->arena + wb->per_thread * (size_t)omp_get_thread_num();
#else
    return wb->arena;
#endif
}

/* mirrors SwinTransformerBlock.forward */
static void block_forward(const swin_model *m, const swin_stage *st, const swin_block *bl, int shift, float *x,
                          int H, int W, const work_buffers *wb)
{
    const int C = st->dim, ws = m->cfg.window_size, n = ws * ws, hid = st->hidden;
    const int Hp = (H + ws - 1) / ws * ws, Wp = (W + ws - 1) / ws * ws;
    const int64_t T = (int64_t)H * W, nwin = window_count(H, W, ws);
    const float eps = m->cfg.ln_eps;
    int64_t g, r;
    plan_stage(H, W, ws, wb->nthreads, &g, &r);
    const int64_t attn_tasks = (nwin + g - 1) / g, row_tasks = (T + r - 1) / r;
#pragma omp parallel
    {
        float *part = thread_part(wb);
        float *win = part, *qkv = win + g * n * C, *att = qkv + g * n * 3 * C, *scr = att + g * n * C;
        float *xn = part + wb->win_floats, *hidden = xn + r * C;
        /* x = x + crop(roll(window_reverse(proj(attn(window_partition(roll(pad(norm1(x))))))))) */
#pragma omp for schedule(dynamic)
        for (int64_t task = 0; task < attn_tasks; task++) {
            const int64_t w0 = task * g, nw = nwin - w0 < g ? nwin - w0 : g, rows = nw * n;
            gather_windows(x, H, W, C, ws, shift, w0, nw, win);
            saa_layer_norm(win, rows, C, bl->norm1_w, bl->norm1_b, eps, win);
            zero_padding(win, H, W, C, ws, shift, w0, nw);
            linear_rows(win, rows, C, bl->qkv_w, bl->qkv_b, 3 * (int64_t)C, qkv, 0);
            attention_windows(qkv, w0, nw, n, C, st->heads, bl->attn_bias, shift, Hp, Wp, ws, att, scr);
            linear_rows(att, rows, C, bl->proj_w, bl->proj_b, C, win, 0);
            scatter_add_windows(win, H, W, C, ws, shift, w0, nw, x);
        }
        /* x = x + mlp(norm2(x)) */
#pragma omp for schedule(dynamic)
        for (int64_t task = 0; task < row_tasks; task++) {
            const int64_t r0 = task * r, rows = T - r0 < r ? T - r0 : r;
            saa_layer_norm(x + r0 * C, rows, C, bl->norm2_w, bl->norm2_b, eps, xn);
            linear_rows(xn, rows, C, bl->fc1_w, bl->fc1_b, hid, hidden, 0);
            saa_gelu_erf(hidden, rows * hid);
            linear_rows(hidden, rows, hid, bl->fc2_w, bl->fc2_b, C, x + r0 * C, 1);
        }
    }
}

/* mirrors PatchMerging.forward: x[H*W, C] -> y[((H+1)/2)*((W+1)/2), 2C] */
static void patch_merging(const swin_stage *st, float eps, const float *x, int H, int W, float *y,
                          const work_buffers *wb)
{
    const int C = st->dim, H2 = (H + 1) / 2, W2 = (W + 1) / 2;
    const int64_t T2 = (int64_t)H2 * W2;
    int64_t g, r;
    plan_stage(H2, W2, 1, wb->nthreads, &g, &r);
    const int64_t tasks = (T2 + r - 1) / r;
#pragma omp parallel
    {
        float *tmp = thread_part(wb) + wb->win_floats; /* [r, 4C] */
#pragma omp for schedule(dynamic)
        for (int64_t task = 0; task < tasks; task++) {
            const int64_t t0 = task * r, rows = T2 - t0 < r ? T2 - t0 : r;
            for (int64_t k = 0; k < rows; k++) {
                const int64_t t = t0 + k;
                const int y2 = (int)(t / W2), x2 = (int)(t % W2);
                /* torch.cat([x0, x1, x2, x3]): (row, col) offsets (0,0), (1,0), (0,1), (1,1); odd sizes
                 * are zero-padded at the bottom/right */
                static const int dy[4] = {0, 1, 0, 1}, dx[4] = {0, 0, 1, 1};
                for (int q = 0; q < 4; q++) {
                    const int sy = 2 * y2 + dy[q], sx = 2 * x2 + dx[q];
                    float *dst = tmp + k * 4 * C + (int64_t)q * C;
                    if (sy < H && sx < W)
                        memcpy(dst, x + ((int64_t)sy * W + sx) * C, sizeof(float) * (size_t)C);
                    else
                        memset(dst, 0, sizeof(float) * (size_t)C);
                }
            }
            saa_layer_norm(tmp, rows, 4 * C, st->down_norm_w, st->down_norm_b, eps, tmp);
            linear_rows(tmp, rows, 4 * C, st->down_w, NULL, 2 * (int64_t)C, y + t0 * 2 * C, 0);
        }
    }
}

/* PatchEmbed.forward: conv ps x ps stride ps (right/bottom zero padding to patch multiples) as a matmul
 * over patches in (c, ky, kx) order, then the optional LayerNorm. */
static void patch_embed(const swin_model *m, const float *img, int H, int W, int h, int w, float *x,
                        const work_buffers *wb)
{
    const swin_config *cfg = &m->cfg;
    const int ps = cfg->patch_size, Cin = cfg->in_chans, E = cfg->embed_dim, K = Cin * ps * ps;
    const int64_t T = (int64_t)h * w;
    int64_t g, r;
    plan_stage(h, w, 1, wb->nthreads, &g, &r);
    const int64_t tasks = (T + r - 1) / r;
#pragma omp parallel
    {
        float *cols = thread_part(wb) + wb->win_floats; /* [r, K] */
#pragma omp for schedule(dynamic)
        for (int64_t task = 0; task < tasks; task++) {
            const int64_t t0 = task * r, rows = T - t0 < r ? T - t0 : r;
            float *col = cols;
            for (int64_t t = t0; t < t0 + rows; t++) {
                const int py = (int)(t / w), px = (int)(t % w);
                for (int c = 0; c < Cin; c++)
                    for (int ky = 0; ky < ps; ky++) {
                        const int iy = py * ps + ky;
                        for (int kx = 0; kx < ps; kx++) {
                            const int ix = px * ps + kx;
                            *col++ = (iy < H && ix < W) ? img[((int64_t)c * H + iy) * W + ix] : 0.0f;
                        }
                    }
            }
            linear_rows(cols, rows, K, m->pe_w, m->pe_b, E, x + t0 * E, 0);
            if (cfg->patch_norm)
                saa_layer_norm(x + t0 * E, rows, E, m->pe_norm_w, m->pe_norm_b, cfg->ln_eps, x + t0 * E);
        }
    }
}

/* norm{s}(x_out).view(H, W, C).permute(2, 0, 1): x[T, C] -> o[C, T] */
static void output_norm(const swin_stage *st, float eps, const float *x, int h, int w, float *o,
                        const work_buffers *wb)
{
    const int C = st->dim;
    const int64_t T = (int64_t)h * w;
    int64_t g, r;
    plan_stage(h, w, 1, wb->nthreads, &g, &r);
    const int64_t tasks = (T + r - 1) / r;
#pragma omp parallel
    {
        float *tmp = thread_part(wb) + wb->win_floats; /* [r, C] */
#pragma omp for schedule(dynamic)
        for (int64_t task = 0; task < tasks; task++) {
            const int64_t t0 = task * r, rows = T - t0 < r ? T - t0 : r;
            saa_layer_norm(x + t0 * C, rows, C, st->out_norm_w, st->out_norm_b, eps, tmp);
            for (int c = 0; c < C; c++)
                for (int64_t k = 0; k < rows; k++) o[(int64_t)c * T + t0 + k] = tmp[k * C + c];
        }
    }
}

void swin_features_free(swin_features *f)
{
    if (!f) return;
    for (int i = 0; i < SWIN_MAX_STAGES; i++) {
        free(f->data[i]);
        f->data[i] = NULL;
    }
    f->num_levels = 0;
}

int swin_forward(swin_model *m, const float *img, int H, int W, swin_features *out)
{
    memset(out, 0, sizeof *out);
    const swin_config *cfg = &m->cfg;
    if (!img || H <= 0 || W <= 0) return saa_set_error(SAA_EINVAL, "swin_forward: empty %dx%d image", W, H);
    const int ps = cfg->patch_size, ws = cfg->window_size, n = ws * ws;
    int h = (H + ps - 1) / ps, w = (W + ps - 1) / ps;

    work_buffers wb = {0};
#ifdef _OPENMP
    wb.nthreads = omp_get_max_threads();
#else
    wb.nthreads = 1;
#endif
    /* per-thread sizes: window-task buffers, then the row-task area (max over every use) */
    {
        size_t win_max = 0, row_max = 0;
        int64_t g, r;
        plan_stage(h, w, 1, wb.nthreads, &g, &r);
        row_max = (size_t)r * (size_t)(cfg->in_chans * ps * ps);
        int hh = h, ww = w;
        for (int s = 0; s < cfg->num_stages; s++) {
            const swin_stage *st = &m->stages[s];
            const size_t C = (size_t)st->dim;
            plan_stage(hh, ww, ws, wb.nthreads, &g, &r);
            size_t wf = (size_t)g * (size_t)n * C * 5 + attention_scratch_floats(n, (int)C / st->heads);
            size_t rf = (size_t)r * (C + (size_t)st->hidden);
            if (wf > win_max) win_max = wf;
            if (rf > row_max) row_max = rf;
            plan_stage(hh, ww, 1, wb.nthreads, &g, &r); /* output norm */
            if ((size_t)r * C > row_max) row_max = (size_t)r * C;
            if (s < cfg->num_stages - 1) {
                hh = (hh + 1) / 2;
                ww = (ww + 1) / 2;
                plan_stage(hh, ww, 1, wb.nthreads, &g, &r); /* patch merging */
                if ((size_t)r * 4 * C > row_max) row_max = (size_t)r * 4 * C;
            }
        }
        wb.win_floats = (win_max + 15) & ~(size_t)15;
        wb.per_thread = wb.win_floats + ((row_max + 15) & ~(size_t)15);
    }
    wb.arena = malloc(sizeof(float) * wb.per_thread * (size_t)wb.nthreads);
    float *x = malloc(sizeof(float) * (size_t)h * w * cfg->embed_dim), *x2 = NULL;
    int rc = SAA_OK;
    if (!wb.arena || !x) {
        rc = saa_set_error(SAA_ENOMEM, "swin_forward: out of memory for a %dx%d image", W, H);
        goto done;
    }
    /* sgemm runs on each OpenMP thread separately: keep OpenBLAS's own pool out of it */
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);

    patch_embed(m, img, H, W, h, w, x, &wb);
    for (int s = 0; s < cfg->num_stages; s++) {
        const swin_stage *st = &m->stages[s];
        const int C = st->dim;
        for (int i = 0; i < st->depth; i++) /* BasicLayer: odd blocks use shifted windows */
            block_forward(m, st, &st->blocks[i], (i % 2) ? ws / 2 : 0, x, h, w, &wb);
        if (st->out_norm_w) {
            const int l = out->num_levels;
            float *o = malloc(sizeof(float) * (size_t)h * w * C);
            if (!o) {
                rc = saa_set_error(SAA_ENOMEM, "swin_forward: out of memory");
                break;
            }
            output_norm(st, cfg->ln_eps, x, h, w, o, &wb);
            out->data[l] = o;
            out->C[l] = C;
            out->H[l] = h;
            out->W[l] = w;
            out->num_levels = l + 1;
        }
        if (s < cfg->num_stages - 1) {
            const int h2 = (h + 1) / 2, w2 = (w + 1) / 2;
            x2 = malloc(sizeof(float) * (size_t)h2 * w2 * 2 * C);
            if (!x2) {
                rc = saa_set_error(SAA_ENOMEM, "swin_forward: out of memory");
                break;
            }
            patch_merging(st, cfg->ln_eps, x, h, w, x2, &wb);
            free(x);
            x = x2;
            x2 = NULL;
            h = h2;
            w = w2;
        }
    }
    openblas_set_num_threads(blas_threads);

done:
    free(x);
    free(wb.arena);
    if (rc != SAA_OK) swin_features_free(out);
    return rc;
}
