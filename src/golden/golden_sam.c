/* check-golden kind "sam" (../shared/golden/sam_tiny/README.md): every stage is run fed the stored
 * output of the previous stage (preprocess, get_rel_pos unit cases, patch embedding, each block, neck,
 * prompt encoder, mask decoder, post-processing); then the whole predictor runs end to end
 * (image.png -> set_image -> predict) and its outputs are checked again under the same names. */
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "models/sam_internal.h"
#include "saa/image.h"

#define CHECK_F32(name, data, ...) \
    golden_check_f32(g, name, data, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})

static int check_u8(golden *g, const char *name, const uint8_t *data, int ndim, const int64_t *shape, saa_dtype dt)
{
    saa_tensor *t = saa_tensor_wrap(dt, ndim, shape, (void *)data);
    if (!t) return golden_report(g, name, 0, "%s", saa_last_error());
    int r = golden_check(g, name, t);
    saa_tensor_free(t);
    return r;
}

/* A stored float tensor fed to a stage, with its element count checked. */
static const float *feed(golden *g, const char *name, int64_t numel)
{
    const float *p = golden_ref_f32(g, name, numel);
    if (p) golden_mark_input(g, name);
    return p;
}

/* ---------- preprocessing ---------- */

typedef struct {
    saa_image img;     /* as given to set_image (channel order SAM sees) */
    int orig_h, orig_w, nh, nw;
    float *input;      /* [3, S, S] computed from image.png */
} sam_pre;

static int stage_preprocess(golden *g, const saa_sam *m, sam_pre *pre)
{
    const saa_sam_config *c = saa_sam_get_config(m);
    const char *rel = golden_cfg_str(g, "inputs.image");
    char *path = golden_path(g, rel ? rel : "image.png");
    int rc = saa_image_load(path, &pre->img);
    free(path);
    if (rc != SAA_OK) return rc;
    saa_image *im = &pre->img;
    check_u8(g, "preprocess.image_u8", im->data, 3, (int64_t[]){im->h, im->w, 3}, SAA_U8);
    const char *fmt = golden_cfg_str(g, "inputs.image_format");
    if (fmt && !strcmp(fmt, "BGR")) saa_image_swap_rb(im); /* set_image flips to the model's RGB */
    pre->orig_h = im->h, pre->orig_w = im->w;
    saa_sam_preprocess_shape(im->h, im->w, c->img_size, &pre->nh, &pre->nw);
    uint8_t *resized = malloc((size_t)pre->nh * pre->nw * 3);
    pre->input = malloc(sizeof(float) * 3 * (size_t)c->img_size * c->img_size);
    if (!resized || !pre->input) {
        free(resized);
        return saa_set_error(SAA_ENOMEM, "out of memory");
    }
    saa_resize_pil_bilinear_u8(im->data, im->w, im->h, 3, resized, pre->nw, pre->nh);
    check_u8(g, "preprocess.resized_u8", resized, 3, (int64_t[]){pre->nh, pre->nw, 3}, SAA_U8);
    if (golden_has(g, "preprocess.resized_alt_u8")) {
        int target = (int)golden_cfg_num(g, "inputs.alt_resize_target", 0), ah, aw;
        if (target <= 0) {
            golden_report(g, "preprocess.resized_alt_u8", 0, "config.json has no inputs.alt_resize_target");
        } else {
            saa_sam_preprocess_shape(im->h, im->w, target, &ah, &aw);
            uint8_t *alt = malloc((size_t)ah * aw * 3);
            if (!alt) {
                free(resized);
                return saa_set_error(SAA_ENOMEM, "out of memory");
            }
            saa_resize_pil_bilinear_u8(im->data, im->w, im->h, 3, alt, aw, ah);
            check_u8(g, "preprocess.resized_alt_u8", alt, 3, (int64_t[]){ah, aw, 3}, SAA_U8);
            free(alt);
        }
    }
    sam_normalize_pad(c, resized, pre->nh, pre->nw, pre->input);
    free(resized);
    CHECK_F32("preprocess.input", pre->input, 1, 3, c->img_size, c->img_size);
    return SAA_OK;
}

