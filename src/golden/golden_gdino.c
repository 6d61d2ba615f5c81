/* check-golden, kind "gdino": Grounding DINO + SAA+ bbox_suppression (see the folder's README).
 * The text stage (tokenizer, masks, BERT fed stored text.*) and the image stage (resize, normalisation,
 * Swin fed image.tensor) are checked by their own files. This file runs the model end to end from
 * image.png and the captions (own upstream results) and checks input projections, position embeddings,
 * the encoder, query selection (near-tie swaps allowed below topk_swap_gap), the decoder fed the stored
 * topk_index, the heads; the proposals sub-test and bbox_suppression fed their stored inputs; and
 * expected_phrases.json. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "models/gdino_model.h"
#include "saa/json.h"
#include "saa/tokenizer.h"

typedef struct {
    golden *g;
    saa_gdino *model;
    saa_tokenizer *tok;
    gdino_image image;
} gd_ctx;

static int check_f32(golden *g, const char *name, const float *x, int ndim, const int64_t *shape)
{
    return golden_check_f32(g, name, x, ndim, shape);
}

static int check_typed(golden *g, const char *name, saa_dtype dt, void *x, int ndim, const int64_t *shape)
{
    saa_tensor *t = saa_tensor_wrap(dt, ndim, shape, x);
    if (!t) return golden_report(g, name, 0, "%s", saa_last_error());
    int r = golden_check(g, name, t);
    saa_tensor_free(t);
    return r;
}

/* gen_encoder_output_proposals on the stored synthetic inputs. */
static void proposals_subtest(golden *g)
{
    const saa_tensor *mem = golden_ref(g, "proposals.memory");
    const saa_tensor *mask = golden_ref(g, "proposals.memory_padding_mask");
    const saa_tensor *shapes = golden_ref(g, "proposals.spatial_shapes");
    if (!mem || !mask || !shapes || mem->ndim != 3 || shapes->ndim != 2 || shapes->shape[1] != 2 ||
        shapes->shape[0] > MSDA_MAX_LEVELS) {
        golden_report(g, "proposals.output_memory", 0, "missing or malformed proposals.* inputs");
        golden_report(g, "proposals.output_proposals", 0, "missing or malformed proposals.* inputs");
        return;
    }
    golden_mark_input(g, "proposals.memory");
    golden_mark_input(g, "proposals.memory_padding_mask");
    golden_mark_input(g, "proposals.spatial_shapes");
    msda_levels lv = {0};
    lv.n_levels = (int)shapes->shape[0];
    for (int l = 0; l < lv.n_levels; l++) {
        lv.H[l] = (int64_t)saa_tensor_get(shapes, 2 * l);
        lv.W[l] = (int64_t)saa_tensor_get(shapes, 2 * l + 1);
        lv.start[l] = lv.n_tokens;
        lv.n_tokens += lv.H[l] * lv.W[l];
    }
    const int64_t N = mem->shape[1], dim = mem->shape[2];
    int padded = 0;
    for (int64_t i = 0; i < saa_tensor_numel(mask); i++) padded |= saa_tensor_get(mask, i) != 0;
    const float *m = golden_ref_f32(g, "proposals.memory", N * dim);
    float *om = malloc((size_t)(N * dim) * sizeof(float)), *props = malloc((size_t)(N * 4) * sizeof(float));
    if (!m || !om || !props || N != lv.n_tokens || padded) {
        const char *why = padded ? "padding masks are not supported (SAA+ runs one unpadded image)"
                                 : "inconsistent sizes or out of memory";
        golden_report(g, "proposals.output_memory", 0, "%s", why);
        golden_report(g, "proposals.output_proposals", 0, "%s", why);
    } else {
        gdino_encoder_output_proposals(m, dim, &lv, om, props);
        check_f32(g, "proposals.output_memory", om, 3, (int64_t[]){1, N, dim});
        check_f32(g, "proposals.output_proposals", props, 3, (int64_t[]){1, N, 4});
    }
    free(om);
    free(props);
}

