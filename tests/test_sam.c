/* SAM: presets against build_sam.py, preset detection from shapes, config sizes the official classes
 * accept, the float64 prompt transform, binding errors that name the tensor and its expected shape, and
 * an encoder block (windowed with padding, and global) and the prompt-encoder-fed mask decoder against
 * brute-force double-precision transcriptions of image_encoder.py / mask_decoder.py + transformer.py on
 * random models of other sizes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "models/sam_internal.h"
#include "saa/sam.h"
#include "test.h"

static void test_presets(void)
{
    saa_sam_config c;
    CHECK(saa_sam_config_preset("vit_b", &c) == SAA_OK);
    CHECK(c.embed_dim == 768 && c.depth == 12 && c.num_heads == 12 && c.mlp_dim == 3072);
    CHECK(c.n_global == 4 && c.global_attn_indexes[0] == 2 && c.global_attn_indexes[3] == 11);
    CHECK(saa_sam_config_preset("vit_l", &c) == SAA_OK);
    CHECK(c.embed_dim == 1024 && c.depth == 24 && c.num_heads == 16 && c.global_attn_indexes[1] == 11);
    CHECK(saa_sam_config_preset("vit_h", &c) == SAA_OK);
    CHECK(c.embed_dim == 1280 && c.depth == 32 && c.num_heads == 16 && c.global_attn_indexes[2] == 23);
    CHECK(c.img_size == 1024 && c.window_size == 14 && c.out_chans == 256 && c.prompt_dim == 256);
    CHECK(c.emb_h == 64 && c.dec_heads == 8 && c.dec_mlp_dim == 2048 && c.iou_head_hidden == 256);
    CHECK(c.block_eps == 1e-6f && c.dec_eps == 1e-5f && c.pixel_std[2] == 57.375f);
    CHECK(saa_sam_config_preset("vit_x", &c) == SAA_EINVAL);
}

static saa_tensor *zeros(int ndim, const int64_t *shape) { return saa_tensor_new(SAA_F32, ndim, shape); }

/* The shapes that tell the presets apart (patch embedding width, block count); build_sam.py values. */
static saa_weights *preset_shapes(int dim, int depth)
{
    saa_weights *w = saa_weights_alloc("fake.pth");
    saa_weights_add(w, "image_encoder.patch_embed.proj.weight", zeros(4, (int64_t[]){dim, 3, 16, 16}));
    char name[96];
    for (int i = 0; i < depth; i++) {
        snprintf(name, sizeof name, "image_encoder.blocks.%d.norm1.weight", i);
        saa_weights_add(w, name, zeros(1, (int64_t[]){dim}));
    }
    return w;
}

static void test_detect(void)
{
    saa_weights *w = preset_shapes(768, 12);
    saa_sam_config c;
    CHECK(saa_sam_config_from_weights(w, &c) == SAA_OK);
    CHECK(c.embed_dim == 768 && c.depth == 12 && c.num_heads == 12 && c.global_attn_indexes[0] == 2);
    saa_weights_add(w, "image_encoder.blocks.12.norm1.weight", zeros(1, (int64_t[]){768}));
    CHECK(saa_sam_config_from_weights(w, &c) == SAA_EFORMAT);
    CHECK(strstr(saa_last_error(), "embed_dim 768 and 13 blocks matches no preset") != NULL);
    saa_weights_close(w);
    w = preset_shapes(1024, 24);
    CHECK(saa_sam_config_from_weights(w, &c) == SAA_OK);
    CHECK(c.embed_dim == 1024 && c.depth == 24 && c.num_heads == 16 && c.global_attn_indexes[0] == 5 &&
          c.global_attn_indexes[3] == 23 && c.mlp_dim == 4096);
    saa_weights_close(w);
    w = preset_shapes(1280, 32);
    CHECK(saa_sam_config_from_weights(w, &c) == SAA_OK);
    CHECK(c.embed_dim == 1280 && c.depth == 32 && c.num_heads == 16 && c.global_attn_indexes[0] == 7 &&
          c.global_attn_indexes[3] == 31 && c.mlp_dim == 5120 && c.window_size == 14 && c.img_size == 1024);
    saa_weights_close(w);
}

/* Configs build_sam.py's classes accept although the official checkpoints never use them: img_size not
 * a multiple of the patch (the conv drops the remainder: grid 170 // 16 = 10), a prompt dim that is
 * not a multiple of 8 (MaskDecoder floors dim // 4 and dim // 8); an odd prompt dim is rejected
 * (PositionEmbeddingRandom(dim // 2) would give dim - 1 channels). */
