/* check-golden, kind "gdino": the text stage. Per caption K of config inputs.captions: SAA+
 * normalisation (compared with inputs.normalized_captions), tokenizer + sub-sentence masks
 * (capK.text.*, exact), and BERT fed the STORED capK.text.* tensors (capK.bert.last_hidden_state).
 * capK.feat_map and everything after it are checked by golden_kind_gdino. */
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "golden_text.h"
#include "models/bert.h"
#include "saa/tokenizer.h"

/* A stored integer tensor with `n` elements as int32 (malloc'd), or NULL. */
static int32_t *stored_ints(golden *g, const char *name, int64_t n)
{
    const saa_tensor *t = golden_ref(g, name);
    if (!t || saa_tensor_numel(t) != n) return NULL;
    int32_t *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    if (v)
        for (int64_t i = 0; i < n; i++) v[i] = (int32_t)saa_tensor_get(t, i);
    return v;
}

/* BERT on the stored inputs of caption K; reports capK.bert.last_hidden_state. */
static void check_bert(golden *g, const saa_bert *bert, int k, int T)
{
    char name[128], ids_name[64], pos_name[64], mask_name[64];
    snprintf(name, sizeof name, "cap%d.bert.last_hidden_state", k);
    snprintf(ids_name, sizeof ids_name, "cap%d.text.input_ids", k);
    snprintf(pos_name, sizeof pos_name, "cap%d.text.position_ids", k);
    snprintf(mask_name, sizeof mask_name, "cap%d.text.self_attention_mask", k);
    const saa_tensor *st = golden_ref(g, ids_name);
    if (st && st->ndim == 2) T = (int)st->shape[1]; /* the stored length decides what is fed */
    int32_t *ids = stored_ints(g, ids_name, T), *pos = stored_ints(g, pos_name, T);
    int32_t *mask32 = stored_ints(g, mask_name, (int64_t)T * T);
    uint8_t *mask = malloc((size_t)T * T);
    int H = saa_bert_hidden(bert);
    float *hidden = malloc((size_t)T * H * sizeof *hidden);
    if (!ids || !pos || !mask32 || !mask || !hidden) {
        golden_report(g, name, 0, "stored inputs %s / %s / %s missing or mis-shaped", ids_name, pos_name, mask_name);
    } else {
        for (int64_t i = 0; i < (int64_t)T * T; i++) mask[i] = mask32[i] != 0;
        if (saa_bert_forward(bert, ids, pos, mask, T, hidden) != SAA_OK)
            golden_report(g, name, 0, "BERT failed: %s", saa_last_error());
        else
            golden_check_f32(g, name, hidden, 3, (int64_t[]){1, T, H});
    }
    free(ids);
    free(pos);
    free(mask32);
    free(mask);
    free(hidden);
}

int golden_gdino_text_stage(golden *g)
{
    const char *vocab_rel = golden_cfg_str(g, "vocab"), *weights_rel = golden_cfg_str(g, "weights");
    cJSON *captions = golden_cfg(g, "inputs.captions"), *normalized = golden_cfg(g, "inputs.normalized_captions");
    if (!vocab_rel || !weights_rel || !cJSON_IsArray(captions))
        return saa_set_error(SAA_EFORMAT, "%s/config.json: expected \"vocab\", \"weights\" and inputs.captions",
                             g->dir);
    int heads = (int)golden_cfg_num(g, "model.bert_heads", golden_cfg_num(g, "bert_config.num_attention_heads", 0));
    /* not model_fixed.max_text_len: GroundingDINO.__init__ hard-codes self.max_text_len = 256 */
    const int max_len = SAA_MAX_TEXT_LEN;
    char *vocab_path = golden_path(g, vocab_rel), *weights_path = golden_path(g, weights_rel);
    saa_tokenizer *tok = NULL;
    saa_weights *w = NULL;
    saa_bert *bert = NULL;
    int rc = saa_tokenizer_load(vocab_path, &tok);
    if (rc != SAA_OK) goto done;
    if ((rc = saa_weights_open(weights_path, &w)) != SAA_OK) goto done;
    if ((rc = saa_bert_load(w, "bert.", heads, &bert)) != SAA_OK) goto done;

    int k = 0;
    const cJSON *cap;
    cJSON_ArrayForEach(cap, captions)
    {
        char label[96], prefix[32];
        if (!cJSON_IsString(cap)) {
            rc = saa_set_error(SAA_EFORMAT, "%s/config.json: inputs.captions[%d] is not a string", g->dir, k);
            goto done;
        }
        char *norm = NULL;
        size_t norm_len = 0;
        saa_text_input in = {0};
        if (saa_caption_normalize(cap->valuestring, strlen(cap->valuestring), &norm, &norm_len) != SAA_OK) {
            rc = SAA_EINVAL; /* the error names what failed */
            goto done;
        }
        const cJSON *want = cJSON_GetArrayItem(normalized, k);
        if (cJSON_IsString(want)) {
            snprintf(label, sizeof label, "inputs.normalized_captions[%d]", k);
            int same = strlen(want->valuestring) == norm_len && !memcmp(want->valuestring, norm, norm_len);
            golden_report(g, label, same, "\"%s\"%s", norm, same ? "" : " differs");
        }
        if (saa_text_encode(tok, norm, norm_len, max_len, &in) != SAA_OK) {
            free(norm);
            rc = SAA_EINVAL;
            goto done;
        }
        snprintf(prefix, sizeof prefix, "cap%d.text.", k);
        golden_check_text_tensors(g, prefix, &in);
        check_bert(g, bert, k, in.len);
        saa_text_input_free(&in);
        free(norm);
        k++;
    }
    rc = SAA_OK;
done:
    saa_bert_free(bert);
    saa_weights_close(w);
    saa_tokenizer_free(tok);
    free(vocab_path);
    free(weights_path);
    return rc;
}