/* ---------- get_rel_pos unit cases ---------- */

static int stage_relpos(golden *g)
{
    cJSON *cases = golden_cfg(g, "relpos_unit_cases");
    char name[96];
    for (int k = 0;; k++) {
        snprintf(name, sizeof name, "relpos.case%d.table", k);
        if (!golden_has(g, name)) break;
        const saa_tensor *tt = golden_ref(g, name);
        cJSON *cfg_case = cJSON_GetArrayItem(cases, k);
        int q = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(cfg_case, "q_size"));
        int kk = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(cfg_case, "k_size"));
        int len = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(cfg_case, "table_len"));
        /* the table is the case's random input: its length is checked against config.json */
        int len_ok = cfg_case && tt->ndim == 2 && tt->shape[0] == len;
        golden_report(g, name, len_ok, "input table: %s with config relpos_unit_cases[%d].table_len %d",
                      len_ok ? "length matches" : "length DIFFERS", k, len);
        snprintf(name, sizeof name, "relpos.case%d.sizes", k);
        int64_t sizes[2] = {q, kk};
        check_u8(g, name, (const uint8_t *)sizes, 1, (int64_t[]){2}, SAA_I64);
        if (!cfg_case || tt->ndim != 2) continue;
        int L = (int)tt->shape[0], dim = (int)tt->shape[1];
        snprintf(name, sizeof name, "relpos.case%d.table", k);
        const float *table = golden_ref_f32(g, name, -1);
        float *out = malloc(sizeof(float) * (size_t)q * kk * dim);
        if (!out || !table) {
            free(out);
            return saa_set_error(SAA_ENOMEM, "out of memory");
        }
        int rc = sam_get_rel_pos(q, kk, table, L, dim, out);
        snprintf(name, sizeof name, "relpos.case%d.out", k);
        if (rc == SAA_OK)
            CHECK_F32(name, out, q, kk, dim);
        else
            golden_report(g, name, 0, "%s", saa_last_error());
        free(out);
    }
    return SAA_OK;
}

/* ---------- image encoder, each stage fed the stored previous output ---------- */

