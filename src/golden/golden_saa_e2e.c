/* check-golden kind "saa_e2e" (../shared/golden/saa_e2e/README.md): the official SAA+ pipeline
 * (SAA/model.py Model.forward as eval_SAA.py drives it) on tiny models, per image. The pass/fail check is
 * stage-fed: every stage gets the STORED outputs of the previous one (README "Stage feeding" 1-7):
 *   1 image -> dino.image (RGB) -> detector per caption -> det.*
 *   2 stored det.* -> bbox_suppression -> sup.*, phrases, obj.max_box_area; stored max_box_area -> def.max_area
 *   3 stored kept boxes -> boxes_xyxy -> sam_boxes (and the float64 score lists)
 *   4 image (BGR) -> sam.resized -> sam.image_embedding; stored embedding + sam_boxes -> logits, iou, masks
 *   5 image + stored obj.masks -> saliency.map
 *   6 stored def.masks / def.scores / saliency.map -> rescore.scores
 *   7 stored rescore.scores -> topk.indices; stored def.masks + rescore -> fuse.map_full -> out.anomaly_map
 * The end-to-end run (each stage fed this port's own outputs) is reported as NOTE lines that never fail. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "models/gdino_impl.h"
#include "models/sam_internal.h"
#include "models/swin.h"
#include "saa/image.h"
#include "saa/saa.h"
#include "saa/sam.h"
#include "saa/tokenizer.h"
#include "saa/wrn.h"

#define E2E_MAX_CAPTIONS 64

typedef struct {
    golden *g;
    cJSON *cfg;          /* images[i] */
    char prefix[16];     /* "img0." */
    saa_image rgb, bgr;  /* the image as the detector (RGB) and SAM / the saliency backbone (BGR) get it */
    int H, W;
    saa_category cat;    /* property prompt parsed the official way; language prompts from the config */
    float box_threshold, text_threshold;
} e2e_image;

static const char *nm(const e2e_image *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *nm(const e2e_image *e, const char *fmt, ...)
{
    static _Thread_local char buf[160];
    size_t k = (size_t)snprintf(buf, sizeof buf, "%s", e->prefix);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + k, sizeof buf - k, fmt, ap);
    va_end(ap);
    return buf;
}

static int check_typed(golden *g, const char *name, saa_dtype dt, const void *data, int ndim, const int64_t *shape)
{
    saa_tensor *t = saa_tensor_wrap(dt, ndim, shape, (void *)data);
    if (!t) return golden_report(g, name, 0, "%s", saa_last_error());
    int r = golden_check(g, name, t);
    saa_tensor_free(t);
    return r;
}

/* A stored tensor used as a stage input: must exist with the expected element count. */
static const saa_tensor *feed_any(golden *g, const char *name, int64_t numel)
{
    const saa_tensor *t = golden_ref(g, name);
    if (!t) return NULL;
    if (numel >= 0 && saa_tensor_numel(t) != numel) {
        saa_set_error(SAA_ESHAPE, "%s: stored '%s' has %lld elements, expected %lld", g->dir, name,
                      (long long)saa_tensor_numel(t), (long long)numel);
        return NULL;
    }
    golden_mark_input(g, name);
    return t;
}

/* Stored tensor as a malloc'd double / uint8 copy (any dtype). */
static double *feed_f64(golden *g, const char *name, int64_t numel)
{
    const saa_tensor *t = feed_any(g, name, numel);
    if (!t) return NULL;
    int64_t n = saa_tensor_numel(t);
    double *out = malloc(sizeof *out * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; out && i < n; i++) out[i] = saa_tensor_get(t, i);
    return out;
}

