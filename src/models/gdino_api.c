/* Grounding DINO public API: loading (Swin backbone, BERT, tokenizer, transformer), set_image (backbone +
 * input projections once per image) and detect (one caption: text encoder, transformer, SAA+
 * bbox_suppression). Mirrors SAA/model.py Model.get_grounding_output / bbox_suppression and the
 * denormalisation in ensemble_text_guided_mask_proposal. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/bert.h"
#include "models/gdino_model.h"
#include "models/swin.h"
#include "saa/tokenizer.h"

static void swin_config_of(const saa_gdino_config *c, swin_config *s)
{
    memset(s, 0, sizeof *s);
    s->patch_size = c->swin_patch_size;
    s->in_chans = 3;
    s->embed_dim = c->swin_embed_dim;
    s->num_stages = SAA_GDINO_MAX_STAGES;
    for (int i = 0; i < SAA_GDINO_MAX_STAGES; i++) {
        s->depths[i] = c->swin_depths[i];
        s->num_heads[i] = c->swin_heads[i];
    }
    s->window_size = c->swin_window;
    s->mlp_ratio = c->swin_mlp_ratio;
    s->num_out = c->swin_num_out;
    for (int i = 0; i < c->swin_num_out; i++) s->out_indices[i] = c->swin_out_indices[i];
    s->patch_norm = 1;
    s->ln_eps = c->swin_ln_eps;
    s->pretrain_img_size = c->swin_window == 12 ? 384 : 224;
}

int saa_gdino_load_weights(saa_weights *w, const char *vocab_path, const saa_gdino_config *cfg, saa_gdino **out)
{
    saa_gdino *g = NULL;
    int rc = gdino_load_transformer_only(w, cfg, &g); /* takes w */
    if (rc != SAA_OK) return rc;
    swin_config sc;
    swin_config_of(cfg, &sc);
    if ((rc = swin_load(w, "backbone.0.", &sc, &g->swin)) != SAA_OK) goto fail;
    if ((rc = saa_bert_load(w, "bert.", cfg->bert_heads, &g->bert)) != SAA_OK) goto fail;
    if (saa_bert_hidden(g->bert) != cfg->bert_hidden) {
        rc = saa_set_error(SAA_ESHAPE, "%s: BERT hidden size %d, config says %d", saa_weights_path(w),
                           saa_bert_hidden(g->bert), cfg->bert_hidden);
        goto fail;
    }
    if ((rc = saa_tokenizer_load(vocab_path, &g->tok)) != SAA_OK) goto fail;
    *out = g;
    return SAA_OK;
fail:
    saa_gdino_free(g);
    return rc;
}

int saa_gdino_load(const char *weights_path, const char *vocab_path, const saa_gdino_config *cfg, saa_gdino **out)
{
    *out = NULL;
    saa_weights *w = NULL;
    int rc = saa_weights_open(weights_path, &w);
    if (rc != SAA_OK) return rc;
    return saa_gdino_load_weights(w, vocab_path, cfg, out);
}

void saa_gdino_free(saa_gdino *g)
{
    if (!g) return;
    gdino_image_free(&g->image);
    swin_free(g->swin);
    saa_bert_free(g->bert);
    saa_tokenizer_free(g->tok);
    saa_weights_close(g->weights);
    free(g);
}

int gdino_backbone(saa_gdino *g, const saa_image *rgb, gdino_image *out)
{
    const saa_gdino_config *c = &g->cfg;
    float *x = NULL;
    int oh = 0, ow = 0;
    int rc = gdino_image_preprocess(rgb, c->resize_size, c->resize_max_size, NULL, &x, &oh, &ow);
    if (rc != SAA_OK) return rc;
    swin_features f;
    memset(&f, 0, sizeof f);
    rc = swin_forward(g->swin, x, oh, ow, &f);
    free(x);
    if (rc != SAA_OK) return rc;
    rc = gdino_image_from_features(g, f.num_levels, (const float *const *)f.data, f.C, f.H, f.W, out);
    swin_features_free(&f);
    if (rc == SAA_OK) {
        out->orig_w = rgb->w;
        out->orig_h = rgb->h;
    }
    return rc;
}

int saa_gdino_set_image(saa_gdino *g, const saa_image *rgb)
{
    gdino_image_free(&g->image);
    g->has_image = 0;
    int rc = gdino_backbone(g, rgb, &g->image);
    if (rc == SAA_OK) g->has_image = 1;
    return rc;
}

