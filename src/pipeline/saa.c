/* The SAA+ pipeline (SAA/model.py Model.forward): object pass and defect passes of Grounding DINO with
 * bbox_suppression, SAM refinement of the surviving boxes, WideResNet saliency re-scoring and the confidence
 * fusion into an anomaly map. Official behaviour by default; each quirk has a named fix (SAA_FIX_*).
 * The official failures (no object box or a single object mask in the multi-instance saliency, an object
 * mask vanishing at feature resolution) fall back to defined results instead of crashing. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "models/gdino_impl.h"
#include "saa/saa.h"
#include "saa/tokenizer.h"
#include "saa/wrn.h"

struct saa_models {
    saa_sam *sam;
    saa_gdino *gdino;
    saa_weights *gdino_raw; /* the checkpoint the cleaned gdino map borrows from */
    saa_wrn *wrn;
    saa_tokenizer *tok;     /* for the phrases of bbox_suppression */
};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------- models ---------- */

static const char *sam_file_of(const char *variant)
{
    if (!variant || !strcmp(variant, "vit_h")) return "sam_vit_h_4b8939.pth";
    if (!strcmp(variant, "vit_l")) return "sam_vit_l_0b3195.pth";
    if (!strcmp(variant, "vit_b")) return "sam_vit_b_01ec64.pth";
    return NULL;
}

/* explicit file, else DIR/NAME; the error names the missing file and how to get it */
static int model_path(const char *explicit_path, const char *dir, const char *name, const char *what,
                      const char *download_args, char *out, size_t n)
{
    struct stat st;
    if (explicit_path) {
        snprintf(out, n, "%s", explicit_path);
        if (stat(out, &st) != 0)
            return saa_set_error(SAA_EIO, "%s model file %s not found", what, explicit_path);
        return SAA_OK;
    }
    snprintf(out, n, "%s/%s", dir, name);
    if (stat(out, &st) != 0)
        return saa_set_error(SAA_EIO,
                             "%s model file %s not found (models folder %s, set by --models or SAA_MODELS); "
                             "download it with: scripts/download-models.sh --dir %s%s",
                             what, out, dir, dir, download_args);
    return SAA_OK;
}

int saa_models_load(const saa_model_files *f, saa_models **out)
{
    *out = NULL;
    const char *dir = f->dir ? f->dir : getenv("SAA_MODELS");
    if (!dir || !*dir) dir = "./models";
    const char *sam_name = sam_file_of(f->sam_variant);
    if (!sam_name)
        return saa_set_error(SAA_EINVAL, "SAM variant '%s': expected vit_b, vit_l or vit_h", f->sam_variant);
    char sam_args[32] = "";
    if (f->sam_variant && strcmp(f->sam_variant, "vit_h")) snprintf(sam_args, sizeof sam_args, " --sam %s", f->sam_variant);
    char sam_path[4096], gd_path[4096], wrn_path[4096], vocab_path[4096];
    int rc;
    if ((rc = model_path(f->sam, dir, sam_name, "SAM", sam_args, sam_path, sizeof sam_path)) ||
        (rc = model_path(f->gdino, dir, "groundingdino_swint_ogc.pth", "Grounding DINO", "", gd_path, sizeof gd_path)) ||
        (rc = model_path(f->vocab, dir, "bert-base-uncased-vocab.txt", "BERT vocabulary", "", vocab_path,
                         sizeof vocab_path)) ||
        (rc = model_path(f->wrn, dir, "wide_resnet50_2.safetensors", "WideResNet-50-2", "", wrn_path, sizeof wrn_path)))
        return rc;
    saa_sam_config sc;
    saa_gdino_config gc;
    int has_sam = 0, has_gdino = 0;
    saa_gdino_config_preset("swint_ogc", &gc);
    if (f->config && (rc = saa_model_configs_load(f->config, &sc, &has_sam, &gc, &has_gdino)) != SAA_OK) return rc;
    saa_models *m = calloc(1, sizeof *m);
    if (!m) return saa_set_error(SAA_ENOMEM, "out of memory");
    saa_weights *w = NULL;
    if ((rc = saa_sam_load(sam_path, has_sam ? &sc : NULL, &m->sam)) != SAA_OK) goto fail;
    if ((rc = saa_load_dino(gd_path, vocab_path, &gc, &m->gdino, &m->gdino_raw)) != SAA_OK) goto fail;
    if ((rc = saa_tokenizer_load(vocab_path, &m->tok)) != SAA_OK) goto fail;
    if ((rc = saa_weights_open(wrn_path, &w)) != SAA_OK) goto fail;
    rc = saa_wrn_load(w, NULL, &m->wrn);
    saa_weights_close(w);
    if (rc != SAA_OK) goto fail;
    *out = m;
    return SAA_OK;
fail:
    saa_models_free(m);
    return rc;
}