static void test_config_sizes(void)
{
    cJSON *j = cJSON_Parse("{\"image_encoder\": {\"img_size\": 170, \"patch_size\": 16, \"embed_dim\": 32, "
                           "\"depth\": 2, \"num_heads\": 2, \"out_chans\": 36, \"window_size\": 4, "
                           "\"global_attn_indexes\": [1]}, \"prompt_encoder\": {\"embed_dim\": 36}, "
                           "\"mask_decoder\": {\"transformer\": {\"num_heads\": 3}}}");
    saa_sam_config c;
    CHECK(saa_sam_config_from_json(j, &c) == SAA_OK);
    CHECK(c.emb_h == 10 && c.emb_w == 10 && c.input_h == 170 && c.prompt_dim == 36);
    saa_weights *w = NULL;
    CHECK(saa_sam_random_weights(&c, 3, 0.1f, &w) == SAA_OK);
    CHECK(w && saa_weights_find(w, "mask_decoder.output_upscaling.3.weight")->shape[1] == 4);
    CHECK(w && saa_weights_find(w, "image_encoder.pos_embed")->shape[1] == 10);
    saa_weights_close(w);
    cJSON_Delete(j);
    j = cJSON_Parse("{\"image_encoder\": {\"out_chans\": 34}, \"prompt_encoder\": {\"embed_dim\": 35}}");
    CHECK(saa_sam_config_from_json(j, &c) == SAA_EINVAL);
    cJSON_Delete(j);
}

/* SamPredictor.predict moves float64 prompts before the float32 cast: 321.327 * 0.8 (250x400 image,
 * long side 320) rounds to 257.06161 from the double, to 257.06158 when 321.327 is rounded to float
 * first (values from numpy). apply_boxes_torch takes float32 inputs and a float32 ratio. */
static void test_apply_coords(void)
{
    const double xy64[4] = {321.327, 345.899, 0.5, 250.0};
    float xy32[4], a[4], b[4];
    for (int i = 0; i < 4; i++) xy32[i] = (float)xy64[i];
    sam_apply_coords_f64(xy64, 2, 250, 400, 320, SAA_SAM_COORDS_F64, a);
    CHECK(a[0] == 0x1.010fc6p+8f && a[1] == 0x1.14b81ep+8f && a[2] == 0.4f && a[3] == 200.0f);
    sam_apply_coords(xy32, 2, 250, 400, 320, SAA_SAM_COORDS_F64, b);
    CHECK(b[0] == 0x1.010fc4p+8f && b[1] == 0x1.14b81cp+8f);
    sam_apply_coords_f64(xy64, 2, 250, 400, 320, SAA_SAM_COORDS_F32, a);
    sam_apply_coords(xy32, 2, 250, 400, 320, SAA_SAM_COORDS_F32, b);
    CHECK(memcmp(a, b, sizeof a) == 0 && a[0] == xy32[0] * 0.8f);
}

/* A small config unlike sam_tiny: 7x7 token grid, window 3 (padded to 9), 2 heads of 8. */
static saa_sam_config small_config(void)
{
    saa_sam_config c;
    saa_sam_config_preset("vit_b", &c);
    c.img_size = 112;
    c.embed_dim = 16;
    c.depth = 2;
    c.num_heads = 2;
    c.mlp_dim = 32;
    c.out_chans = c.prompt_dim = 16;
    c.window_size = 3;
    c.n_global = 1;
    c.global_attn_indexes[0] = 1;
    c.emb_h = c.emb_w = 7;
    c.input_h = c.input_w = 112;
    c.dec_heads = 2;
    c.dec_mlp_dim = 32;
    c.iou_head_hidden = 16;
    return c;
}

static void test_binding_errors(void)
{
    saa_sam_config c = small_config();
    saa_weights *src;
    CHECK(saa_sam_random_weights(&c, 7, 0.5f, &src) == SAA_OK);
    if (!src) return;
    saa_weights *w = saa_weights_alloc("broken.pth");
    for (int i = 0; i < saa_weights_count(src); i++) {
        const char *name = saa_weights_name(src, i);
        if (!strcmp(name, "mask_decoder.iou_token.weight")) continue;
        if (!strcmp(name, "image_encoder.blocks.1.attn.qkv.weight")) {
            saa_weights_add(w, name, zeros(2, (int64_t[]){47, 16}));
            continue;
        }
        saa_weights_add(w, name, saa_tensor_copy(saa_weights_at(src, i)));
    }
    saa_sam *m = NULL;
    CHECK(saa_sam_from_weights(w, 1, &c, &m) == SAA_ESHAPE && m == NULL);
    const char *e = saa_last_error();
    CHECK(strstr(e, "missing mask_decoder.iou_token.weight (expected shape [1, 16])") != NULL);
    CHECK(strstr(e, "image_encoder.blocks.1.attn.qkv.weight has shape [47, 16], expected [48, 16]") != NULL);
    CHECK(strstr(e, ": 2 tensor problems: ") != NULL); /* one report for the encoder and the decoder */
    if (!strstr(e, "iou_token")) fprintf(stderr, "error was: %s\n", e);
    /* the complete map binds */
    CHECK(saa_sam_from_weights(src, 1, &c, &m) == SAA_OK && m != NULL);
    saa_sam_free(m);

    /* a real checkpoint of a non-preset size needs its JSON config */
    const char *tiny = SAA_SHARED_DIR "/golden/sam_tiny/weights.pth";
    if (test_exists(tiny)) {
        CHECK(saa_sam_load(tiny, NULL, &m) == SAA_EFORMAT && m == NULL);
        CHECK(strstr(saa_last_error(), "embed_dim 32 and 4 blocks matches no preset") != NULL);
        saa_sam_config tc;
        CHECK(saa_sam_config_from_file(SAA_SHARED_DIR "/golden/sam_tiny/config.json", &tc) == SAA_OK);
        CHECK(tc.embed_dim == 32 && tc.depth == 4 && tc.window_size == 4 && tc.n_global == 2 &&
              tc.global_attn_indexes[1] == 3 && tc.mlp_dim == 128 && tc.dec_mlp_dim == 64 && tc.iou_head_hidden == 32);
        CHECK(saa_sam_load(tiny, &tc, &m) == SAA_OK && m != NULL);
        saa_sam_free(m);
    }
}