int gdino_encode_text(const saa_gdino *g, const char *caption, saa_text_input *in, float **hidden)
{
    *hidden = NULL;
    int rc = saa_text_encode(g->tok, caption, strlen(caption), g->cfg.max_text_len, in);
    if (rc != SAA_OK) return rc;
    *hidden = malloc((size_t)in->len * (size_t)g->cfg.bert_hidden * sizeof(float) + 1);
    if (!*hidden) {
        saa_text_input_free(in);
        return saa_set_error(SAA_ENOMEM, "gdino: out of memory");
    }
    rc = saa_bert_forward(g->bert, in->ids, in->position_ids, in->self_attention_mask, in->len, *hidden);
    if (rc != SAA_OK) {
        free(*hidden);
        *hidden = NULL;
        saa_text_input_free(in);
    }
    return rc;
}

void saa_gdino_detections_free(saa_gdino_detections *d)
{
    if (!d) return;
    free(d->logits);
    free(d->boxes);
    free(d->caption);
    free(d->kept_query);
    free(d->kept_boxes);
    free(d->kept_xyxy);
    free(d->kept_scores);
    for (int i = 0; i < d->num_kept; i++) free(d->kept_phrases ? d->kept_phrases[i] : NULL);
    free(d->kept_phrases);
    memset(d, 0, sizeof *d);
}

int saa_gdino_detect(saa_gdino *g, const char *caption, const saa_gdino_filter *filter, saa_gdino_detections *out)
{
    memset(out, 0, sizeof *out);
    if (!g->has_image) return saa_set_error(SAA_EINVAL, "gdino: saa_gdino_set_image must be called before detect");
    size_t len = 0;
    int rc = saa_caption_normalize(caption, strlen(caption), &out->caption, &len);
    if (rc != SAA_OK) return rc;
    saa_text_input in;
    memset(&in, 0, sizeof in);
    float *hidden = NULL;
    int64_t *pos = NULL;
    gdino_raw raw;
    memset(&raw, 0, sizeof raw);
    gdino_suppression sup;
    memset(&sup, 0, sizeof sup);
    if ((rc = gdino_encode_text(g, out->caption, &in, &hidden)) != SAA_OK) goto done;
    if (!(pos = malloc((size_t)in.len * sizeof(int64_t) + 1))) goto oom;
    for (int t = 0; t < in.len; t++) pos[t] = in.position_ids[t];
    gdino_text text = {in.len, hidden, in.self_attention_mask, pos};
    if ((rc = gdino_run(g, &g->image, &text, NULL, NULL, &raw)) != SAA_OK) goto done;
    const int nq = raw.nq, T = raw.T;
    /* outputs["pred_logits"].sigmoid()[0] */
    for (int64_t i = 0; i < (int64_t)nq * T; i++) raw.pred_logits[i] = 1.0f / (1.0f + expf(-raw.pred_logits[i]));
    out->num_queries = nq;
    out->num_tokens = T;
    out->logits = raw.pred_logits;
    out->boxes = raw.pred_boxes;
    raw.pred_logits = raw.pred_boxes = NULL;
    if (filter) {
        if ((rc = gdino_bbox_suppression(out->logits, out->boxes, nq, T, in.ids_full, in.len_full, g->tok, filter,
                                         &sup)) != SAA_OK)
            goto done;
        const int k = sup.n_kept;
        out->kept_query = malloc((size_t)k * sizeof(int) + 1);
        out->kept_boxes = malloc((size_t)k * 4 * sizeof(float) + 1);
        out->kept_xyxy = malloc((size_t)k * 4 * sizeof(float) + 1);
        out->kept_scores = malloc((size_t)k * sizeof(float) + 1);
        out->kept_phrases = calloc((size_t)k + 1, sizeof(char *));
        if (!out->kept_query || !out->kept_boxes || !out->kept_xyxy || !out->kept_scores || !out->kept_phrases)
            goto oom;
        out->num_kept = k;
        const float W = (float)g->image.orig_w, H = (float)g->image.orig_h;
        for (int i = 0; i < k; i++) {
            out->kept_query[i] = sup.kept_query[i];
            out->kept_scores[i] = sup.kept_scores[i];
            out->kept_phrases[i] = sup.kept_phrases_with_score[i];
            sup.kept_phrases_with_score[i] = NULL;
            const float *b = sup.kept_boxes + 4 * i;
            memcpy(out->kept_boxes + 4 * i, b, 4 * sizeof(float));
            /* box * [W, H, W, H]; xy -= wh / 2; wh += xy */
            float *o = out->kept_xyxy + 4 * i;
            o[0] = b[0] * W, o[1] = b[1] * H, o[2] = b[2] * W, o[3] = b[3] * H;
            o[0] -= o[2] / 2.0f, o[1] -= o[3] / 2.0f;
            o[2] += o[0], o[3] += o[1];
        }
    }
    goto done;
oom:
    rc = saa_set_error(SAA_ENOMEM, "gdino: out of memory");
done:
    free(hidden);
    free(pos);
    saa_text_input_free(&in);
    gdino_raw_free(&raw);
    gdino_suppression_free(&sup);
    if (rc != SAA_OK) saa_gdino_detections_free(out);
    return rc;
}