void saa_models_free(saa_models *m)
{
    if (!m) return;
    saa_sam_free(m->sam);
    saa_gdino_free(m->gdino);
    saa_weights_close(m->gdino_raw);
    saa_wrn_free(m->wrn);
    saa_tokenizer_free(m->tok);
    free(m);
}

void saa_options_init(saa_options *o)
{
    memset(o, 0, sizeof *o);
    o->box_threshold = 0.1f; /* eval_SAA.py defaults */
    o->text_threshold = 0.1f;
    o->out_size = 256;       /* Model(out_size=256) */
    o->fixes = 0;
}

/* ---------- detection passes ---------- */

/* Boxes kept by one pass, in call order (the official ensemble lists). */
typedef struct {
    int n, cap;
    float *cxcywh;  /* normalised */
    double *scores; /* python floats of float32 box scores */
    int *region;    /* index in the result's region list */
} kept_boxes;

static void kept_free(kept_boxes *k)
{
    free(k->cxcywh), free(k->scores), free(k->region);
    memset(k, 0, sizeof *k);
}

static int kept_push(kept_boxes *k, const float *box, double score, int region)
{
    if (k->n == k->cap) {
        int cap = k->cap ? 2 * k->cap : 16;
        float *b = realloc(k->cxcywh, sizeof *b * 4 * (size_t)cap);
        if (b) k->cxcywh = b;
        double *s = realloc(k->scores, sizeof *s * (size_t)cap);
        if (s) k->scores = s;
        int *r = realloc(k->region, sizeof *r * (size_t)cap);
        if (r) k->region = r;
        if (!b || !s || !r) return saa_set_error(SAA_ENOMEM, "out of memory");
        k->cap = cap;
    }
    memcpy(k->cxcywh + 4 * k->n, box, 4 * sizeof *box);
    k->scores[k->n] = score;
    k->region[k->n] = region;
    k->n++;
    return SAA_OK;
}

static int region_push(saa_result *r, int *cap, saa_region **out)
{
    if (r->n_regions == *cap) {
        int c = *cap ? 2 * *cap : 32;
        saa_region *p = realloc(r->regions, sizeof *p * (size_t)c);
        if (!p) return saa_set_error(SAA_ENOMEM, "out of memory");
        r->regions = p, *cap = c;
    }
    *out = &r->regions[r->n_regions++];
    memset(*out, 0, sizeof **out);
    return SAA_OK;
}

/* SAA_FIX_BOXSCORE: [CLS], [SEP] and punctuation tokens neither score a box nor enter its phrase. */
static int is_special_token(const saa_tokenizer *tok, int32_t id)
{
    const char *t = saa_tokenizer_token(tok, id);
    if (!strcmp(t, "[CLS]") || !strcmp(t, "[SEP]") || !strcmp(t, "[PAD]")) return 1;
    return t[0] && !t[1] && ispunct((unsigned char)t[0]);
}

typedef struct {
    int pass;               /* 0 object, 1 defect */
    int prompt;             /* caption index within the pass */
    const char *caption;    /* raw prompt (the detector normalises it) */
    saa_gdino_filter filter;
    unsigned fixes;
} caption_job;

/* Model.text_guided_region_proposal + bbox_suppression for one caption; every box whose score passes the
 * box threshold becomes a region (kept or why dropped); kept boxes are appended to k. */