static uint8_t *feed_u8(golden *g, const char *name, int64_t numel)
{
    const saa_tensor *t = feed_any(g, name, numel);
    if (!t) return NULL;
    int64_t n = saa_tensor_numel(t);
    uint8_t *out = malloc((size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; out && i < n; i++) out[i] = saa_tensor_get(t, i) != 0;
    return out;
}

/* ---------- stage 1: detector per caption ---------- */

static const char *caption_name(const e2e_image *e, int c, const char *what)
{
    return c < 0 ? nm(e, "det.obj0.%s", what) : nm(e, "det.def%d.%s", c, what);
}

static int stage_detector(e2e_image *e, saa_gdino *gd)
{
    golden *g = e->g;
    int rc = saa_gdino_set_image(gd, &e->rgb); /* the detector gets RGB */
    for (int c = -1; rc == SAA_OK && c < e->cat.n_prompts; c++) {
        saa_gdino_detections det;
        rc = saa_gdino_detect(gd, c < 0 ? e->cat.object_prompt : e->cat.defect_prompts[c], NULL, &det);
        if (rc != SAA_OK) break;
        const int nq = det.num_queries, T = det.num_tokens;
        /* pred_logits.sigmoid()[0] has 256 columns; those past the caption are sigmoid(-inf) = 0 */
        const int L = SAA_MAX_TEXT_LEN;
        float *full = calloc((size_t)nq * L + 1, sizeof *full);
        if (!full) {
            saa_gdino_detections_free(&det);
            return saa_set_error(SAA_ENOMEM, "out of memory");
        }
        for (int q = 0; q < nq; q++) memcpy(full + (size_t)q * L, det.logits + (size_t)q * T, sizeof *full * (size_t)T);
        golden_check_f32(g, caption_name(e, c, "logits"), full, 2, (int64_t[]){nq, L});
        golden_check_f32(g, caption_name(e, c, "boxes"), det.boxes, 2, (int64_t[]){nq, 4});
        free(full);
        saa_gdino_detections_free(&det);
    }
    return rc;
}

/* ---------- stage 2: bbox_suppression on the stored detector outputs ---------- */

/* The per-box phrases of config.json captions[c]: pre_mask_boxes [{query, phrase, dropped_by_filter, score}]
 * and kept_phrases (with the score suffix). */
static void check_phrases(e2e_image *e, int c, const char *cname, const gdino_suppression *s)
{
    golden *g = e->g;
    char name[160];
    snprintf(name, sizeof name, "%ssup.%s.phrases", e->prefix, cname);
    cJSON *caps = cJSON_GetObjectItemCaseSensitive(e->cfg, "captions");
    cJSON *cap = cJSON_GetArrayItem(caps, c + 1);
    const char *cn = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cap, "name"));
    if (!cn || strcmp(cn, cname)) {
        golden_report(g, name, 0, "config.json captions[%d] is not '%s'", c + 1, cname);
        return;
    }
    cJSON *pre = cJSON_GetObjectItemCaseSensitive(cap, "pre_mask_boxes");
    cJSON *kept = cJSON_GetObjectItemCaseSensitive(cap, "kept_phrases");
    if (cJSON_GetArraySize(pre) != s->n_candidates || cJSON_GetArraySize(kept) != s->n_kept) {
        golden_report(g, name, 0, "%d candidate / %d kept boxes, expected %d / %d", s->n_candidates, s->n_kept,
                      cJSON_GetArraySize(pre), cJSON_GetArraySize(kept));
        return;
    }
    int ci = 0, bad = 0;
    char detail[256] = "";
    for (int q = 0; q < s->nq; q++) {
        if (!s->score_area_mask[q]) continue;
        cJSON *b = cJSON_GetArrayItem(pre, ci);
        const char *ph = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "phrase"));
        cJSON *jq = cJSON_GetObjectItemCaseSensitive(b, "query"), *js = cJSON_GetObjectItemCaseSensitive(b, "score");
        int dropped = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "dropped_by_filter"));
        if (!ph || !cJSON_IsNumber(jq) || jq->valueint != q || strcmp(ph, s->candidate_phrases[ci]) ||
            dropped != !s->phrase_keep_mask[ci] || !cJSON_IsNumber(js) || js->valuedouble != (double)s->box_score[q]) {
            if (!bad++)
                snprintf(detail, sizeof detail, "query %d: got \"%s\" dropped=%d score=%.9g, expected query %d \"%s\"",
                         q, s->candidate_phrases[ci], !s->phrase_keep_mask[ci], (double)s->box_score[q],
                         cJSON_IsNumber(jq) ? jq->valueint : -1, ph ? ph : "?");
        }
        ci++;
    }
    for (int k = 0; k < s->n_kept; k++) {
        const char *ph = cJSON_GetStringValue(cJSON_GetArrayItem(kept, k));
        if (!ph || strcmp(ph, s->kept_phrases_with_score[k]))
            if (!bad++)
                snprintf(detail, sizeof detail, "kept %d: got \"%s\", expected \"%s\"", k, s->kept_phrases_with_score[k],
                         ph ? ph : "?");
    }
    golden_report(g, name, !bad, "%d boxes, %d kept, phrases/scores/filter decisions %s%s%s", s->n_candidates,
                  s->n_kept, bad ? "differ: " : "exact", bad ? detail : "", "");
}