/* ---------- brute force: image_encoder.py Block.forward in double ---------- */

static const float *W(saa_weights *w, const char *fmt, int i)
{
    char name[128];
    snprintf(name, sizeof name, fmt, i);
    const saa_tensor *t = saa_weights_find_f32(w, name);
    return t ? t->data : NULL;
}

static void ln(const double *x, int n, int C, const float *g, const float *b, double eps, double *y)
{
    for (int r = 0; r < n; r++) {
        double mu = 0, var = 0;
        for (int c = 0; c < C; c++) mu += x[r * C + c];
        mu /= C;
        for (int c = 0; c < C; c++) var += (x[r * C + c] - mu) * (x[r * C + c] - mu);
        var /= C;
        for (int c = 0; c < C; c++) y[r * C + c] = (x[r * C + c] - mu) / sqrt(var + eps) * g[c] + b[c];
    }
}

static void ref_block(saa_weights *w, const saa_sam_config *c, int blk, int window, const float *xin, double *out,
                      double *attn_out)
{
    int G = c->img_size / c->patch_size, C = c->embed_dim, H = c->num_heads, hd = C / H, T = G * G;
    int S = window ? window : G, nw = (G + S - 1) / S, Gp = nw * S;
    const float *qkv_w = W(w, "image_encoder.blocks.%d.attn.qkv.weight", blk), *qkv_b = W(w, "image_encoder.blocks.%d.attn.qkv.bias", blk);
    const float *pw = W(w, "image_encoder.blocks.%d.attn.proj.weight", blk), *pb = W(w, "image_encoder.blocks.%d.attn.proj.bias", blk);
    const float *rh = W(w, "image_encoder.blocks.%d.attn.rel_pos_h", blk), *rw = W(w, "image_encoder.blocks.%d.attn.rel_pos_w", blk);
    double *x = malloc(sizeof(double) * T * C), *xn = malloc(sizeof(double) * T * C);
    double *xp = calloc((size_t)Gp * Gp * C, sizeof(double)), *qkv = malloc(sizeof(double) * Gp * Gp * 3 * C);
    double *o = calloc((size_t)Gp * Gp * C, sizeof(double)), *p = malloc(sizeof(double) * S * S);
    for (int i = 0; i < T * C; i++) x[i] = xin[i];
    ln(x, T, C, W(w, "image_encoder.blocks.%d.norm1.weight", blk), W(w, "image_encoder.blocks.%d.norm1.bias", blk),
       c->block_eps, xn);
    for (int y = 0; y < G; y++)
        for (int xx = 0; xx < G; xx++) memcpy(xp + ((size_t)y * Gp + xx) * C, xn + ((size_t)y * G + xx) * C, sizeof(double) * C);
    for (int t = 0; t < Gp * Gp; t++)
        for (int j = 0; j < 3 * C; j++) {
            double s = qkv_b[j];
            for (int k = 0; k < C; k++) s += qkv_w[j * C + k] * xp[t * C + k];
            qkv[(size_t)t * 3 * C + j] = s;
        }
    double scale = 1.0 / sqrt((double)hd);
    for (int wy = 0; wy < nw; wy++)
        for (int wx = 0; wx < nw; wx++)
            for (int h = 0; h < H; h++)
                for (int qy = 0; qy < S; qy++)
                    for (int qx = 0; qx < S; qx++) {
                        const double *q = qkv + ((size_t)(wy * S + qy) * Gp + wx * S + qx) * 3 * C + h * hd;
                        double mx = -1e300, sum = 0;
                        for (int ky = 0; ky < S; ky++)
                            for (int kx = 0; kx < S; kx++) {
                                const double *k = qkv + ((size_t)(wy * S + ky) * Gp + wx * S + kx) * 3 * C + C + h * hd;
                                double s = 0;
                                for (int d = 0; d < hd; d++)
                                    s += q[d] * scale * k[d] + q[d] * rh[(qy - ky + S - 1) * hd + d] +
                                         q[d] * rw[(qx - kx + S - 1) * hd + d];
                                p[ky * S + kx] = s;
                                if (s > mx) mx = s;
                            }
                        for (int j = 0; j < S * S; j++) sum += (p[j] = exp(p[j] - mx));
                        double *dst = o + ((size_t)(wy * S + qy) * Gp + wx * S + qx) * C + h * hd;
                        for (int j = 0; j < S * S; j++) {
                            const double *v = qkv + ((size_t)(wy * S + j / S) * Gp + wx * S + j % S) * 3 * C + 2 * C + h * hd;
                            for (int d = 0; d < hd; d++) dst[d] += p[j] / sum * v[d];
                        }
                    }
    for (int y = 0; y < G; y++)
        for (int xx = 0; xx < G; xx++)
            for (int j = 0; j < C; j++) {
                double s = pb[j];
                for (int k = 0; k < C; k++) s += pw[j * C + k] * o[((size_t)y * Gp + xx) * C + k];
                attn_out[(y * G + xx) * C + j] = s;
                x[(y * G + xx) * C + j] += s;
            }
    ln(x, T, C, W(w, "image_encoder.blocks.%d.norm2.weight", blk), W(w, "image_encoder.blocks.%d.norm2.bias", blk),
       c->block_eps, xn);
    const float *l1 = W(w, "image_encoder.blocks.%d.mlp.lin1.weight", blk), *b1 = W(w, "image_encoder.blocks.%d.mlp.lin1.bias", blk);
    const float *l2 = W(w, "image_encoder.blocks.%d.mlp.lin2.weight", blk), *b2 = W(w, "image_encoder.blocks.%d.mlp.lin2.bias", blk);
    double *hdn = malloc(sizeof(double) * c->mlp_dim);
    for (int t = 0; t < T; t++) {
        for (int j = 0; j < c->mlp_dim; j++) {
            double s = b1[j];
            for (int k = 0; k < C; k++) s += l1[j * C + k] * xn[t * C + k];
            hdn[j] = 0.5 * s * (1 + erf(s / sqrt(2.0)));
        }
        for (int j = 0; j < C; j++) {
            double s = b2[j];
            for (int k = 0; k < c->mlp_dim; k++) s += l2[j * c->mlp_dim + k] * hdn[k];
            out[t * C + j] = x[t * C + j] + s;
        }
    }
    free(x), free(xn), free(xp), free(qkv), free(o), free(p), free(hdn);
}