static int run_caption(saa_models *m, const caption_job *job, saa_result *r, int *region_cap, kept_boxes *k)
{
    saa_gdino_detections det;
    int rc = saa_gdino_detect(m->gdino, job->caption, NULL, &det);
    if (rc != SAA_OK) return rc;
    int32_t *ids = NULL;
    int n_ids = 0;
    float *logits = det.logits;
    gdino_suppression s;
    memset(&s, 0, sizeof s);
    const int nq = det.num_queries, T = det.num_tokens;
    /* tokenizer(caption): the ids the phrases are decoded from */
    if ((rc = saa_tokenize(m->tok, det.caption, strlen(det.caption), &ids, &n_ids)) != SAA_OK) goto done;
    if (job->fixes & SAA_FIX_BOXSCORE) {
        logits = malloc(sizeof *logits * ((size_t)nq * T + 1));
        if (!logits) {
            rc = saa_set_error(SAA_ENOMEM, "out of memory");
            goto done;
        }
        for (int q = 0; q < nq; q++)
            for (int t = 0; t < T; t++)
                logits[(size_t)q * T + t] =
                    t < n_ids && is_special_token(m->tok, ids[t]) ? 0.0f : det.logits[(size_t)q * T + t];
    }
    saa_gdino_filter f = job->filter;
    if (job->fixes & SAA_FIX_PHRASE) f.filtered_phrase = NULL; /* decided below, by whole words */
    if ((rc = gdino_bbox_suppression(logits, det.boxes, nq, T, ids, n_ids, m->tok, &f, &s)) != SAA_OK) goto done;
    int ci = 0;
    for (int q = 0; q < nq && rc == SAA_OK; q++) {
        int scored = s.box_score[q] > job->filter.box_threshold;
        if (!scored && !s.score_area_mask[q]) continue;
        saa_region *g = NULL;
        if ((rc = region_push(r, region_cap, &g)) != SAA_OK) break;
        g->pass = job->pass;
        g->prompt = job->prompt;
        g->score = (double)s.box_score[q];
        g->rescored = g->score;
        saa_boxes_to_pixels(det.boxes + 4 * q, 1, r->width, r->height, (job->fixes & SAA_FIX_CLIP) != 0, g->box);
        if (!s.score_area_mask[q]) {
            g->status = "dropped-area";
            continue;
        }
        const char *phrase = s.candidate_phrases[ci];
        int keep = (job->fixes & SAA_FIX_PHRASE)
                       ? !saa_phrase_filtered(phrase, job->filter.filtered_phrase, 1)
                       : s.phrase_keep_mask[ci];
        ci++;
        char num[64];
        gdino_python_float_repr(s.box_score[q], num, sizeof num);
        num[4] = 0; /* f"({str(logit.max().item())[:4]})" */
        snprintf(g->phrase, sizeof g->phrase, "%s(%s)", phrase, num);
        if (!keep) {
            g->status = "dropped-phrase";
            continue;
        }
        g->status = job->pass ? "not-top-k" : "object";
        rc = kept_push(k, det.boxes + 4 * q, (double)s.box_score[q], r->n_regions - 1);
    }
done:
    if (logits != det.logits) free(logits);
    free(ids);
    gdino_suppression_free(&s);
    saa_gdino_detections_free(&det);
    return rc;
}

/* ---------- SAM ---------- */

/* Masks of pixel boxes, [n, H, W]; prompts go to SAM in batches (each box is decoded independently, so this
 * equals the official single predict_torch call while bounding the full-resolution logits held at once). */
#define SAM_BATCH 16

static int sam_masks(saa_sam *sam, const float *xyxy, int n, int H, int W, uint8_t *masks)
{
    const int batch = SAM_BATCH;
    const int64_t P = (int64_t)H * W;
    for (int i = 0; i < n; i += batch) {
        int b = n - i < batch ? n - i : batch;
        saa_sam_prompt p = {.batch = b, .boxes = xyxy + 4 * i, .multimask_output = 0,
                            .coord_mode = SAA_SAM_COORDS_F32}; /* apply_boxes_torch */
        saa_sam_masks out;
        int rc = saa_sam_predict(sam, &p, &out);
        if (rc != SAA_OK) return rc;
        memcpy(masks + (int64_t)i * P, out.masks, (size_t)(b * P));
        saa_sam_masks_free(&out);
    }
    return SAA_OK;
}