static int stage_suppression(e2e_image *e, const saa_tokenizer *tok)
{
    golden *g = e->g;
    const saa_tensor *tdef = feed_any(g, nm(e, "def.max_area"), 1);
    if (!tdef) return saa_set_error(SAA_EFORMAT, "%s: %s", g->dir, saa_last_error());
    float max_box_area = 0;
    int any_object = 0;
    for (int c = -1; c < e->cat.n_prompts; c++) {
        char cname[16];
        snprintf(cname, sizeof cname, c < 0 ? "obj0" : "def%d", c < 0 ? 0 : c);
        const saa_tensor *tl = feed_any(g, caption_name(e, c, "logits"), -1);
        const saa_tensor *tb = feed_any(g, caption_name(e, c, "boxes"), -1);
        const saa_tensor *ti = feed_any(g, caption_name(e, c, "input_ids"), -1);
        if (!tl || !tb || !ti || tl->ndim != 2 || tb->ndim != 2 || tb->shape[0] != tl->shape[0] || tb->shape[1] != 4)
            return saa_set_error(SAA_EFORMAT, "%s: %sdet.%s.logits/boxes/input_ids: expected (nq, L), (nq, 4), (T,)",
                                 g->dir, e->prefix, cname);
        const int nq = (int)tl->shape[0], L = (int)tl->shape[1], T = (int)saa_tensor_numel(ti);
        const float *logits = golden_ref_f32(g, caption_name(e, c, "logits"), -1);
        const float *boxes = golden_ref_f32(g, caption_name(e, c, "boxes"), -1);
        int32_t *ids = malloc(sizeof *ids * (size_t)(T + 1));
        if (!logits || !boxes || !ids) {
            free(ids);
            return saa_set_error(SAA_ENOMEM, "out of memory");
        }
        for (int i = 0; i < T; i++) ids[i] = (int32_t)saa_tensor_get(ti, i);
        /* SAA/model.py forward: object pass max area 1/object_number (python float), min 0, filter 'PlaceHolder';
         * defect passes: the stored def.max_area, min 0, their own filtered phrase */
        saa_gdino_filter f = {e->box_threshold, e->text_threshold,
                              c < 0 ? (float)(1.0 / e->cat.object_count) : (float)saa_tensor_get(tdef, 0), 0.0f,
                              c < 0 ? "PlaceHolder" : e->cat.filter_phrases[c]};
        gdino_suppression s;
        int rc = gdino_bbox_suppression(logits, boxes, nq, L, ids, T, tok, &f, &s);
        free(ids);
        if (rc != SAA_OK) return rc;
        check_typed(g, nm(e, "sup.%s.pre_mask", cname), SAA_BOOL, s.score_area_mask, 1, (int64_t[]){nq});
        golden_check_f32(g, nm(e, "sup.%s.kept_boxes", cname), s.kept_boxes, 2, (int64_t[]){s.n_kept, 4});
        golden_check_f32(g, nm(e, "sup.%s.kept_scores", cname), s.kept_scores, 1, (int64_t[]){s.n_kept});
        check_phrases(e, c, cname, &s);
        if (c < 0)
            for (int k = 0; k < s.n_kept; k++) {
                /* boxes_area.max() > max_box_area: float32 w*h of the normalised boxes */
                float a = s.kept_boxes[4 * k + 2] * s.kept_boxes[4 * k + 3];
                if (a > max_box_area) max_box_area = a;
                any_object = 1;
            }
        gdino_suppression_free(&s);
    }
    if (!any_object) max_box_area = 1.0f; /* no object box: max_box_area = 1 */
    golden_check_f32(g, nm(e, "obj.max_box_area"), &max_box_area, 1, (int64_t[]){1});
    return SAA_OK;
}

/* ---------- stage 3: stored kept boxes -> pixel boxes -> SAM boxes ---------- */

/* SAA/model.py ensemble_text_guided_mask_proposal: a pass that keeps no box skips SAM and returns
 * masks [zeros(H, W)] and logits [0]. A folder may store that fallback (one row) or the empty box list
 * (zero rows) as the pass's scores / masks; the stored row count says which one to compare. */
static int stored_fallback_row(golden *g, const char *name)
{
    const saa_tensor *t = saa_weights_find(g->ref, name);
    return t && t->ndim >= 1 && t->shape[0] == 1;
}

/* Concatenates the stored sup.C.kept_boxes / kept_scores of a pass's captions (in call order). */
static int stored_kept(e2e_image *e, int pass, float **boxes, double **scores, int *n)
{
    golden *g = e->g;
    int ncap = pass == 0 ? 1 : e->cat.n_prompts, total = 0;
    *boxes = NULL, *scores = NULL, *n = 0;
    for (int c = 0; c < ncap; c++) {
        const saa_tensor *t = golden_ref(g, nm(e, "sup.%s%d.kept_boxes", pass ? "def" : "obj", c));
        if (!t) return SAA_EFORMAT;
        total += (int)(t->ndim == 2 ? t->shape[0] : 0);
    }
    float *b = malloc(sizeof *b * 4 * (size_t)(total + 1));
    double *s = malloc(sizeof *s * (size_t)(total + 1));
    if (!b || !s) {
        free(b), free(s);
        return saa_set_error(SAA_ENOMEM, "out of memory");
    }
    int k = 0;
    for (int c = 0; c < ncap; c++) {
        const saa_tensor *tb = feed_any(g, nm(e, "sup.%s%d.kept_boxes", pass ? "def" : "obj", c), -1);
        int64_t m = tb && tb->ndim == 2 && tb->shape[1] == 4 ? tb->shape[0] : -1;
        const saa_tensor *ts = feed_any(g, nm(e, "sup.%s%d.kept_scores", pass ? "def" : "obj", c), m);
        if (m < 0 || !ts) {
            free(b), free(s);
            return saa_set_error(SAA_EFORMAT, "%s: %ssup.%s%d.kept_boxes/kept_scores: expected (k,4) and (k,)",
                                 g->dir, e->prefix, pass ? "def" : "obj", c);
        }
        for (int64_t i = 0; i < m; i++, k++) {
            for (int j = 0; j < 4; j++) b[4 * k + j] = (float)saa_tensor_get(tb, 4 * i + j);
            s[k] = (double)(float)saa_tensor_get(ts, i); /* python float of a float32 .item() */
        }
    }
    *boxes = b, *scores = s, *n = total;
    return SAA_OK;
}