/* topk_index: exact, except adjacent swaps where the stored gap is below topk_swap_gap. */
static void check_topk_index(golden *g, const char *name, const char *logits_name, const int64_t *got, int64_t nq)
{
    const saa_tensor *ref = golden_ref(g, name);
    const float *rl = golden_ref_f32(g, logits_name, nq);
    if (!ref || !rl || saa_tensor_numel(ref) != nq) {
        golden_report(g, name, 0, "missing or mis-sized reference");
        return;
    }
    const double gap = golden_cfg_num(g, "topk_swap_gap", 0.0);
    int64_t bad = 0, swaps = 0;
    for (int64_t r = 0; r < nq; r++) {
        const int64_t want = (int64_t)saa_tensor_get(ref, r);
        if (got[r] == want) continue;
        if (r + 1 < nq && got[r] == (int64_t)saa_tensor_get(ref, r + 1) && got[r + 1] == want &&
            (double)rl[r] - (double)rl[r + 1] < gap) {
            swaps++;
            r++;
            continue;
        }
        bad++;
    }
    golden_report(g, name, bad == 0, "mismatches=%lld, adjacent near-tie swaps accepted=%lld (gap < %g)",
                  (long long)bad, (long long)swaps, gap);
}

static int str_list_equal(const cJSON *arr, char **got, int n, char *why, size_t whyn)
{
    if (!cJSON_IsArray(arr)) {
        snprintf(why, whyn, "not a list");
        return 0;
    }
    if (cJSON_GetArraySize(arr) != n) {
        snprintf(why, whyn, "%d entries, expected %d", n, cJSON_GetArraySize(arr));
        return 0;
    }
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(arr, i);
        if (!cJSON_IsString(e) || strcmp(e->valuestring, got[i])) {
            snprintf(why, whyn, "entry %d: got \"%s\", expected \"%s\"", i, got[i],
                     cJSON_IsString(e) ? e->valuestring : "(not a string)");
            return 0;
        }
    }
    snprintf(why, whyn, "%d strings equal", n);
    return 1;
}

/* bbox_suppression fed the stored sigmoid logits and boxes; returns the result for the phrase file. */
static int check_suppression(gd_ctx *c, int k, const char *caption, gdino_suppression *s)
{
    golden *g = c->g;
    char name[128], lname[128], bname[128];
    snprintf(lname, sizeof lname, "cap%d.out.pred_logits_sigmoid", k);
    snprintf(bname, sizeof bname, "cap%d.out.pred_boxes", k);
    const saa_tensor *lt = golden_ref(g, lname);
    if (!lt || lt->ndim != 3) return saa_set_error(SAA_EFORMAT, "%s: missing %s", g->dir, lname);
    const int nq = (int)lt->shape[1], T = (int)lt->shape[2];
    const float *logits = golden_ref_f32(g, lname, (int64_t)nq * T);
    const float *boxes = golden_ref_f32(g, bname, (int64_t)nq * 4);
    cJSON *settings = cJSON_GetArrayItem(golden_cfg(g, "bbox_suppression"), k);
    if (!logits || !boxes || !settings) return saa_set_error(SAA_EFORMAT, "%s: missing bbox_suppression inputs", g->dir);
    static const char *keys[4] = {"box_threshold", "text_threshold", "object_max_area", "object_min_area"};
    float v[4];
    for (int i = 0; i < 4; i++) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(settings, keys[i]);
        if (!cJSON_IsNumber(e))
            return saa_set_error(SAA_EFORMAT, "%s/config.json: bbox_suppression[%d].%s must be a number", g->dir, k,
                                 keys[i]);
        v[i] = (float)e->valuedouble; /* torch compares the float32 tensors with the float32 of the threshold */
    }
    const cJSON *fp = cJSON_GetObjectItemCaseSensitive(settings, "filtered_phrase");
    if (!cJSON_IsString(fp))
        return saa_set_error(SAA_EFORMAT, "%s/config.json: bbox_suppression[%d].filtered_phrase must be a string",
                             g->dir, k);
    saa_gdino_filter f = {v[0], v[1], v[2], v[3], fp->valuestring};
    int32_t *ids = NULL;
    int nids = 0;
    int rc = saa_tokenize(c->tok, caption, strlen(caption), &ids, &nids);
    if (rc != SAA_OK) return rc;
    rc = gdino_bbox_suppression(logits, boxes, nq, T, ids, nids, c->tok, &f, s);
    free(ids);
    if (rc != SAA_OK) return rc;
    snprintf(name, sizeof name, "cap%d.bbox.box_score", k);
    check_f32(g, name, s->box_score, 1, (int64_t[]){nq});
    snprintf(name, sizeof name, "cap%d.bbox.area", k);
    check_f32(g, name, s->area, 1, (int64_t[]){nq});
    snprintf(name, sizeof name, "cap%d.bbox.score_area_mask", k);
    check_typed(g, name, SAA_BOOL, s->score_area_mask, 1, (int64_t[]){nq});
    snprintf(name, sizeof name, "cap%d.bbox.phrase_keep_mask", k);
    check_typed(g, name, SAA_BOOL, s->phrase_keep_mask, 1, (int64_t[]){s->n_candidates});
    snprintf(name, sizeof name, "cap%d.bbox.kept_boxes", k);
    check_f32(g, name, s->kept_boxes, 2, (int64_t[]){s->n_kept, 4});
    snprintf(name, sizeof name, "cap%d.bbox.kept_scores", k);
    check_f32(g, name, s->kept_scores, 1, (int64_t[]){s->n_kept});
    return SAA_OK;
}