/* grid 7 (windows of 3 padded to 9, global over 49 tokens), or grid 17 (global over 289 tokens:
 * more than one block of score rows); window 16 beside grid 17: the windows keep whole 256 x 256
 * score matrices, larger than the global block's 64-row blocks (the workspace must fit both). */
static void test_block_bruteforce(int grid, int window)
{
    saa_sam_config c = small_config();
    c.img_size = c.input_h = c.input_w = 16 * grid;
    c.emb_h = c.emb_w = grid;
    c.window_size = window;
    saa_weights *w;
    CHECK(saa_sam_random_weights(&c, 11, 0.4f, &w) == SAA_OK);
    saa_sam *m = NULL;
    CHECK(saa_sam_from_weights(w, 0, &c, &m) == SAA_OK);
    if (!m) return;
    int G = grid, C = 16, T = G * G;
    float *x = malloc(sizeof(float) * T * C), *attn = malloc(sizeof(float) * T * C);
    double *ref = malloc(sizeof(double) * T * C), *ref_attn = malloc(sizeof(double) * T * C);
    uint64_t s = 3;
    sam_encoder_ws *ws = sam_encoder_ws_new(m);
    for (int blk = 0; blk < 2; blk++) {
        for (int i = 0; i < T * C; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            x[i] = (float)((double)(s >> 40) / (double)(1ull << 24) * 4.0 - 2.0);
        }
        ref_block(w, &c, blk, blk == 0 ? window : 0, x, ref, ref_attn);
        CHECK(sam_encoder_block(m, ws, blk, x, attn) == SAA_OK);
        double e_out = 0, e_attn = 0;
        for (int i = 0; i < T * C; i++) {
            e_out = fmax(e_out, fabs(x[i] - ref[i]));
            e_attn = fmax(e_attn, fabs(attn[i] - ref_attn[i]));
        }
        printf("grid %d block %d (%s %d): max |attn - ref| %.3g, max |out - ref| %.3g\n", G, blk,
               blk == 0 ? "padded window" : "global", blk == 0 ? window : G, e_attn, e_out);
        CHECK(e_attn < 2e-5);
        CHECK(e_out < 2e-5);
    }
    sam_encoder_ws_free(ws);
    free(x), free(attn), free(ref), free(ref_attn);
    saa_sam_free(m);
    saa_weights_close(w);
}

/* The predictor on a random model: batched boxes give the same logits as one call per box, the
 * output shapes follow the original image, and masks are logits > 0. */