static int stage_encoder(golden *g, const saa_sam *m)
{
    const saa_sam_config *c = saa_sam_get_config(m);
    int S = c->img_size, C = c->embed_dim, G = S / c->patch_size, T = G * G, O = c->out_chans;
    int hd = C / c->num_heads;
    char name[96], prev[96];
    float *x = malloc(sizeof(float) * (size_t)T * C), *attn = malloc(sizeof(float) * (size_t)T * C);
    float *n0 = malloc(sizeof(float) * (size_t)T * O * 4);
    sam_encoder_ws *ws = sam_encoder_ws_new(m);
    int rc = SAA_OK;
    if (!x || !attn || !n0 || !ws) {
        rc = saa_set_error(SAA_ENOMEM, "out of memory");
        goto done;
    }
    const float *in = feed(g, "preprocess.input", 3 * (int64_t)S * S);
    if (in && (rc = sam_patch_embed(m, in, x)) == SAA_OK) CHECK_F32("encoder.patch_embed", x, 1, G, G, C);
    const float *pe = feed(g, "encoder.patch_embed", (int64_t)T * C);
    if (pe) {
        memcpy(x, pe, sizeof(float) * (size_t)T * C);
        sam_add_pos_embed(m, x);
        CHECK_F32("encoder.tokens0", x, 1, G, G, C);
    }
    snprintf(prev, sizeof prev, "encoder.tokens0");
    for (int i = 0; i < c->depth; i++) {
        const sam_block_w *blk = &m->blocks[i];
        if (c->use_rel_pos) {
            snprintf(name, sizeof name, "encoder.block%d.rel_h", i);
            CHECK_F32(name, blk->rh, blk->size, blk->size, hd);
            snprintf(name, sizeof name, "encoder.block%d.rel_w", i);
            CHECK_F32(name, blk->rw, blk->size, blk->size, hd);
        }
        const float *xin = feed(g, prev, (int64_t)T * C);
        snprintf(prev, sizeof prev, "encoder.block%d.out", i);
        if (!xin) {
            golden_report(g, prev, 0, "stored input missing: %s", saa_last_error());
            continue;
        }
        memcpy(x, xin, sizeof(float) * (size_t)T * C);
        if ((rc = sam_encoder_block(m, ws, i, x, attn)) != SAA_OK) goto done;
        snprintf(name, sizeof name, "encoder.block%d.attn_out", i);
        CHECK_F32(name, attn, 1, G, G, C);
        CHECK_F32(prev, x, 1, G, G, C);
    }
    /* neck: each sub-stage fed the stored previous one */
    const float *last = feed(g, prev, (int64_t)T * C);
    float *n1 = n0 + (size_t)T * O, *n2 = n1 + (size_t)T * O, *emb = n2 + (size_t)T * O;
    if (last) {
        if ((rc = sam_neck(m, last, n0, n1, n2, emb)) != SAA_OK) goto done;
        CHECK_F32("encoder.neck0", n0, 1, O, G, G);
    }
    /* later neck stages from the stored neck outputs: LayerNorm2d, conv3x3, LayerNorm2d */
    const float *s0 = feed(g, "encoder.neck0", (int64_t)T * O);
    if (s0) {
        memcpy(n1, s0, sizeof(float) * (size_t)T * O);
        saa_layer_norm2d(n1, O, T, m->neck1_w, m->neck1_b, c->neck_eps, n1);
        CHECK_F32("encoder.neck1", n1, 1, O, G, G);
    }
    const float *s1 = feed(g, "encoder.neck1", (int64_t)T * O);
    if (s1) {
        saa_conv_params p = {1, 1, 1, 1, 1, 1, 1};
        saa_conv2d(s1, 1, O, G, G, m->neck2_w, O, 3, 3, NULL, p, n2);
        CHECK_F32("encoder.neck2", n2, 1, O, G, G);
    }
    const float *s2 = feed(g, "encoder.neck2", (int64_t)T * O);
    if (s2) {
        memcpy(emb, s2, sizeof(float) * (size_t)T * O);
        saa_layer_norm2d(emb, O, T, m->neck3_w, m->neck3_b, c->neck_eps, emb);
        CHECK_F32("encoder.image_embedding", emb, 1, O, G, G);
    }
done:
    free(x);
    free(attn);
    free(n0);
    sam_encoder_ws_free(ws);
    return rc;
}

/* ---------- prompt cases ---------- */

typedef struct {
    const char *name;
    int B, np, has_boxes, multimask;
    float *points, *boxes;     /* original frame, as the float API takes them (end to end) */
    double *points64, *boxes64; /* the same as config.json gives them (the prompt transform stage) */
    int *labels;
    saa_sam_coord_mode mode;
} sam_case;

static void free_case(sam_case *k)
{
    free(k->points);
    free(k->boxes);
    free(k->points64);
    free(k->boxes64);
    free(k->labels);
}

/* Reads one case of config.json "cases": boxes [[x0,y0,x1,y1], ...] or [x0,...]; points [[x,y], ...]
 * (predict: batch 1) or [[[x,y], ...], ...] (predict_torch: batched); labels alike. */