static int stage_boxes(e2e_image *e, const saa_sam_config *sc)
{
    golden *g = e->g;
    for (int pass = 0; pass < 2; pass++) {
        const char *p = pass ? "def" : "obj";
        float *kept;
        double *scores;
        int n;
        int rc = stored_kept(e, pass, &kept, &scores, &n);
        if (rc != SAA_OK) return rc;
        float *xyxy = malloc(sizeof *xyxy * 4 * (size_t)(n + 1)), *sam_boxes = malloc(sizeof *xyxy * 4 * (size_t)(n + 1));
        if (!xyxy || !sam_boxes) {
            free(kept), free(scores), free(xyxy), free(sam_boxes);
            return saa_set_error(SAA_ENOMEM, "out of memory");
        }
        saa_boxes_to_pixels(kept, n, e->W, e->H, 0, xyxy);
        golden_check_f32(g, nm(e, "%s.boxes_xyxy", p), xyxy, 2, (int64_t[]){n, 4});
        const double no_box_score = 0.0; /* logits = [0] */
        const int fallback = n == 0 && stored_fallback_row(g, nm(e, "%s.scores", p));
        check_typed(g, nm(e, "%s.scores", p), SAA_F64, fallback ? &no_box_score : scores, 1,
                    (int64_t[]){fallback ? 1 : n});
        /* apply_boxes_torch on the stored pixel boxes */
        const float *stored_xyxy = golden_ref_f32(g, nm(e, "%s.boxes_xyxy", p), 4 * (int64_t)n);
        if (stored_xyxy) {
            golden_mark_input(g, nm(e, "%s.boxes_xyxy", p));
            sam_apply_coords(stored_xyxy, 2 * n, e->H, e->W, sc->img_size, SAA_SAM_COORDS_F32, sam_boxes);
            golden_check_f32(g, nm(e, "%s.sam_boxes", p), sam_boxes, 2, (int64_t[]){n, 4});
        } else {
            golden_report(g, nm(e, "%s.sam_boxes", p), 0, "stored boxes_xyxy unusable: %s", saa_last_error());
        }
        free(kept), free(scores), free(xyxy), free(sam_boxes);
    }
    return SAA_OK;
}

/* ---------- stage 4: SAM ---------- */

static int stage_sam(e2e_image *e, saa_sam *sam)
{
    golden *g = e->g;
    const saa_sam_config *c = saa_sam_get_config(sam);
    int nh, nw;
    saa_sam_preprocess_shape(e->H, e->W, c->img_size, &nh, &nw);
    uint8_t *resized = malloc((size_t)nh * nw * 3);
    if (!resized) return saa_set_error(SAA_ENOMEM, "out of memory");
    saa_resize_pil_bilinear_u8(e->bgr.data, e->W, e->H, 3, resized, nw, nh);
    check_typed(g, nm(e, "sam.resized"), SAA_U8, resized, 3, (int64_t[]){nh, nw, 3});
    free(resized);
    /* SamPredictor.set_image(image_bgr): the official code hands SAM the BGR array */
    int rc = saa_sam_set_image(sam, &e->bgr);
    if (rc != SAA_OK) return rc;
    const int D = c->out_chans, eh = c->emb_h, ew = c->emb_w;
    golden_check_f32(g, nm(e, "sam.image_embedding"), saa_sam_image_embedding(sam), 4, (int64_t[]){1, D, eh, ew});

    const float *s_emb = golden_ref_f32(g, nm(e, "sam.image_embedding"), (int64_t)D * eh * ew);
    if (!s_emb) return saa_set_error(SAA_EFORMAT, "%s: %s", g->dir, saa_last_error());
    golden_mark_input(g, nm(e, "sam.image_embedding"));
    float *pe = malloc(sizeof *pe * (size_t)c->prompt_dim * eh * ew);
    if (!pe) return saa_set_error(SAA_ENOMEM, "out of memory");
    sam_dense_pe(sam, pe);
    for (int pass = 0; pass < 2 && rc == SAA_OK; pass++) {
        const char *p = pass ? "def" : "obj";
        const saa_tensor *tb = golden_ref(g, nm(e, "%s.sam_boxes", p));
        if (!tb || tb->ndim != 2 || tb->shape[1] != 4) {
            rc = saa_set_error(SAA_EFORMAT, "%s: %s%s.sam_boxes: expected (n, 4)", g->dir, e->prefix, p);
            break;
        }
        int B = (int)tb->shape[0];
        const float *boxes = golden_ref_f32(g, nm(e, "%s.sam_boxes", p), 4 * (int64_t)B);
        golden_mark_input(g, nm(e, "%s.sam_boxes", p));
        int N = sam_sparse_count(0, 1), LH = 4 * eh, LW = 4 * ew;
        float *sparse = malloc(sizeof(float) * ((size_t)B * N * c->prompt_dim + 1));
        float *low = malloc(sizeof(float) * ((size_t)B * LH * LW + 1)), *iou = malloc(sizeof(float) * (size_t)(B + 1));
        float *logits = malloc(sizeof(float) * ((size_t)B * e->H * e->W + 1));
        uint8_t *masks = malloc((size_t)B * e->H * e->W + 1);
        if (!sparse || !low || !iou || !logits || !masks || !boxes) {
            rc = boxes ? saa_set_error(SAA_ENOMEM, "out of memory") : SAA_EFORMAT;
        } else {
            sam_embed_prompts(sam, B, 0, NULL, NULL, boxes, sparse);
            /* predict_torch(multimask_output=False): mask token 0 */
            rc = B ? sam_decode_masks(sam, s_emb, pe, sparse, NULL, B, N, 0, NULL, low, iou) : SAA_OK;
            if (rc == SAA_OK) {
                golden_check_f32(g, nm(e, "%s.low_res_logits", p), low, 4, (int64_t[]){B, 1, LH, LW});
                golden_check_f32(g, nm(e, "%s.iou_pred", p), iou, 2, (int64_t[]){B, 1});
                const float *s_low = golden_ref_f32(g, nm(e, "%s.low_res_logits", p), (int64_t)B * LH * LW);
                if (s_low) {
                    golden_mark_input(g, nm(e, "%s.low_res_logits", p));
                    rc = B ? sam_postprocess(sam, s_low, B, nh, nw, e->H, e->W, logits, NULL) : SAA_OK;
                    for (int64_t i = 0; rc == SAA_OK && i < (int64_t)B * e->H * e->W; i++)
                        masks[i] = logits[i] > c->mask_threshold;
                    if (rc == SAA_OK && B == 0 && stored_fallback_row(g, nm(e, "%s.masks", p))) {
                        uint8_t *zeros = calloc((size_t)e->H * e->W, 1); /* masks = [zeros(H, W)] */
                        if (!zeros) rc = saa_set_error(SAA_ENOMEM, "out of memory");
                        else check_typed(g, nm(e, "%s.masks", p), SAA_BOOL, zeros, 3, (int64_t[]){1, e->H, e->W});
                        free(zeros);
                    } else if (rc == SAA_OK) {
                        check_typed(g, nm(e, "%s.masks", p), SAA_BOOL, masks, 3, (int64_t[]){B, e->H, e->W});
                    }
                } else {
                    golden_report(g, nm(e, "%s.masks", p), 0, "stored low_res_logits unusable: %s",
                                  saa_last_error());
                }
            }
        }
        free(sparse), free(low), free(iou), free(logits), free(masks);
    }
    free(pe);
    return rc;
}