static void test_predictor(void)
{
    saa_sam_config c = small_config();
    saa_sam *m = NULL;
    saa_weights *w;
    CHECK(saa_sam_random_weights(&c, 5, 0.3f, &w) == SAA_OK);
    CHECK(saa_sam_from_weights(w, 1, &c, &m) == SAA_OK);
    if (!m) return;
    saa_image img = {45, 30, 3, malloc(45 * 30 * 3)};
    for (int i = 0; i < 45 * 30 * 3; i++) img.data[i] = (uint8_t)(i * 37 % 251);
    CHECK(saa_sam_set_image(m, &img) == SAA_OK);
    float boxes[8] = {2, 3, 20, 25, 10.5f, 0, 44, 29};
    saa_sam_prompt p = {2, 0, NULL, NULL, boxes, 0, SAA_SAM_COORDS_F32};
    saa_sam_masks all, one;
    CHECK(saa_sam_predict(m, &p, &all) == SAA_OK);
    CHECK(all.batch == 2 && all.n_masks == 1 && all.h == 30 && all.w == 45 && all.low_h == 28);
    p.batch = 1;
    p.boxes = boxes + 4;
    CHECK(saa_sam_predict(m, &p, &one) == SAA_OK);
    int same = 1, thr = 1;
    for (int i = 0; i < 28 * 28; i++) same &= one.low_res_logits[i] == all.low_res_logits[28 * 28 + i];
    for (int i = 0; i < 30 * 45; i++) thr &= one.masks[i] == (one.logits[i] > 0.0f);
    CHECK(same && thr && one.iou[0] == all.iou[1]);
    /* the decoder without the predictor's cached per-image state (embedding copy, transformed box) */
    float emb[16 * 49], sparse[2 * 16], low[28 * 28], iou1, tb[4];
    memcpy(emb, saa_sam_image_embedding(m), sizeof emb);
    sam_apply_coords(boxes + 4, 2, 30, 45, 112, SAA_SAM_COORDS_F32, tb);
    sam_embed_prompts(m, 1, 0, NULL, NULL, tb, sparse);
    CHECK(sam_decode_masks(m, emb, m->dense_pe, sparse, NULL, 1, 2, 0, NULL, low, &iou1) == SAA_OK);
    int same2 = 1;
    for (int i = 0; i < 28 * 28; i++) same2 &= low[i] == one.low_res_logits[i];
    CHECK(same2 && iou1 == one.iou[0]);
    saa_sam_masks_free(&one);
    saa_sam_masks_free(&all);
    /* points without a box, multimask */
    float pts[4] = {5, 5, 30, 20};
    int labels[2] = {1, 0};
    saa_sam_prompt q = {1, 2, pts, labels, NULL, 1, SAA_SAM_COORDS_F64};
    CHECK(saa_sam_predict(m, &q, &all) == SAA_OK);
    CHECK(all.n_masks == 3 && all.masks != NULL);
    saa_sam_masks_free(&all);
    free(img.data);
    saa_sam_free(m);
}

/* ---------- mask decoder against a brute-force double transcription ---------- */

/* nn.Linear on n rows in double: y[n, out] = x[n, in] W^T + b. */
static void ref_linear(const double *x, int n, int in, const float *W, const float *b, int out, double *y)
{
    for (int r = 0; r < n; r++)
        for (int o = 0; o < out; o++) {
            double s = b ? b[o] : 0.0;
            for (int i = 0; i < in; i++) s += x[(size_t)r * in + i] * W[(size_t)o * in + i];
            y[(size_t)r * out + o] = s;
        }
}

static void ref_layer_norm(double *x, int n, int dim, const float *w, const float *b, double eps)
{
    for (int r = 0; r < n; r++) {
        double *v = x + (size_t)r * dim, mean = 0, var = 0;
        for (int i = 0; i < dim; i++) mean += v[i];
        mean /= dim;
        for (int i = 0; i < dim; i++) var += (v[i] - mean) * (v[i] - mean);
        var /= dim;
        for (int i = 0; i < dim; i++) v[i] = (v[i] - mean) / sqrt(var + eps) * w[i] + b[i];
    }
}