static int parse_case(cJSON *jc, sam_case *k)
{
    memset(k, 0, sizeof *k);
    k->name = jc->string;
    const char *api = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(jc, "api"));
    k->mode = api && !strcmp(api, "predict_torch") ? SAA_SAM_COORDS_F32 : SAA_SAM_COORDS_F64;
    k->multimask = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(jc, "multimask_output"));
    cJSON *boxes = cJSON_GetObjectItemCaseSensitive(jc, "boxes"), *pts = cJSON_GetObjectItemCaseSensitive(jc, "points"),
          *lab = cJSON_GetObjectItemCaseSensitive(jc, "labels");
    int nb = 0;
    if (cJSON_IsArray(boxes) && cJSON_GetArraySize(boxes) > 0) {
        int flat = cJSON_IsNumber(cJSON_GetArrayItem(boxes, 0));
        nb = flat ? 1 : cJSON_GetArraySize(boxes);
        k->boxes = malloc(sizeof(float) * 4 * (size_t)nb);
        k->boxes64 = malloc(sizeof(double) * 4 * (size_t)nb);
        if (!k->boxes || !k->boxes64) return saa_set_error(SAA_ENOMEM, "out of memory");
        for (int i = 0; i < nb; i++) {
            cJSON *row = flat ? boxes : cJSON_GetArrayItem(boxes, i);
            if (cJSON_GetArraySize(row) != 4) return saa_set_error(SAA_EFORMAT, "case %s: a box needs 4 numbers", k->name);
            for (int j = 0; j < 4; j++) {
                k->boxes64[i * 4 + j] = cJSON_GetArrayItem(row, j)->valuedouble;
                k->boxes[i * 4 + j] = (float)k->boxes64[i * 4 + j];
            }
        }
        k->has_boxes = 1;
    }
    k->B = nb ? nb : 1;
    if (cJSON_IsArray(pts) && cJSON_GetArraySize(pts) > 0) {
        int batched = cJSON_IsArray(cJSON_GetArrayItem(cJSON_GetArrayItem(pts, 0), 0));
        int B = batched ? cJSON_GetArraySize(pts) : 1;
        int np = cJSON_GetArraySize(batched ? cJSON_GetArrayItem(pts, 0) : pts);
        if (nb && nb != B) return saa_set_error(SAA_EFORMAT, "case %s: %d boxes for %d point sets", k->name, nb, B);
        k->B = B, k->np = np;
        k->points = malloc(sizeof(float) * 2 * (size_t)B * np);
        k->points64 = malloc(sizeof(double) * 2 * (size_t)B * np);
        k->labels = malloc(sizeof(int) * (size_t)B * np);
        if (!k->points || !k->points64 || !k->labels) return saa_set_error(SAA_ENOMEM, "out of memory");
        for (int b = 0; b < B; b++) {
            cJSON *prow = batched ? cJSON_GetArrayItem(pts, b) : pts, *lrow = batched ? cJSON_GetArrayItem(lab, b) : lab;
            if (cJSON_GetArraySize(prow) != np || cJSON_GetArraySize(lrow) != np)
                return saa_set_error(SAA_EFORMAT, "case %s: points and labels disagree", k->name);
            for (int p = 0; p < np; p++) {
                cJSON *xy = cJSON_GetArrayItem(prow, p);
                for (int j = 0; j < 2; j++) {
                    size_t at = ((size_t)b * np + p) * 2 + j;
                    k->points64[at] = cJSON_GetArrayItem(xy, j)->valuedouble;
                    k->points[at] = (float)k->points64[at];
                }
                k->labels[(size_t)b * np + p] = (int)cJSON_GetArrayItem(lrow, p)->valuedouble;
            }
        }
    }
    return SAA_OK;
}

/* Allocations of the decoder trace for one case. */
typedef struct {
    float *buf[64];
    int n;
} allocs;

static float *take(allocs *a, size_t n)
{
    float *p = a->n < 64 ? malloc(sizeof(float) * (n ? n : 1)) : NULL;
    if (p) a->buf[a->n++] = p;
    return p;
}

static void free_allocs(allocs *a)
{
    for (int i = 0; i < a->n; i++) free(a->buf[i]);
    a->n = 0;
}