/* ---------- stage 5: saliency from the image and the stored object masks ---------- */

static int stage_saliency(e2e_image *e, const saa_wrn *wrn)
{
    golden *g = e->g;
    const saa_tensor *tm = golden_ref(g, nm(e, "obj.masks"));
    if (!tm || tm->ndim != 3 || tm->shape[1] != e->H || tm->shape[2] != e->W)
        return saa_set_error(SAA_EFORMAT, "%s: %sobj.masks: expected (n, %d, %d)", g->dir, e->prefix, e->H, e->W);
    int n = (int)tm->shape[0];
    int64_t P = (int64_t)e->H * e->W;
    uint8_t *masks = feed_u8(g, nm(e, "obj.masks"), (int64_t)n * P);
    double *map = malloc(sizeof *map * (size_t)P);
    int rc = masks && map ? SAA_OK : saa_set_error(SAA_ENOMEM, "out of memory");
    int is_f32 = 0;
    /* visual_saliency_calculation(image_bgr, object_masks) */
    if (rc == SAA_OK) rc = saa_wrn_saliency(wrn, e->bgr.data, e->W, e->H, masks, n, e->cat.object_count, map, &is_f32);
    if (rc == SAA_OK) check_typed(g, nm(e, "saliency.map"), SAA_F64, map, 2, (int64_t[]){e->H, e->W});
    free(masks), free(map);
    return rc;
}

/* ---------- end to end (informational: NOTE lines, never a failure) ---------- */

static void note_f64(e2e_image *e, const char *what, const double *got, int64_t n)
{
    golden *g = e->g;
    const saa_tensor *t = saa_weights_find(g->ref, nm(e, "%s", what));
    if (!t) return;
    if (saa_tensor_numel(t) != n) {
        fprintf(g->out, "NOTE  %-48s end to end: %lld values, stored %lld\n", nm(e, "%s", what), (long long)n,
                (long long)saa_tensor_numel(t));
        return;
    }
    double mx = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(got[i] - saa_tensor_get(t, i));
        if (d > mx) mx = d;
    }
    fprintf(g->out, "NOTE  %-48s end to end: max_abs=%.3g\n", nm(e, "%s", what), mx);
}