static void check_phrase_file(golden *g, gdino_suppression *sup, int ncap)
{
    cJSON *files = golden_cfg(g, "expected_files"), *it;
    cJSON_ArrayForEach(it, files)
    {
        if (!cJSON_IsString(it)) continue;
        char *path = golden_path(g, it->valuestring);
        cJSON *root = path ? saa_json_load(path) : NULL;
        free(path);
        char name[160], why[512];
        if (!root || !cJSON_IsArray(root)) {
            golden_report(g, it->valuestring, 0, "cannot read: %s", saa_last_error());
            cJSON_Delete(root);
            continue;
        }
        golden_report(g, it->valuestring, cJSON_GetArraySize(root) == ncap, "%d caption entries, %d captions",
                      cJSON_GetArraySize(root), ncap);
        cJSON *e;
        cJSON_ArrayForEach(e, root)
        {
            const cJSON *ci = cJSON_GetObjectItemCaseSensitive(e, "caption_index");
            const int k = cJSON_IsNumber(ci) ? ci->valueint : -1;
            snprintf(name, sizeof name, "%s[%d].caption_index", it->valuestring, k);
            if (k < 0 || k >= ncap) {
                golden_report(g, name, 0, "no such caption");
                continue;
            }
            gdino_suppression *s = &sup[k];
            static const char *fields[3] = {"candidate_phrases", "kept_phrases", "kept_phrases_with_score"};
            char **lists[3] = {s->candidate_phrases, s->kept_phrases, s->kept_phrases_with_score};
            const int counts[3] = {s->n_candidates, s->n_kept, s->n_kept};
            for (int f = 0; f < 3; f++) {
                snprintf(name, sizeof name, "%s[%d].%s", it->valuestring, k, fields[f]);
                int pass = str_list_equal(cJSON_GetObjectItemCaseSensitive(e, fields[f]), lists[f], counts[f], why,
                                          sizeof why);
                golden_report(g, name, pass, "%s", why);
            }
        }
        cJSON_Delete(root);
    }
}

/* Caption k end to end from its text: own tokenizer, masks and BERT, then everything downstream; the
 * decoder is fed the stored topk_index (near-ties, see the README). */