static int stage_case(golden *g, saa_sam *m, const sam_case *k, const sam_pre *pre)
{
    const saa_sam_config *c = saa_sam_get_config(m);
    int D = c->prompt_dim, h = c->emb_h, w = c->emb_w, HW = h * w, nmt = c->num_multimask_outputs + 1;
    int B = k->B, np = k->np, N = sam_sparse_count(np, k->has_boxes), Nt = 1 + nmt + N;
    int nm = k->multimask ? nmt - 1 : 1, UH = 4 * h, UW = 4 * w, D8 = D / 8;
    char name[128];
    allocs al = {{0}, 0};
    int rc = SAA_OK;
    /* prompt transform (ResizeLongestSide) of the config's original-frame prompts */
    float *coords = take(&al, (size_t)B * np * 2), *boxes = take(&al, (size_t)B * 4);
    float *sparse = take(&al, (size_t)B * N * D), *dense = take(&al, (size_t)B * D * HW);
    if (!coords || !boxes || !sparse || !dense) goto oom;
    if (k->has_boxes) {
        sam_apply_coords_f64(k->boxes64, B * 2, pre->orig_h, pre->orig_w, c->img_size, k->mode, boxes);
        snprintf(name, sizeof name, "prompt.%s.boxes", k->name);
        CHECK_F32(name, boxes, B, 4);
    }
    if (np) {
        sam_apply_coords_f64(k->points64, B * np, pre->orig_h, pre->orig_w, c->img_size, k->mode, coords);
        snprintf(name, sizeof name, "prompt.%s.point_coords", k->name);
        CHECK_F32(name, coords, B, np, 2);
        snprintf(name, sizeof name, "prompt.%s.point_labels", k->name);
        int32_t *l32 = (int32_t *)take(&al, (size_t)B * np);
        if (!l32) goto oom;
        for (int i = 0; i < B * np; i++) l32[i] = k->labels[i];
        check_u8(g, name, (const uint8_t *)l32, 2, (int64_t[]){B, np}, SAA_I32);
    }
    /* prompt encoder fed the stored transformed prompts */
    const float *sb = NULL, *sc = NULL;
    int *sl = NULL;
    if (k->has_boxes) {
        snprintf(name, sizeof name, "prompt.%s.boxes", k->name);
        sb = golden_ref_f32(g, name, (int64_t)B * 4);
    }
    if (np) {
        snprintf(name, sizeof name, "prompt.%s.point_coords", k->name);
        sc = golden_ref_f32(g, name, (int64_t)B * np * 2);
        snprintf(name, sizeof name, "prompt.%s.point_labels", k->name);
        const float *lf = golden_ref_f32(g, name, (int64_t)B * np);
        sl = (int *)take(&al, (size_t)B * np);
        if (!sl) goto oom;
        for (int i = 0; lf && i < B * np; i++) sl[i] = (int)lf[i];
        if (!lf) sc = NULL;
    }
    snprintf(name, sizeof name, "prompt.%s.sparse", k->name);
    if ((k->has_boxes && !sb) || (np && !sc)) {
        golden_report(g, name, 0, "stored transformed prompt missing: %s", saa_last_error());
    } else {
        sam_embed_prompts(m, B, np, sc, sl, sb, sparse);
        CHECK_F32(name, sparse, B, N, D);
    }
    for (int b = 0; b < B; b++)
        for (int ch = 0; ch < D; ch++)
            for (int p = 0; p < HW; p++) dense[((size_t)b * D + ch) * HW + p] = m->no_mask[ch];
    snprintf(name, sizeof name, "prompt.%s.dense", k->name);
    CHECK_F32(name, dense, B, D, h, w);

    /* mask decoder fed the stored embedding, dense PE and prompt embeddings */
    const float *s_emb = feed(g, "encoder.image_embedding", (int64_t)D * HW);
    const float *s_pe = feed(g, "prompt.dense_pe", (int64_t)D * HW);
    snprintf(name, sizeof name, "prompt.%s.sparse", k->name);
    const float *s_sparse = feed(g, name, (int64_t)B * N * D);
    snprintf(name, sizeof name, "prompt.%s.dense", k->name);
    const float *s_dense = feed(g, name, (int64_t)B * D * HW);
    sam_decoder_trace tr;
    memset(&tr, 0, sizeof tr);
    int nl = c->dec_depth < 8 ? c->dec_depth : 8;
    for (int l = 0; l < nl; l++) {
        tr.layer_queries[l] = take(&al, (size_t)B * Nt * D);
        tr.layer_keys[l] = take(&al, (size_t)B * HW * D);
        if (!tr.layer_queries[l] || !tr.layer_keys[l]) goto oom;
    }
    tr.tokens_out = take(&al, (size_t)B * Nt * D);
    tr.keys_out = take(&al, (size_t)B * HW * D);
    tr.upscaled = take(&al, (size_t)B * D8 * UH * UW);
    tr.hyper_in = take(&al, (size_t)B * nmt * D8);
    tr.masks_all = take(&al, (size_t)B * nmt * UH * UW);
    tr.iou_all = take(&al, (size_t)B * nmt);
    float *low = take(&al, (size_t)B * nm * UH * UW), *iou = take(&al, (size_t)B * nm);
    if (!tr.tokens_out || !tr.keys_out || !tr.upscaled || !tr.hyper_in || !tr.masks_all || !tr.iou_all || !low || !iou)
        goto oom;
    if (s_emb && s_pe && s_sparse && s_dense) {
        if ((rc = sam_decode_masks(m, s_emb, s_pe, s_sparse, s_dense, B, N, k->multimask, &tr, low, iou)) != SAA_OK)
            goto done;
        for (int l = 0; l < nl; l++) {
            snprintf(name, sizeof name, "decoder.%s.layer%d.queries", k->name, l);
            if (golden_has(g, name)) CHECK_F32(name, tr.layer_queries[l], B, Nt, D);
            snprintf(name, sizeof name, "decoder.%s.layer%d.keys", k->name, l);
            if (golden_has(g, name)) CHECK_F32(name, tr.layer_keys[l], B, HW, D);
        }
#define CHECK_IF(suffix, data, ...)                                          \
    do {                                                                     \
        snprintf(name, sizeof name, "decoder.%s." suffix, k->name);          \
        if (golden_has(g, name)) CHECK_F32(name, data, __VA_ARGS__);         \
    } while (0)
        CHECK_IF("tokens_out", tr.tokens_out, B, Nt, D);
        CHECK_IF("keys_out", tr.keys_out, B, HW, D);
        CHECK_IF("upscaled_embedding", tr.upscaled, B, D8, UH, UW);
        CHECK_IF("hyper_in", tr.hyper_in, B, nmt, D8);
        CHECK_IF("masks_all", tr.masks_all, B, nmt, UH, UW);
        CHECK_IF("iou_all", tr.iou_all, B, nmt);
#undef CHECK_IF
        snprintf(name, sizeof name, "decoder.%s.low_res_logits", k->name);
        CHECK_F32(name, low, B, nm, UH, UW);
        snprintf(name, sizeof name, "decoder.%s.iou_predictions", k->name);
        CHECK_F32(name, iou, B, nm);
    } else {
        snprintf(name, sizeof name, "decoder.%s.low_res_logits", k->name);
        golden_report(g, name, 0, "stored decoder inputs missing: %s", saa_last_error());
    }

    /* post-processing fed the stored low-res logits */
    snprintf(name, sizeof name, "decoder.%s.low_res_logits", k->name);
    const float *s_low = feed(g, name, (int64_t)B * nm * UH * UW);
    int oh = pre->orig_h, ow = pre->orig_w;
    float *logits = take(&al, (size_t)B * nm * oh * ow), *crop = take(&al, (size_t)B * nm * pre->nh * pre->nw);
    uint8_t *masks = (uint8_t *)take(&al, ((size_t)B * nm * oh * ow + 3) / 4);
    if (!logits || !crop || !masks) goto oom;
    if (s_low) {
        if ((rc = sam_postprocess(m, s_low, B * nm, pre->nh, pre->nw, oh, ow, logits, crop)) != SAA_OK) goto done;
        snprintf(name, sizeof name, "post.%s.masks_logits", k->name);
        CHECK_F32(name, logits, B, nm, oh, ow);
        for (size_t i = 0; i < (size_t)B * nm * oh * ow; i++) masks[i] = logits[i] > c->mask_threshold;
        snprintf(name, sizeof name, "post.%s.masks", k->name);
        check_u8(g, name, masks, 4, (int64_t[]){B, nm, oh, ow}, SAA_BOOL);
        snprintf(name, sizeof name, "post.%s.upscaled_cropped_rows", k->name);
        if (golden_has(g, name)) CHECK_F32(name, crop, B, nm, pre->nh, pre->nw);
    }
done:
    free_allocs(&al);
    return rc;
oom:
    free_allocs(&al);
    return saa_set_error(SAA_ENOMEM, "out of memory");
}