static void end_to_end(e2e_image *e, saa_models *models)
{
    golden *g = e->g;
    saa_options o;
    saa_options_init(&o);
    o.box_threshold = e->box_threshold;
    o.text_threshold = e->text_threshold;
    cJSON *jos = cJSON_GetObjectItemCaseSensitive(e->cfg, "out_size");
    o.out_size = cJSON_IsNumber(jos) ? jos->valueint : 256;
    saa_result r;
    if (saa_segment(models, &e->cat, &o, &e->rgb, &r) != SAA_OK) {
        fprintf(g->out, "NOTE  %-48s end to end run failed: %s\n", nm(e, "pipeline"), saa_last_error());
        return;
    }
    int n_obj = 0, n_def = 0;
    double *scores = malloc(sizeof *scores * (size_t)(r.n_regions + 1));
    double *rescored = malloc(sizeof *rescored * (size_t)(r.n_regions + 1));
    for (int i = 0; scores && rescored && i < r.n_regions; i++) {
        const saa_region *rg = &r.regions[i];
        if (!strcmp(rg->status, "object")) n_obj++;
        if (rg->pass == 1 && (!strcmp(rg->status, "fused") || !strcmp(rg->status, "not-top-k"))) {
            scores[n_def] = rg->score;
            rescored[n_def++] = rg->rescored;
        }
    }
    const saa_tensor *so = saa_weights_find(g->ref, nm(e, "obj.scores"));
    const saa_tensor *sd = saa_weights_find(g->ref, nm(e, "def.scores"));
    fprintf(g->out, "NOTE  %-48s end to end: %d object / %d defect boxes kept (stored %lld / %lld); saliency %s\n",
            nm(e, "pipeline"), n_obj, n_def, so ? (long long)saa_tensor_numel(so) : -1LL,
            sd ? (long long)saa_tensor_numel(sd) : -1LL, r.saliency_mode);
    if (scores && rescored && n_def == 0 && stored_fallback_row(g, nm(e, "def.scores"))) {
        scores[0] = rescored[0] = 0.0; /* no defect box: the official logits [0], rescored 0 * 1 */
        n_def = 1;
    }
    if (scores && rescored) {
        note_f64(e, "def.scores", scores, n_def);
        note_f64(e, "rescore.scores", rescored, n_def);
    }
    note_f64(e, "saliency.map", r.saliency, (int64_t)e->H * e->W);
    note_f64(e, "fuse.map_full", r.map_full, (int64_t)e->H * e->W);
    note_f64(e, "out.anomaly_map", r.map, (int64_t)r.out_size * r.out_size);
    free(scores), free(rescored);
    saa_result_free(&r);
}

/* ---------- stages 6-7: rescore, top-k, fusion, output resize ---------- */

static int stage_fusion(e2e_image *e)
{
    golden *g = e->g;
    const saa_tensor *tm = golden_ref(g, nm(e, "def.masks"));
    if (!tm || tm->ndim != 3 || tm->shape[1] != e->H || tm->shape[2] != e->W)
        return saa_set_error(SAA_EFORMAT, "%s: %sdef.masks: expected (n, %d, %d)", g->dir, e->prefix, e->H, e->W);
    int n = (int)tm->shape[0];
    int64_t P = (int64_t)e->H * e->W;
    uint8_t *masks = feed_u8(g, nm(e, "def.masks"), (int64_t)n * P);
    double *scores = feed_f64(g, nm(e, "def.scores"), n);
    double *sal = feed_f64(g, nm(e, "saliency.map"), P);
    double *rescored = malloc(sizeof *rescored * (size_t)(n + 1));
    int *top = malloc(sizeof *top * (size_t)(n + 1));
    int64_t *top64 = malloc(sizeof *top64 * (size_t)(n + 1));
    double *map = malloc(sizeof *map * (size_t)P);
    cJSON *jos = cJSON_GetObjectItemCaseSensitive(e->cfg, "out_size");
    int os = cJSON_IsNumber(jos) ? jos->valueint : (int)golden_cfg_num(g, "run.out_size", 256);
    double *out = malloc(sizeof *out * (size_t)os * os);
    int rc = SAA_OK;
    if (!masks || !scores || !sal) {
        rc = saa_set_error(SAA_EFORMAT, "%s: %s", g->dir, saa_last_error());
        goto done;
    }
    if (!rescored || !top || !top64 || !map || !out) {
        rc = saa_set_error(SAA_ENOMEM, "out of memory");
        goto done;
    }
    /* 6: the single-instance saliency map is float32 officially (mean and exp in float32) */
    saa_rescore(masks, n, P, scores, sal, e->cat.object_count == 1, rescored);
    check_typed(g, nm(e, "rescore.scores"), SAA_F64, rescored, 1, (int64_t[]){n});
    /* 7: fed the stored rescored scores (img1's top-k boundary is a near-tie) */
    double *s_rescore = feed_f64(g, nm(e, "rescore.scores"), n);
    if (!s_rescore) {
        rc = saa_set_error(SAA_EFORMAT, "%s: %s", g->dir, saa_last_error());
        goto done;
    }
    int k = saa_topk_ascending(s_rescore, n, e->cat.top_k, top);
    for (int i = 0; i < k; i++) top64[i] = top[i];
    check_typed(g, nm(e, "topk.indices"), SAA_I64, top64, 1, (int64_t[]){k});
    const saa_tensor *tk = feed_any(g, nm(e, "topk.indices"), -1);
    int ks = tk ? (int)saa_tensor_numel(tk) : 0;
    for (int i = 0; i < ks; i++) {
        top[i] = (int)saa_tensor_get(tk, i);
        if (top[i] < 0 || top[i] >= n) {
            free(s_rescore);
            rc = saa_set_error(SAA_EFORMAT, "%s: %stopk.indices[%d] = %d out of range", g->dir, e->prefix, i, top[i]);
            goto done;
        }
    }
    saa_fuse_masks(masks, P, top, ks, s_rescore, 0, map);
    free(s_rescore);
    check_typed(g, nm(e, "fuse.map_full"), SAA_F64, map, 2, (int64_t[]){e->H, e->W});
    double *s_map = feed_f64(g, nm(e, "fuse.map_full"), P);
    if (!s_map) {
        rc = saa_set_error(SAA_EFORMAT, "%s: %s", g->dir, saa_last_error());
        goto done;
    }
    /* cv2.resize(anomaly_map, (out_size, out_size)) on the float64 map */
    rc = saa_resize_cv_f64(s_map, e->W, e->H, 1, out, os, os, SAA_CV_INTER_LINEAR);
    free(s_map);
    if (rc == SAA_OK) check_typed(g, nm(e, "out.anomaly_map"), SAA_F64, out, 2, (int64_t[]){os, os});
done:
    free(masks), free(scores), free(sal), free(rescored), free(top), free(top64), free(map), free(out);
    return rc;
}