/* ---------- saliency ---------- */

/* Model.visual_saliency_calculation. The multi-instance path crashes officially with fewer than two object
 * masks or a mask that is empty on the 256x256 feature grid (layer1 of the 1024x1024 input); here such masks are
 * left out and, with fewer than two left, the single-instance map is used instead (noted in r). */
static int saliency(saa_models *m, const saa_image *img, const uint8_t *obj_masks, int n_obj, int object_count,
                    saa_result *r, int *is_f32)
{
    const int W = img->w, H = img->h;
    const int64_t P = (int64_t)W * H;
    if (object_count == 1) {
        snprintf(r->saliency_mode, sizeof r->saliency_mode, "single-instance");
        return saa_wrn_saliency(m->wrn, img->data, W, H, obj_masks, n_obj, 1, r->saliency, is_f32);
    }
    const int grid = 1024 / 4;
    uint8_t *bin = malloc((size_t)P), *small = malloc((size_t)grid * grid), *usable = malloc((size_t)n_obj * P + 1);
    int n_usable = 0, rc = SAA_OK;
    if (!bin || !small || !usable) rc = saa_set_error(SAA_ENOMEM, "out of memory");
    for (int i = 0; i < n_obj && rc == SAA_OK; i++) {
        for (int64_t p = 0; p < P; p++) bin[p] = obj_masks[(int64_t)i * P + p] != 0;
        rc = saa_resize_cv_u8(bin, W, H, 1, small, grid, grid, SAA_CV_INTER_NEAREST);
        int any = 0;
        for (int64_t p = 0; rc == SAA_OK && p < (int64_t)grid * grid && !any; p++) any = small[p] != 0;
        if (any) memcpy(usable + (int64_t)n_usable++ * P, bin, (size_t)P);
    }
    if (rc == SAA_OK) {
        if (n_usable >= 2) {
            snprintf(r->saliency_mode, sizeof r->saliency_mode, "multi-instance (%d of %d object masks)", n_usable,
                     n_obj);
            rc = saa_wrn_saliency(m->wrn, img->data, W, H, usable, n_usable, object_count, r->saliency, is_f32);
        } else {
            snprintf(r->saliency_mode, sizeof r->saliency_mode,
                     "single-instance fallback (%d usable object masks, multi-instance needs 2)", n_usable);
            rc = saa_wrn_saliency(m->wrn, img->data, W, H, usable, n_usable, 1, r->saliency, is_f32);
        }
    }
    free(bin), free(small), free(usable);
    return rc;
}

/* ---------- forward ---------- */