/* ---------- end to end: image.png -> set_image -> predict ---------- */

static int stage_e2e(golden *g, saa_sam *m, const sam_pre *pre, sam_case *cases, int ncases)
{
    fprintf(g->out, "---- end to end: image.png -> saa_sam_set_image -> saa_sam_predict (no stored intermediates); "
                    "the names below are checked a second time ----\n");
    const saa_sam_config *c = saa_sam_get_config(m);
    int rc = saa_sam_set_image(m, &pre->img);
    if (rc != SAA_OK) return rc;
    int G = c->img_size / c->patch_size;
    CHECK_F32("encoder.image_embedding", saa_sam_image_embedding(m), 1, c->out_chans, G, G);
    char name[128];
    for (int i = 0; i < ncases; i++) {
        const sam_case *k = &cases[i];
        saa_sam_prompt p = {k->B, k->np, k->points, k->labels, k->boxes, k->multimask, k->mode};
        saa_sam_masks r;
        if ((rc = saa_sam_predict(m, &p, &r)) != SAA_OK) return rc;
        snprintf(name, sizeof name, "decoder.%s.low_res_logits", k->name);
        CHECK_F32(name, r.low_res_logits, r.batch, r.n_masks, r.low_h, r.low_w);
        snprintf(name, sizeof name, "decoder.%s.iou_predictions", k->name);
        CHECK_F32(name, r.iou, r.batch, r.n_masks);
        snprintf(name, sizeof name, "post.%s.masks_logits", k->name);
        CHECK_F32(name, r.logits, r.batch, r.n_masks, r.h, r.w);
        snprintf(name, sizeof name, "post.%s.masks", k->name);
        check_u8(g, name, r.masks, 4, (int64_t[]){r.batch, r.n_masks, r.h, r.w}, SAA_BOOL);
        saa_sam_masks_free(&r);
    }
    return SAA_OK;
}