static int run_caption(gd_ctx *c, int k, const char *caption)
{
    golden *g = c->g;
    const saa_gdino_config *cfg = &c->model->cfg;
    char name[160];
    saa_text_input in = {0};
    float *bert = NULL;
    int rc = gdino_encode_text(c->model, caption, &in, &bert);
    if (rc != SAA_OK) return rc;
    const int64_t T = in.len, d = cfg->hidden_dim, N = c->image.lv.n_tokens, nq = cfg->num_queries;
    snprintf(name, sizeof name, "cap%d.query_select.topk_index", k);
    const saa_tensor *stored_topk = golden_ref(g, name);
    int64_t *pos_ids = malloc((size_t)T * sizeof(int64_t)), *forced = malloc((size_t)nq * sizeof(int64_t));
    if (!stored_topk || saa_tensor_numel(stored_topk) != nq || !pos_ids || !forced) {
        free(pos_ids), free(forced), free(bert);
        saa_text_input_free(&in);
        return saa_set_error(SAA_EFORMAT, "%s: caption %d: stored topk_index missing or mis-sized (%s)", g->dir, k,
                             saa_last_error());
    }
    for (int64_t t = 0; t < T; t++) pos_ids[t] = in.position_ids[t];
    for (int64_t q = 0; q < nq; q++) forced[q] = (int64_t)saa_tensor_get(stored_topk, q);
    gdino_text text = {(int)T, bert, in.self_attention_mask, pos_ids};
    gdino_trace tr;
    gdino_raw raw;
    rc = gdino_run(c->model, &c->image, &text, forced, &tr, &raw);
    free(bert);
    free(pos_ids);
    free(forced);
    saa_text_input_free(&in);
    if (rc != SAA_OK) return rc;

#define CHECK(suffix, data, ...)                                                                                 \
    do {                                                                                                         \
        const int64_t shp_[] = {__VA_ARGS__};                                                                    \
        snprintf(name, sizeof name, "cap%d.%s", k, suffix);                                                      \
        check_f32(g, name, data, (int)(sizeof shp_ / sizeof shp_[0]), shp_);                                     \
    } while (0)
    CHECK("feat_map", tr.feat_map, 1, T, d);
    for (int i = 0; i < tr.n_enc; i++) {
        char s[96];
        snprintf(s, sizeof s, "encoder.layer%d.fusion_image", i);
        CHECK(s, tr.fusion_image[i], 1, N, d);
        snprintf(s, sizeof s, "encoder.layer%d.fusion_text", i);
        CHECK(s, tr.fusion_text[i], 1, T, d);
    }
    CHECK("encoder.memory", tr.memory, 1, N, d);
    CHECK("encoder.memory_text", tr.memory_text, 1, T, d);
    CHECK("query_select.output_memory", tr.output_memory, 1, N, d);
    CHECK("query_select.output_proposals", tr.output_proposals, 1, N, 4);
    CHECK("query_select.enc_logits", tr.enc_logits, 1, N, T);
    CHECK("query_select.max_logits", tr.max_logits, 1, N);
    CHECK("query_select.topk_logits", tr.topk_logits, 1, nq);
    char tn[96], ln[96];
    snprintf(tn, sizeof tn, "cap%d.query_select.topk_index", k);
    snprintf(ln, sizeof ln, "cap%d.query_select.topk_logits", k);
    check_topk_index(g, tn, ln, tr.topk_index, nq);
    CHECK("query_select.refpoint_unsig", tr.refpoint_unsig, 1, nq, 4);
    for (int i = 0; i < tr.n_dec; i++) {
        char s[96];
        snprintf(s, sizeof s, "decoder.layer%d.query_pos", i);
        CHECK(s, tr.query_pos[i], 1, nq, d);
        snprintf(s, sizeof s, "decoder.layer%d.out", i);
        CHECK(s, tr.dec_out[i], 1, nq, d);
        snprintf(s, sizeof s, "decoder.layer%d.hs", i);
        CHECK(s, tr.dec_hs[i], 1, nq, d);
    }
    for (int i = 0; i <= tr.n_dec; i++) {
        char s[96];
        snprintf(s, sizeof s, "decoder.ref%d", i);
        CHECK(s, tr.refs[i], 1, nq, 4);
    }
    CHECK("out.pred_logits", raw.pred_logits, 1, nq, T);
    for (int64_t i = 0; i < nq * T; i++) raw.pred_logits[i] = 1.0f / (1.0f + expf(-raw.pred_logits[i]));
    CHECK("out.pred_logits_sigmoid", raw.pred_logits, 1, nq, T);
    CHECK("out.pred_boxes", raw.pred_boxes, 1, nq, 4);
#undef CHECK
    gdino_trace_free(&tr);
    gdino_raw_free(&raw);
    return SAA_OK;
}

