/* BERT + feat_map vs the gdino_tiny golden folder: BERT fed the stored capK.text.* tensors vs
 * capK.bert.last_hidden_state, feat_map of that vs capK.feat_map (tolerance rule of the folder:
 * max_abs <= 1e-4 or max_abs / std <= 1e-4). Skipped (77) with a message when ../shared is absent. */
#include <string.h>

#include "models/bert.h"
#include "saa/weights.h"
#include "test.h"

static int32_t *as_i32(const saa_tensor *t)
{
    int64_t n = saa_tensor_numel(t);
    int32_t *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = (int32_t)saa_tensor_get(t, i);
    return v;
}

/* the golden rule: max_abs <= tol or max_abs / std(ref) <= tol */
static int close_enough(const float *got, const saa_tensor *ref, double tol)
{
    int64_t n = saa_tensor_numel(ref);
    double err = 0, s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) {
        double r = saa_tensor_get(ref, i);
        err = fmax(err, fabs(got[i] - r));
        s += r;
        s2 += r * r;
    }
    double var = s2 / n - (s / n) * (s / n), sd = var > 0 ? sqrt(var) : 0;
    printf("  max_abs %.3g, rel %.3g\n", err, sd > 0 ? err / sd : INFINITY);
    return err <= tol || (sd > 0 && err / sd <= tol);
}

static int test_gdino_tiny(void)
{
    const char *dir = SAA_SHARED_DIR "/golden/gdino_tiny";
    if (!test_exists(dir)) {
        printf("SKIPPED: %s not found (../shared absent)\n", dir);
        return 0;
    }
    saa_weights *w = NULL, *gold = NULL;
    CHECK(saa_weights_open(SAA_SHARED_DIR "/golden/gdino_tiny/weights.pth", &w) == SAA_OK);
    CHECK(saa_weights_open(SAA_SHARED_DIR "/golden/gdino_tiny/golden.safetensors", &gold) == SAA_OK);
    saa_bert *bert = NULL;
    saa_feat_map fm;
    if (w) CHECK(saa_bert_load(w, "bert.", 2, &bert) == SAA_OK); /* config.json model.bert_heads */
    if (bert) CHECK(saa_feat_map_load(w, "feat_map.", saa_bert_hidden(bert), &fm) == SAA_OK);
    for (int k = 0; bert && gold && k < 2; k++) {
        char n[128];
        snprintf(n, sizeof n, "cap%d.text.input_ids", k);
        const saa_tensor *ids_t = saa_weights_find(gold, n);
        snprintf(n, sizeof n, "cap%d.text.position_ids", k);
        const saa_tensor *pos_t = saa_weights_find(gold, n);
        snprintf(n, sizeof n, "cap%d.text.self_attention_mask", k);
        const saa_tensor *mask_t = saa_weights_find(gold, n);
        snprintf(n, sizeof n, "cap%d.bert.last_hidden_state", k);
        const saa_tensor *ref_h = saa_weights_find(gold, n);
        snprintf(n, sizeof n, "cap%d.feat_map", k);
        const saa_tensor *ref_f = saa_weights_find(gold, n);
        CHECK(ids_t && pos_t && mask_t && ref_h && ref_f);
        if (!(ids_t && pos_t && mask_t && ref_h && ref_f)) continue;
        int Tk = (int)ids_t->shape[1], Hk = saa_bert_hidden(bert);
        int32_t *ids = as_i32(ids_t), *pos = as_i32(pos_t), *m32 = as_i32(mask_t);
        uint8_t *mask = malloc((size_t)Tk * Tk);
        for (int i = 0; i < Tk * Tk; i++) mask[i] = m32[i] != 0;
        float *hid = malloc((size_t)Tk * Hk * sizeof *hid), *enc = malloc((size_t)Tk * fm.out_dim * sizeof *enc);
        CHECK(saa_bert_forward(bert, ids, pos, mask, Tk, hid) == SAA_OK);
        CHECK(saa_tensor_numel(ref_h) == (int64_t)Tk * Hk && close_enough(hid, ref_h, 1e-4));
        saa_feat_map_forward(&fm, hid, Tk, enc);
        CHECK(saa_tensor_numel(ref_f) == (int64_t)Tk * fm.out_dim && close_enough(enc, ref_f, 1e-4));
        free(ids), free(pos), free(m32), free(mask), free(hid), free(enc);
    }
    saa_bert_free(bert);
    saa_weights_close(w);
    saa_weights_close(gold);
    return 1;
}

int main(void)
{
    if (!test_gdino_tiny()) return 77;
    TEST_MAIN_END();
}