int golden_kind_sam(golden *g)
{
    saa_sam_config cfg;
    cJSON *model = golden_cfg(g, "model");
    int rc = saa_sam_config_from_json(model, &cfg);
    if (rc != SAA_OK) return rc;
    const char *wrel = golden_cfg_str(g, "weights");
    char *wpath = golden_path(g, wrel ? wrel : "weights.pth");
    saa_sam *m = NULL;
    rc = saa_sam_load(wpath, &cfg, &m);
    free(wpath);
    if (rc != SAA_OK) return rc;
    sam_pre pre;
    memset(&pre, 0, sizeof pre);
    sam_case *cases = NULL;
    int ncases = 0;
    if ((rc = stage_preprocess(g, m, &pre)) != SAA_OK) goto done;
    if ((rc = stage_relpos(g)) != SAA_OK) goto done;
    if ((rc = stage_encoder(g, m)) != SAA_OK) goto done;
    CHECK_F32("prompt.dense_pe", m->dense_pe, 1, cfg.prompt_dim, cfg.emb_h, cfg.emb_w);
    cJSON *jcases = golden_cfg(g, "cases"), *jc;
    cases = calloc((size_t)cJSON_GetArraySize(jcases) + 1, sizeof *cases);
    if (!cases) {
        rc = saa_set_error(SAA_ENOMEM, "out of memory");
        goto done;
    }
    cJSON_ArrayForEach(jc, jcases)
    {
        if ((rc = parse_case(jc, &cases[ncases++])) != SAA_OK) goto done;
        if ((rc = stage_case(g, m, &cases[ncases - 1], &pre)) != SAA_OK) goto done;
    }
    rc = stage_e2e(g, m, &pre, cases, ncases);
done:
    for (int i = 0; i < ncases; i++) free_case(&cases[i]);
    free(cases);
    saa_image_free(&pre.img);
    free(pre.input);
    saa_sam_free(m);
    return rc;
}
