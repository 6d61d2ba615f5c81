/* Model hyper-parameters from a JSON file in the saa_e2e golden format (config.json "weights": {"sam":
 * {"model": {...}}, "gdino": {"config": official args, "tiny_cfg": {...}}}), so that `saa segment --config`
 * can run models of any size (the golden folders' tiny models, benchmarks). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "models/gdino_model.h"
#include "saa/saa.h"
#include "saa/weights.h"

static void copy_key(cJSON *dst, const char *dst_key, const cJSON *src, const char *src_key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(src, src_key);
    if (v) cJSON_AddItemToObject(dst, dst_key, cJSON_Duplicate(v, 1));
}

/* The official GroundingDINO args + SAA+'s tiny_cfg, re-expressed in the gdino_tiny layout that
 * saa_gdino_config_from_json reads ("model", "model_fixed", "swin_config", "bert_config"). */
static int gdino_config_from_e2e(const cJSON *gd, saa_gdino_config *cfg)
{
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(gd, "config");
    const cJSON *tiny = cJSON_GetObjectItemCaseSensitive(gd, "tiny_cfg");
    cJSON *root = cJSON_CreateObject();
    cJSON *model = cJSON_AddObjectToObject(root, "model"), *fixed = cJSON_AddObjectToObject(root, "model_fixed");
    cJSON *swin = cJSON_AddObjectToObject(root, "swin_config"), *bert = cJSON_AddObjectToObject(root, "bert_config");
    static const char *model_keys[] = {"hidden_dim", "nheads", "enc_layers", "dec_layers", "dim_feedforward",
                                       "num_queries", "enc_n_points", "dec_n_points", "num_feature_levels",
                                       "return_interm_indices"};
    for (size_t i = 0; i < sizeof model_keys / sizeof model_keys[0]; i++) {
        copy_key(model, model_keys[i], args, model_keys[i]);
        if (!cJSON_GetObjectItemCaseSensitive(model, model_keys[i])) copy_key(model, model_keys[i], tiny, model_keys[i]);
    }
    copy_key(fixed, "pe_temperatureH", args, "pe_temperatureH");
    copy_key(fixed, "pe_temperatureW", args, "pe_temperatureW");
    copy_key(swin, "embed_dim", tiny, "swin_embed_dim");
    copy_key(swin, "depths", tiny, "swin_depths");
    copy_key(swin, "num_heads", tiny, "swin_heads");
    copy_key(swin, "window_size", tiny, "swin_window");
    copy_key(swin, "mlp_ratio", tiny, "swin_mlp_ratio");
    copy_key(swin, "out_indices", args, "return_interm_indices");
    copy_key(bert, "hidden_size", tiny, "bert_hidden");
    copy_key(bert, "num_hidden_layers", tiny, "bert_layers");
    copy_key(bert, "num_attention_heads", tiny, "bert_heads");
    copy_key(bert, "intermediate_size", tiny, "bert_intermediate");
    copy_key(bert, "max_position_embeddings", tiny, "bert_max_pos");
    int rc = saa_gdino_config_from_json(root, cfg);
    cJSON_Delete(root);
    return rc;
}

int saa_model_configs_from_json(const cJSON *root, saa_sam_config *sam, int *has_sam, saa_gdino_config *gdino,
                                int *has_gdino)
{
    *has_sam = *has_gdino = 0;
    const cJSON *weights = cJSON_GetObjectItemCaseSensitive(root, "weights");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(weights, "sam"), "model");
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(weights, "gdino");
    int rc;
    if (s) {
        if ((rc = saa_sam_config_from_json(s, sam)) != SAA_OK) return rc;
        *has_sam = 1;
    }
    if (g && cJSON_GetObjectItemCaseSensitive(g, "config")) {
        if ((rc = gdino_config_from_e2e(g, gdino)) != SAA_OK)
            return saa_set_error(rc, "model config: weights.gdino: %s", saa_last_error());
        *has_gdino = 1;
    }
    if (!*has_sam && !*has_gdino)
        return saa_set_error(SAA_EFORMAT, "model config: expected weights.sam.model and/or weights.gdino.config "
                                          "(the saa_e2e golden config.json layout)");
    return SAA_OK;
}

int saa_model_configs_load(const char *path, saa_sam_config *sam, int *has_sam, saa_gdino_config *gdino,
                           int *has_gdino)
{
    FILE *f = fopen(path, "rb");
    if (!f) return saa_set_error(SAA_EIO, "%s: cannot open the model config", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = n >= 0 ? malloc((size_t)n + 1) : NULL;
    size_t got = text ? fread(text, 1, (size_t)n, f) : 0;
    fclose(f);
    if (!text || got != (size_t)n) {
        free(text);
        return saa_set_error(SAA_EIO, "%s: cannot read the model config", path);
    }
    text[n] = 0;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root) return saa_set_error(SAA_EFORMAT, "%s: not valid JSON", path);
    int rc = saa_model_configs_from_json(root, sam, has_sam, gdino, has_gdino);
    cJSON_Delete(root);
    if (rc != SAA_OK) return saa_set_error(rc, "%s: %s", path, saa_last_error());
    return SAA_OK;
}

/* SAA/model.py Model.load_dino: torch.load(...)["model"] (saa_weights_open descends into "model"), then
 * clean_state_dict (groundingdino/util/utils.py) drops the "module." prefix the released checkpoint carries.
 * The cleaned map borrows the tensors of the opened one, which must outlive it (*raw). */
int saa_load_dino(const char *path, const char *vocab, const saa_gdino_config *cfg, saa_gdino **out,
                  saa_weights **raw)
{
    *out = NULL, *raw = NULL;
    saa_weights *w;
    int rc = saa_weights_open(path, &w);
    if (rc != SAA_OK) return rc;
    int prefixed = 0;
    for (int i = 0; i < saa_weights_count(w); i++) prefixed += !strncmp(saa_weights_name(w, i), "module.", 7);
    if (!prefixed) return saa_gdino_load_weights(w, vocab, cfg, out);
    saa_weights *clean = saa_weights_alloc(path);
    if (!clean) {
        saa_weights_close(w);
        return saa_set_error(SAA_ENOMEM, "out of memory");
    }
    for (int i = 0; i < saa_weights_count(w) && rc == SAA_OK; i++) {
        const char *name = saa_weights_name(w, i);
        const saa_tensor *t = saa_weights_at(w, i);
        saa_tensor *view = saa_tensor_wrap(t->dtype, t->ndim, t->shape, t->data);
        rc = view ? saa_weights_add(clean, strncmp(name, "module.", 7) ? name : name + 7, view)
                  : saa_set_error(SAA_ENOMEM, "out of memory");
    }
    if (rc == SAA_OK) rc = saa_gdino_load_weights(clean, vocab, cfg, out); /* takes clean */
    else saa_weights_close(clean);
    if (rc != SAA_OK) {
        saa_weights_close(w);
        return rc;
    }
    *raw = w;
    return SAA_OK;
}