/* transformer.py Attention: q [Lq, D], k [Lk, D], v [Lk, D] -> out [Lq, D]. */
static void ref_attention(const sam_attn_w *a, int D, int heads, const double *q, int Lq, const double *k,
                          const double *v, int Lk, double *out)
{
    int I = a->internal, ch = I / heads;
    double *Q = malloc(sizeof(double) * Lq * I), *K = malloc(sizeof(double) * Lk * I),
           *V = malloc(sizeof(double) * Lk * I), *O = malloc(sizeof(double) * Lq * I), *p = malloc(sizeof(double) * Lk);
    ref_linear(q, Lq, D, a->q_w, a->q_b, I, Q);
    ref_linear(k, Lk, D, a->k_w, a->k_b, I, K);
    ref_linear(v, Lk, D, a->v_w, a->v_b, I, V);
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < Lq; i++) {
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j < Lk; j++) {
                double s = 0;
                for (int c = 0; c < ch; c++) s += Q[(size_t)i * I + h * ch + c] * K[(size_t)j * I + h * ch + c];
                p[j] = s / sqrt((double)ch);
                mx = fmax(mx, p[j]);
            }
            for (int j = 0; j < Lk; j++) sum += (p[j] = exp(p[j] - mx));
            for (int c = 0; c < ch; c++) {
                double o = 0;
                for (int j = 0; j < Lk; j++) o += p[j] / sum * V[(size_t)j * I + h * ch + c];
                O[(size_t)i * I + h * ch + c] = o;
            }
        }
    ref_linear(O, Lq, I, a->o_w, a->o_b, D, out);
    free(Q), free(K), free(V), free(O), free(p);
}

static void ref_mlp(const sam_mlp_w *mlp, int depth, int in, int hidden, int out, const double *x, double *y)
{
    double a[512], b[512];
    const double *cur = x;
    for (int l = 0; l < depth; l++) {
        int i = l == 0 ? in : hidden, o = l == depth - 1 ? out : hidden;
        double *dst = l == depth - 1 ? y : (l % 2 ? b : a);
        ref_linear(cur, 1, i, mlp->w[l], mlp->b[l], o, dst);
        if (l < depth - 1)
            for (int j = 0; j < o; j++) dst[j] = dst[j] > 0 ? dst[j] : 0;
        cur = dst;
    }
}

/* ConvTranspose2d(kernel 2, stride 2): x [C, h, w] -> y [O, 2h, 2w], weight [C, O, 2, 2]. */
static void ref_convt(const double *x, int C, int h, int w, const float *wt, const float *b, int O, double *y)
{
    for (int o = 0; o < O; o++)
        for (int i = 0; i < 2 * h; i++)
            for (int j = 0; j < 2 * w; j++) {
                double s = b[o];
                for (int c = 0; c < C; c++)
                    s += x[((size_t)c * h + i / 2) * w + j / 2] * wt[(((size_t)c * O + o) * 2 + i % 2) * 2 + j % 2];
                y[((size_t)o * 2 * h + i) * 2 * w + j] = s;
            }
}

static double ref_gelu(double x) { return 0.5 * x * (1 + erf(x / sqrt(2.0))); }

/* mask_decoder.py MaskDecoder.forward + transformer.py TwoWayTransformer, one prompt at a time.
 * emb, pe [D, h, w]; sparse [B, N, D]; dense [B, D, h, w] or NULL (no_mask_embed). low [B, nm, 4h, 4w],
 * iou [B, nm]. */