/* Image tokens from image.png: own preprocessing, Swin, input projections. */
static int image_tokens(gd_ctx *c)
{
    golden *g = c->g;
    char *path = golden_path(g, golden_cfg_str(g, "inputs.image"));
    if (!path) return saa_set_error(SAA_EFORMAT, "%s: config.json has no inputs.image", g->dir);
    saa_image img = {0};
    int rc = saa_image_load(path, &img);
    free(path);
    if (rc != SAA_OK) return rc;
    rc = gdino_backbone(c->model, &img, &c->image);
    saa_image_free(&img);
    return rc;
}

int golden_kind_gdino(golden *g)
{
    int rc = golden_gdino_text_stage(g);
    if (rc != SAA_OK) return rc;
    if ((rc = golden_gdino_image_stage(g)) != SAA_OK) return rc;

    gd_ctx c = {0};
    c.g = g;
    saa_gdino_config cfg;
    if ((rc = saa_gdino_config_from_json(g->config, &cfg)) != SAA_OK) return rc;
    char *wpath = golden_path(g, golden_cfg_str(g, "weights") ? golden_cfg_str(g, "weights") : "weights.pth");
    char *vpath = golden_path(g, golden_cfg_str(g, "vocab"));
    saa_weights *w = NULL;
    rc = wpath ? saa_weights_open(wpath, &w) : SAA_ENOMEM;
    if (rc == SAA_OK)
        rc = vpath ? saa_gdino_load_weights(w, vpath, &cfg, &c.model) : saa_set_error(SAA_EFORMAT, "%s: no vocab", g->dir);
    if (rc == SAA_OK) c.tok = c.model->tok;
    free(wpath);
    free(vpath);
    if (rc != SAA_OK) goto done;

    proposals_subtest(g);

    if ((rc = image_tokens(&c)) != SAA_OK) goto done;
    const msda_levels *lv = &c.image.lv;
    int64_t shapes[2 * MSDA_MAX_LEVELS];
    for (int l = 0; l < lv->n_levels; l++) shapes[2 * l] = lv->H[l], shapes[2 * l + 1] = lv->W[l];
    check_typed(g, "meta.spatial_shapes", SAA_I64, shapes, 2, (int64_t[]){lv->n_levels, 2});
    const int64_t N = lv->n_tokens, d = cfg.hidden_dim;
    check_f32(g, "pos.flat", c.image.pos, 3, (int64_t[]){1, N, d});
    check_f32(g, "input_proj.flat", c.image.src, 3, (int64_t[]){1, N, d});

    cJSON *caps = golden_cfg(g, "inputs.captions");
    const int ncap = cJSON_GetArraySize(caps);
    gdino_suppression *sup = calloc((size_t)(ncap > 0 ? ncap : 1), sizeof *sup);
    if (!sup) {
        rc = saa_set_error(SAA_ENOMEM, "out of memory");
        goto done;
    }
    for (int k = 0; k < ncap && rc == SAA_OK; k++) {
        const cJSON *cap = cJSON_GetArrayItem(caps, k);
        char *norm = NULL;
        size_t nlen = 0;
        if (!cJSON_IsString(cap)) {
            rc = saa_set_error(SAA_EFORMAT, "%s: inputs.captions[%d] is not a string", g->dir, k);
            break;
        }
        if ((rc = saa_caption_normalize(cap->valuestring, strlen(cap->valuestring), &norm, &nlen)) != SAA_OK) break;
        rc = run_caption(&c, k, norm);
        if (rc == SAA_OK) rc = check_suppression(&c, k, norm, &sup[k]);
        free(norm);
    }
    if (rc == SAA_OK) check_phrase_file(g, sup, ncap);
    for (int k = 0; k < ncap; k++) gdino_suppression_free(&sup[k]);
    free(sup);
done:
    gdino_image_free(&c.image);
    saa_gdino_free(c.model);
    return rc;
}