/* ---------- per image ---------- */

static int image_setup(golden *g, cJSON *im, int idx, e2e_image *e)
{
    memset(e, 0, sizeof *e);
    e->g = g, e->cfg = im;
    snprintf(e->prefix, sizeof e->prefix, "img%d.", idx);
    const char *file = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(im, "image"));
    const char *prop = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(im, "property_prompt"));
    cJSON *tp = cJSON_GetObjectItemCaseSensitive(im, "textual_prompts");
    cJSON *bt = cJSON_GetObjectItemCaseSensitive(im, "box_threshold");
    cJSON *tt = cJSON_GetObjectItemCaseSensitive(im, "text_threshold");
    if (!file || !prop || !cJSON_IsArray(tp) || !cJSON_IsNumber(bt) || !cJSON_IsNumber(tt))
        return saa_set_error(SAA_EFORMAT,
                             "%s/config.json: images[%d] needs image, property_prompt, textual_prompts, "
                             "box_threshold, text_threshold",
                             g->dir, idx);
    e->box_threshold = (float)bt->valuedouble; /* official comparisons cast the threshold to float32 */
    e->text_threshold = (float)tt->valuedouble;
    int rc = saa_property_parse(prop, 0, &e->cat);
    if (rc != SAA_OK) return rc;
    cJSON *pair;
    cJSON_ArrayForEach(pair, tp)
    {
        const char *d = cJSON_GetStringValue(cJSON_GetArrayItem(pair, 0));
        const char *f = cJSON_GetStringValue(cJSON_GetArrayItem(pair, 1));
        if (!d || !f) return saa_set_error(SAA_EFORMAT, "%s/config.json: images[%d].textual_prompts: expected "
                                                        "[prompt, filter] pairs", g->dir, idx);
        if ((rc = saa_category_add_prompt(&e->cat, d, f)) != SAA_OK) return rc;
    }
    if (e->cat.n_prompts > E2E_MAX_CAPTIONS) return saa_set_error(SAA_EFORMAT, "too many captions");
    char *path = golden_path(g, file);
    rc = path ? saa_image_load(path, &e->rgb) : saa_set_error(SAA_ENOMEM, "out of memory");
    free(path);
    if (rc != SAA_OK) return rc;
    e->H = e->rgb.h, e->W = e->rgb.w;
    e->bgr = e->rgb;
    e->bgr.data = malloc((size_t)e->W * e->H * 3);
    if (!e->bgr.data) return saa_set_error(SAA_ENOMEM, "out of memory");
    memcpy(e->bgr.data, e->rgb.data, (size_t)e->W * e->H * 3);
    saa_image_swap_rb(&e->bgr); /* cv2.imread's BGR array, what Model.forward receives */
    check_typed(g, nm(e, "input.image_bgr"), SAA_U8, e->bgr.data, 3, (int64_t[]){e->H, e->W, 3});
    return SAA_OK;
}

static void image_free(e2e_image *e)
{
    saa_image_free(&e->rgb);
    free(e->bgr.data);
    saa_category_free(&e->cat);
}

/* Stage 1 parts that need no detector: the detector input and the caption token ids. */
static int stage_detector_inputs(e2e_image *e, const saa_tokenizer *tok)
{
    golden *g = e->g;
    uint8_t *resized = NULL;
    float *tensor = NULL;
    int oh, ow;
    /* Model.transform: RandomResize([800], max_size=1333) on the RGB image, ToTensor, Normalize */
    int rc = gdino_image_preprocess(&e->rgb, 800, 1333, &resized, &tensor, &oh, &ow);
    if (rc != SAA_OK) return rc;
    /* every stored "imgN.dino.image*" (sampled whole image, row 400 or another row the folder chose) is a
     * view of the same full tensor */
    const char *stem = nm(e, "dino.image");
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s", stem);
    for (int i = 0; i < saa_weights_count(g->ref); i++) {
        const char *n = saa_weights_name(g->ref, i);
        if (!strncmp(n, prefix, strlen(prefix))) golden_check_f32(g, n, tensor, 3, (int64_t[]){3, oh, ow});
    }
    free(resized), free(tensor);
    for (int c = -1; c < e->cat.n_prompts; c++) {
        const char *raw = c < 0 ? e->cat.object_prompt : e->cat.defect_prompts[c];
        char *cap;
        size_t len;
        int32_t *ids;
        int n;
        if ((rc = saa_caption_normalize(raw, strlen(raw), &cap, &len)) != SAA_OK) return rc;
        rc = saa_tokenize(tok, cap, len, &ids, &n);
        free(cap);
        if (rc != SAA_OK) return rc;
        int64_t *ids64 = malloc(sizeof *ids64 * (size_t)(n + 1));
        for (int i = 0; ids64 && i < n; i++) ids64[i] = ids[i];
        if (ids64)
            check_typed(g, c < 0 ? nm(e, "det.obj0.input_ids") : nm(e, "det.def%d.input_ids", c), SAA_I64, ids64, 1,
                        (int64_t[]){n});
        free(ids), free(ids64);
        if (!ids64) return saa_set_error(SAA_ENOMEM, "out of memory");
    }
    return SAA_OK;
}