static void ref_decode(const saa_sam *m, const float *emb, const float *pe, const float *sparse, const float *dense,
                       int B, int N, int multimask, double *low, double *iou)
{
    const saa_sam_config *c = &m->cfg;
    int D = c->prompt_dim, h = c->emb_h, w = c->emb_w, HW = h * w, nmt = c->num_multimask_outputs + 1;
    int Nt = 1 + nmt + N, heads = c->dec_heads, D4 = D / 4, D8 = D / 8, nm = multimask ? nmt - 1 : 1;
    double *tokens = malloc(sizeof(double) * Nt * D), *qs = malloc(sizeof(double) * Nt * D),
           *qp = malloc(sizeof(double) * Nt * D), *att = malloc(sizeof(double) * (HW > Nt ? HW : Nt) * D),
           *keys = malloc(sizeof(double) * HW * D), *kp = malloc(sizeof(double) * HW * D),
           *pos = malloc(sizeof(double) * HW * D), *hid = malloc(sizeof(double) * Nt * c->dec_mlp_dim),
           *src = malloc(sizeof(double) * HW * D), *up1 = malloc(sizeof(double) * D4 * 4 * HW),
           *up2 = malloc(sizeof(double) * D8 * 16 * HW), *hyper = malloc(sizeof(double) * nmt * D8),
           *iou_all = malloc(sizeof(double) * nmt);
    for (int p = 0; p < HW; p++)
        for (int ch = 0; ch < D; ch++) pos[(size_t)p * D + ch] = pe[(size_t)ch * HW + p];
    for (int b = 0; b < B; b++) {
        for (int i = 0; i < D; i++) tokens[i] = m->iou_token[i];
        for (int i = 0; i < nmt * D; i++) tokens[D + i] = m->mask_tokens[i];
        for (int i = 0; i < N * D; i++) tokens[(1 + nmt) * D + i] = sparse[(size_t)b * N * D + i];
        memcpy(qs, tokens, sizeof(double) * Nt * D);
        for (int p = 0; p < HW; p++)
            for (int ch = 0; ch < D; ch++)
                keys[(size_t)p * D + ch] = emb[(size_t)ch * HW + p] +
                                           (dense ? dense[((size_t)b * D + ch) * HW + p] : m->no_mask[ch]);
        for (int l = 0; l < c->dec_depth; l++) {
            const sam_twoway_w *L = &m->layers[l];
            if (l == 0) {
                ref_attention(&L->self_attn, D, heads, qs, Nt, qs, qs, Nt, att);
                memcpy(qs, att, sizeof(double) * Nt * D);
            } else {
                for (int i = 0; i < Nt * D; i++) qp[i] = qs[i] + tokens[i];
                ref_attention(&L->self_attn, D, heads, qp, Nt, qp, qs, Nt, att);
                for (int i = 0; i < Nt * D; i++) qs[i] += att[i];
            }
            ref_layer_norm(qs, Nt, D, L->norm_w[0], L->norm_b[0], c->dec_eps);
            for (int i = 0; i < Nt * D; i++) qp[i] = qs[i] + tokens[i];
            for (int i = 0; i < HW * D; i++) kp[i] = keys[i] + pos[i];
            ref_attention(&L->t2i, D, heads, qp, Nt, kp, keys, HW, att);
            for (int i = 0; i < Nt * D; i++) qs[i] += att[i];
            ref_layer_norm(qs, Nt, D, L->norm_w[1], L->norm_b[1], c->dec_eps);
            ref_linear(qs, Nt, D, L->lin1_w, L->lin1_b, c->dec_mlp_dim, hid);
            for (int i = 0; i < Nt * c->dec_mlp_dim; i++) hid[i] = hid[i] > 0 ? hid[i] : 0;
            ref_linear(hid, Nt, c->dec_mlp_dim, L->lin2_w, L->lin2_b, D, att);
            for (int i = 0; i < Nt * D; i++) qs[i] += att[i];
            ref_layer_norm(qs, Nt, D, L->norm_w[2], L->norm_b[2], c->dec_eps);
            for (int i = 0; i < Nt * D; i++) qp[i] = qs[i] + tokens[i];
            ref_attention(&L->i2t, D, heads, kp, HW, qp, qs, Nt, att);
            for (int i = 0; i < HW * D; i++) keys[i] += att[i];
            ref_layer_norm(keys, HW, D, L->norm_w[3], L->norm_b[3], c->dec_eps);
        }
        for (int i = 0; i < Nt * D; i++) qp[i] = qs[i] + tokens[i];
        for (int i = 0; i < HW * D; i++) kp[i] = keys[i] + pos[i];
        ref_attention(&m->final_attn, D, heads, qp, Nt, kp, keys, HW, att);
        for (int i = 0; i < Nt * D; i++) qs[i] += att[i];
        ref_layer_norm(qs, Nt, D, m->norm_final_w, m->norm_final_b, c->dec_eps);
        /* output_upscaling on src [D, h, w], LayerNorm2d over channels */
        for (int p = 0; p < HW; p++)
            for (int ch = 0; ch < D; ch++) src[(size_t)ch * HW + p] = keys[(size_t)p * D + ch];
        ref_convt(src, D, h, w, m->up0_w, m->up0_b, D4, up1);
        for (int p = 0; p < 4 * HW; p++) {
            double mean = 0, var = 0;
            for (int ch = 0; ch < D4; ch++) mean += up1[(size_t)ch * 4 * HW + p];
            mean /= D4;
            for (int ch = 0; ch < D4; ch++) var += pow(up1[(size_t)ch * 4 * HW + p] - mean, 2);
            var /= D4;
            for (int ch = 0; ch < D4; ch++) {
                double *v = &up1[(size_t)ch * 4 * HW + p];
                *v = ref_gelu((*v - mean) / sqrt(var + c->upscale_eps) * m->up1_w[ch] + m->up1_b[ch]);
            }
        }
        ref_convt(up1, D4, 2 * h, 2 * w, m->up3_w, m->up3_b, D8, up2);
        for (int i = 0; i < D8 * 16 * HW; i++) up2[i] = ref_gelu(up2[i]);
        for (int k = 0; k < nmt; k++) ref_mlp(&m->hyper[k], 3, D, D, D8, qs + (size_t)(1 + k) * D, hyper + k * D8);
        ref_mlp(&m->iou_head, c->iou_head_depth, D, c->iou_head_hidden, nmt, qs, iou_all);
        for (int k = 0; k < nm; k++) {
            int t = multimask ? 1 + k : 0;
            for (int p = 0; p < 16 * HW; p++) {
                double s = 0;
                for (int ch = 0; ch < D8; ch++) s += hyper[t * D8 + ch] * up2[(size_t)ch * 16 * HW + p];
                low[((size_t)b * nm + k) * 16 * HW + p] = s;
            }
            iou[b * nm + k] = iou_all[t];
        }
    }
    free(tokens), free(qs), free(qp), free(att), free(keys), free(kp), free(pos), free(hid), free(src);
    free(up1), free(up2), free(hyper), free(iou_all);
}