int saa_segment(saa_models *m, const saa_category *c, const saa_options *o, const saa_image *rgb, saa_result *r)
{
    memset(r, 0, sizeof *r);
    if (!rgb || rgb->c != 3 || rgb->w <= 0 || rgb->h <= 0)
        return saa_set_error(SAA_EINVAL, "saa_segment: expected an 8-bit RGB image");
    if (!c->object_prompt || c->object_count <= 0 || c->top_k <= 0 || !(c->max_area_ratio > 0))
        return saa_set_error(SAA_EINVAL, "category '%s': needs an object prompt, object count, top-k and area ratio",
                             c->name ? c->name : "?");
    const double t_start = now_seconds();
    const int W = rgb->w, H = rgb->h;
    const int64_t P = (int64_t)W * H;
    const int os = o->out_size > 0 ? o->out_size : 256;
    r->width = W, r->height = H, r->out_size = os;
    int region_cap = 0, rc = SAA_OK;
    kept_boxes obj = {0}, def = {0};
    float *obj_xyxy = NULL, *def_xyxy = NULL;
    uint8_t *obj_masks = NULL, *def_masks = NULL, *top_masks = NULL;
    double *def_scores = NULL, *rescored = NULL;
    int *top = NULL;
    double *top_score = NULL;
    saa_image model_img = *rgb; /* SAM and the saliency backbone get cv2's BGR array officially */
    model_img.data = malloc((size_t)P * 3);
    r->map = malloc(sizeof *r->map * (size_t)os * os);
    r->map_full = malloc(sizeof *r->map_full * (size_t)P);
    r->saliency = malloc(sizeof *r->saliency * (size_t)P);
    if (!model_img.data || !r->map || !r->map_full || !r->saliency) {
        rc = saa_set_error(SAA_ENOMEM, "out of memory");
        goto done;
    }
    memcpy(model_img.data, rgb->data, (size_t)P * 3);
    if (!(o->fixes & SAA_FIX_RGB)) saa_image_swap_rb(&model_img);

    /* detector: backbone once, then one transformer run per caption */
    double t0 = now_seconds();
    if ((rc = saa_gdino_set_image(m->gdino, rgb)) != SAA_OK) goto done;
    caption_job job = {0, 0, c->object_prompt,
                       {o->box_threshold, o->text_threshold, (float)(1.0 / c->object_count), 0.0f, "PlaceHolder"},
                       o->fixes};
    if ((rc = run_caption(m, &job, r, &region_cap, &obj)) != SAA_OK) goto done;
    /* max_box_area: largest kept object box (float32 w*h), 1 when none survived */
    float max_box_area = 0;
    for (int i = 0; i < obj.n; i++) {
        float a = obj.cxcywh[4 * i + 2] * obj.cxcywh[4 * i + 3];
        if (a > max_box_area) max_box_area = a;
    }
    float defect_max_area = obj.n ? max_box_area * (float)c->max_area_ratio : (float)(1.0 * c->max_area_ratio);
    for (int i = 0; i < c->n_prompts; i++) {
        caption_job dj = {1, i, c->defect_prompts[i],
                          {o->box_threshold, o->text_threshold, defect_max_area, 0.0f, c->filter_phrases[i]}, o->fixes};
        if ((rc = run_caption(m, &dj, r, &region_cap, &def)) != SAA_OK) goto done;
    }
    r->seconds[0] = now_seconds() - t0;

    /* SAM: image embedding once, shared by both passes */
    t0 = now_seconds();
    if ((rc = saa_sam_set_image(m->sam, &model_img)) != SAA_OK) goto done;
    r->seconds[1] = now_seconds() - t0;
    t0 = now_seconds();
    int n_obj = obj.n ? obj.n : 1, n_def = def.n ? def.n : 1; /* no box: one empty mask, score 0 (official) */
    const int K = c->top_k;
    obj_xyxy = malloc(sizeof *obj_xyxy * 4 * (size_t)n_obj);
    def_xyxy = malloc(sizeof *def_xyxy * 4 * (size_t)n_def);
    /* single-instance saliency ignores the object masks (official): decode them batch by batch for their areas
     * only; multi-instance keeps them all */
    const int keep_obj_masks = c->object_count != 1;
    obj_masks = calloc(keep_obj_masks ? (size_t)n_obj : 1, (size_t)P);
    def_masks = calloc((size_t)SAM_BATCH, (size_t)P); /* one batch of defect masks at a time */
    top_masks = calloc((size_t)K, (size_t)P);          /* the running top-k masks */
    def_scores = calloc((size_t)n_def, sizeof *def_scores);
    rescored = malloc(sizeof *rescored * (size_t)n_def);
    top = malloc(sizeof *top * (size_t)(2 * K));
    top_score = malloc(sizeof *top_score * (size_t)K);
    if (!obj_xyxy || !def_xyxy || !obj_masks || !def_masks || !top_masks || !def_scores || !rescored || !top || !top_score) {
        rc = saa_set_error(SAA_ENOMEM, "out of memory");
        goto done;
    }
    const int clip = (o->fixes & SAA_FIX_CLIP) != 0;
    saa_boxes_to_pixels(obj.cxcywh, obj.n, W, H, clip, obj_xyxy);
    saa_boxes_to_pixels(def.cxcywh, def.n, W, H, clip, def_xyxy);
    for (int i0 = 0; i0 < obj.n; i0 += SAM_BATCH) {
        const int b = obj.n - i0 < SAM_BATCH ? obj.n - i0 : SAM_BATCH;
        uint8_t *dst = keep_obj_masks ? obj_masks + (int64_t)i0 * P : def_masks;
        if ((rc = sam_masks(m->sam, obj_xyxy + 4 * i0, b, H, W, dst)) != SAA_OK) goto done;
        for (int j = 0; j < b; j++) {
            int64_t a = 0;
            for (int64_t p = 0; p < P; p++) a += dst[(int64_t)j * P + p] != 0;
            r->regions[obj.region[i0 + j]].mask_area = a;
            memcpy(r->regions[obj.region[i0 + j]].box, obj_xyxy + 4 * (i0 + j), sizeof(float) * 4);
        }
    }
    for (int i = 0; i < def.n; i++) def_scores[i] = def.scores[i];
    r->seconds[2] = now_seconds() - t0;

    /* saliency prompt (needs the object masks only) */
    t0 = now_seconds();
    int is_f32 = 0;
    if ((rc = saliency(m, &model_img, obj_masks, keep_obj_masks ? n_obj : 1, c->object_count, r, &is_f32)) != SAA_OK)
        goto done;
    r->seconds[3] = now_seconds() - t0;

    /* defect masks batch by batch: rescore each and keep only the k best masks (argsort()[-k:] = the k largest
     * (score, index) pairs), so memory stays O(k) masks however many boxes survive */
    saa_topk_state tk = {K, 0, top_score, top}; /* slot j holds box tk.index[j], its mask in top_masks[j] */
    for (int i0 = 0; i0 < n_def; i0 += SAM_BATCH) {
        const int b = n_def - i0 < SAM_BATCH ? n_def - i0 : SAM_BATCH;
        double ts = now_seconds();
        if (def.n) {
            if ((rc = sam_masks(m->sam, def_xyxy + 4 * i0, b, H, W, def_masks)) != SAA_OK) goto done;
        } else {
            memset(def_masks, 0, (size_t)P);
        }
        r->seconds[2] += now_seconds() - ts;
        ts = now_seconds();
        saa_rescore(def_masks, b, P, def_scores + i0, r->saliency, is_f32, rescored + i0);
        for (int j = 0; j < b; j++) {
            const int idx = i0 + j;
            const uint8_t *mk = def_masks + (int64_t)j * P;
            if (def.n) {
                saa_region *g = &r->regions[def.region[idx]];
                int64_t a = 0;
                for (int64_t p = 0; p < P; p++) a += mk[p] != 0;
                g->mask_area = a;
                g->rescored = rescored[idx];
                memcpy(g->box, def_xyxy + 4 * idx, sizeof(float) * 4);
            }
            int slot = saa_topk_offer(&tk, rescored[idx], idx);
            if (slot >= 0) memcpy(top_masks + (int64_t)slot * P, mk, (size_t)P);
        }
        r->seconds[4] += now_seconds() - ts;
    }

    /* confidence prompt: fuse in ascending score order (the official summation order), output resize */
    t0 = now_seconds();
    int *order = top + K;
    saa_topk_order(&tk, order);
    saa_fuse_masks(top_masks, P, order, tk.n, tk.score, (o->fixes & SAA_FIX_FUSION) != 0, r->map_full);
    if ((rc = saa_resize_cv_f64(r->map_full, W, H, 1, r->map, os, os, SAA_CV_INTER_LINEAR)) != SAA_OK) goto done;
    r->seconds[4] += now_seconds() - t0;
    for (int t = 0; t < tk.n && def.n; t++) r->regions[def.region[tk.index[t]]].status = "fused";
    r->seconds[5] = now_seconds() - t_start;
done:
    kept_free(&obj), kept_free(&def);
    free(obj_xyxy), free(def_xyxy), free(obj_masks), free(def_masks), free(top_masks);
    free(def_scores), free(rescored), free(top), free(top_score);
    free(model_img.data);
    if (rc != SAA_OK) saa_result_free(r);
    return rc;
}