/* Defect max area from the STORED object max box area: a float32 0-d tensor times the python float ratio
 * (torch computes it in float32); 1 (python int) when no object box survived. */
static int stage_def_max_area(e2e_image *e)
{
    golden *g = e->g;
    const saa_tensor *t = feed_any(g, nm(e, "obj.max_box_area"), 1);
    if (!t) return saa_set_error(SAA_EFORMAT, "%s: %s", g->dir, saa_last_error());
    float a = (float)saa_tensor_get(t, 0);
    float m = a * (float)e->cat.max_area_ratio;
    golden_check_f32(g, nm(e, "def.max_area"), &m, 1, (int64_t[]){1});
    return SAA_OK;
}

int golden_kind_saa_e2e(golden *g)
{
    cJSON *images = golden_cfg(g, "images");
    const char *vocab_rel = golden_cfg_str(g, "vocab");
    const char *sam_rel = golden_cfg_str(g, "weights.sam.file");
    if (!cJSON_IsArray(images) || !vocab_rel || !sam_rel)
        return saa_set_error(SAA_EFORMAT, "%s/config.json: expected images[], vocab and weights.sam.file", g->dir);
    saa_tokenizer *tok = NULL;
    saa_sam *sam = NULL;
    saa_gdino *gd = NULL;
    saa_weights *gd_raw = NULL;
    const char *gd_rel = golden_cfg_str(g, "weights.gdino.file");
    char *gd_path = gd_rel ? golden_path(g, gd_rel) : NULL;
    char *vocab = golden_path(g, vocab_rel), *sam_path = golden_path(g, sam_rel);
    saa_sam_config sc;
    int rc = saa_tokenizer_load(vocab, &tok);
    if (rc == SAA_OK) rc = saa_sam_config_from_json(golden_cfg(g, "weights.sam.model"), &sc);
    if (rc == SAA_OK) rc = saa_sam_load(sam_path, &sc, &sam);
    saa_sam_config unused_sam;
    saa_gdino_config gc;
    int has_sam = 0, has_gdino = 0;
    if (rc == SAA_OK) rc = saa_model_configs_from_json(g->config, &unused_sam, &has_sam, &gc, &has_gdino);
    if (rc == SAA_OK && (!has_gdino || !gd_path))
        rc = saa_set_error(SAA_EFORMAT, "%s/config.json: expected weights.gdino.file and weights.gdino.config", g->dir);
    if (rc == SAA_OK) rc = saa_load_dino(gd_path, vocab, &gc, &gd, &gd_raw);
    saa_wrn *wrn = NULL;
    const char *wrn_rel = golden_cfg_str(g, "weights.wrn.file");
    char *wrn_path = wrn_rel ? golden_path(g, wrn_rel) : NULL;
    if (rc == SAA_OK && !wrn_path) rc = saa_set_error(SAA_EFORMAT, "%s/config.json: expected weights.wrn.file", g->dir);
    if (rc == SAA_OK) {
        saa_weights *w;
        rc = saa_weights_open(wrn_path, &w);
        if (rc == SAA_OK) {
            rc = saa_wrn_load(w, NULL, &wrn);
            saa_weights_close(w);
        }
    }
    /* the whole pipeline, for the informational end-to-end notes */
    saa_models *models = NULL;
    char *cfg_path = golden_path(g, "config.json");
    if (rc == SAA_OK) {
        saa_model_files mf = {.sam = sam_path, .gdino = gd_path, .wrn = wrn_path, .vocab = vocab, .config = cfg_path};
        if (saa_models_load(&mf, &models) != SAA_OK)
            fprintf(g->out, "NOTE  end-to-end pipeline not run: %s\n", saa_last_error());
    }
    free(vocab), free(sam_path), free(gd_path), free(wrn_path), free(cfg_path);
    int idx = 0;
    cJSON *im;
    cJSON_ArrayForEach(im, images)
    {
        if (rc != SAA_OK) break;
        e2e_image e;
        rc = image_setup(g, im, idx++, &e);
        if (rc == SAA_OK) rc = stage_detector_inputs(&e, tok);
        if (rc == SAA_OK) rc = stage_detector(&e, gd);
        if (rc == SAA_OK) rc = stage_def_max_area(&e);
        if (rc == SAA_OK) rc = stage_suppression(&e, tok);
        if (rc == SAA_OK) rc = stage_boxes(&e, saa_sam_get_config(sam));
        if (rc == SAA_OK) rc = stage_sam(&e, sam);
        if (rc == SAA_OK) rc = stage_saliency(&e, wrn);
        if (rc == SAA_OK) rc = stage_fusion(&e);
        if (rc == SAA_OK && models) end_to_end(&e, models);
        image_free(&e);
    }
    saa_models_free(models);
    saa_wrn_free(wrn);
    saa_sam_free(sam);
    saa_gdino_free(gd);
    saa_weights_close(gd_raw);
    saa_tokenizer_free(tok);
    return rc;
}