/* The decoder on a 19x19 embedding grid (its blocks of 256 pixels / rows end part-way), 11 prompts
 * (two groups), with and without a mask prompt and multimask, untraced and traced, against
 * ref_decode. */
static void test_decoder_bruteforce(void)
{
    saa_sam_config c = small_config();
    c.img_size = c.input_h = c.input_w = 19 * 16;
    c.emb_h = c.emb_w = 19;
    c.depth = 1, c.n_global = 0;
    c.out_chans = c.prompt_dim = 32;
    c.dec_heads = 2, c.dec_mlp_dim = 48, c.iou_head_hidden = 24;
    saa_sam *m = NULL;
    saa_weights *w;
    CHECK(saa_sam_random_weights(&c, 11, 0.25f, &w) == SAA_OK);
    CHECK(saa_sam_from_weights(w, 1, &c, &m) == SAA_OK);
    if (!m) return;
    int D = c.prompt_dim, HW = 19 * 19, UHW = 16 * HW, nmt = c.num_multimask_outputs + 1;
    const int B = 11, N = 2;
    float *emb = malloc(sizeof(float) * D * HW), *dense = malloc(sizeof(float) * B * D * HW);
    float *sparse = malloc(sizeof(float) * B * N * D), *low = malloc(sizeof(float) * B * 3 * UHW), iou[11 * 3];
    double *rlow = malloc(sizeof(double) * B * 3 * UHW), riou[11 * 3];
    uint64_t st = 99;
    for (int i = 0; i < D * HW; i++) emb[i] = (float)((st = st * 6364136223846793005ull + 1442695040888963407ull) >> 40) / 8388608.0f - 1.0f;
    for (int i = 0; i < B * D * HW; i++) dense[i] = 0.3f * sinf(0.37f * (float)i);
    float boxes[11 * 4];
    for (int b = 0; b < B; b++) {
        boxes[4 * b] = 10.0f + 17 * b, boxes[4 * b + 1] = 5.0f + 11 * b;
        boxes[4 * b + 2] = boxes[4 * b] + 60, boxes[4 * b + 3] = boxes[4 * b + 1] + 90;
    }
    sam_embed_prompts(m, B, 0, NULL, NULL, boxes, sparse);
    for (int pass = 0; pass < 3; pass++) {
        /* pass 0: no mask prompt, mask 0, untraced (final attention on 2 of 7 tokens); 1: mask prompt,
         * multimask; 2: traced (every intermediate, all tokens) */
        int multimask = pass == 1, nm = multimask ? nmt - 1 : 1, Bp = pass == 2 ? 3 : B;
        const float *dn = pass == 1 ? dense : NULL;
        sam_decoder_trace tr;
        memset(&tr, 0, sizeof tr);
        float *masks_all = pass == 2 ? malloc(sizeof(float) * Bp * nmt * UHW) : NULL;
        tr.masks_all = masks_all;
        CHECK(sam_decode_masks(m, emb, m->dense_pe, sparse, dn, Bp, N, multimask, pass == 2 ? &tr : NULL, low, iou) ==
              SAA_OK);
        ref_decode(m, emb, m->dense_pe, sparse, dn, Bp, N, multimask, rlow, riou);
        /* errors relative to the largest reference value (random weights give small logits) */
        double e = 0, ei = 0, mx = 0, mxi = 0;
        for (size_t i = 0; i < (size_t)Bp * nm * UHW; i++) {
            e = fmax(e, fabs(low[i] - rlow[i]));
            mx = fmax(mx, fabs(rlow[i]));
        }
        for (int i = 0; i < Bp * nm; i++) {
            ei = fmax(ei, fabs(iou[i] - riou[i]));
            mxi = fmax(mxi, fabs(riou[i]));
        }
        if (masks_all) /* mask 0 of every prompt, as returned without multimask */
            for (int b = 0; b < Bp; b++)
                for (int p = 0; p < UHW; p++)
                    e = fmax(e, fabs(masks_all[(size_t)b * nmt * UHW + p] - rlow[(size_t)b * UHW + p]));
        e /= mx, ei /= mxi;
        printf("decoder pass %d (19x19, %d prompts): max error / max |ref|: masks %.2g, iou %.2g\n", pass, Bp, e, ei);
        CHECK(mx > 1e-3 && e < 1e-5 && ei < 1e-5);
        free(masks_all);
    }
    free(emb), free(dense), free(sparse), free(low), free(rlow);
    saa_sam_free(m);
}

int main(void)
{
    saa_threads_init();
    test_presets();
    test_detect();
    test_config_sizes();
    test_apply_coords();
    test_binding_errors();
    test_block_bruteforce(7, 3);
    test_block_bruteforce(17, 3);
    test_block_bruteforce(17, 16);
    sam_disable_simd = 1; /* the portable softmax as well */
    test_block_bruteforce(7, 3);
    test_block_bruteforce(17, 3);
    sam_disable_simd = 0;
    test_predictor();
    test_decoder_bruteforce();
    TEST_MAIN_END();
}
