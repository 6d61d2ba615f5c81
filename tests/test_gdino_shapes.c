/* The Grounding DINO transformer (gdino_tiny's weights) in configurations that folder does not exercise,
 * checked against references computed here in double from the same weights and the run's own trace:
 * - fewer than 2 * num_queries image tokens (the box MLPs on the queries need 2 * nq * d of scratch):
 *   refpoint_unsig = enc_out_bbox_embed(output_memory[topk]) + proposals[topk], pred_boxes =
 *   sigmoid(bbox_embed(hs[-1]) + inverse_sigmoid(ref[-2])), pred_logits = hs[-1] . memory_text;
 * - no encoder layers: the official Transformer then has no level_embed (a checkpoint without it must
 *   load), memory is the input projection and memory_text the feat_map output, exactly.
 * Skipped (77) with a message when ../shared is absent. */
#include <string.h>

#include "models/gdino_model.h"
#include "saa/json.h"
#include "saa/weights.h"
#include "test.h"

#define DIR SAA_SHARED_DIR "/golden/gdino_tiny"

static uint32_t rng = 99;
static float frand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (float)(rng >> 8) / 16777216.0f * 2.0f - 1.0f;
}

/* MLP (Linear + ReLU between layers) of `layers` layers named PREFIX.layers.i, in double */
static void mlp_ref(saa_weights *w, const char *prefix, int layers, const float *x, int in, double *y)
{
    double a[512], b[512];
    for (int i = 0; i < in; i++) a[i] = x[i];
    int n = in;
    for (int l = 0; l < layers; l++) {
        char name[160];
        snprintf(name, sizeof name, "%s.layers.%d.weight", prefix, l);
        const saa_tensor *W = saa_weights_find_f32(w, name);
        snprintf(name, sizeof name, "%s.layers.%d.bias", prefix, l);
        const saa_tensor *B = saa_weights_find_f32(w, name);
        const int out = (int)W->shape[0];
        const float *wd = W->data, *bd = B->data;
        for (int o = 0; o < out; o++) {
            double s = bd[o];
            for (int i = 0; i < n; i++) s += wd[(int64_t)o * n + i] * a[i];
            b[o] = l < layers - 1 && s < 0 ? 0 : s;
        }
        n = out;
        memcpy(a, b, sizeof(double) * (size_t)n);
    }
    memcpy(y, a, sizeof(double) * (size_t)n);
}

static double inverse_sigmoid(double x)
{
    x = x < 0 ? 0 : x > 1 ? 1 : x;
    double x1 = x < 1e-3 ? 1e-3 : x, x2 = 1 - x < 1e-3 ? 1e-3 : 1 - x;
    return log(x1 / x2);
}

typedef struct {
    float *feat[3], *bert;
    uint8_t mask[25];
    int64_t pos[5];
} inputs;

/* backbone outputs of 6x6, 3x3, 2x2 (+ the extra 1x1 level: 50 tokens) and a 5-token text */
static void make_inputs(inputs *in, const int *C, const int *H, const int *W)
{
    for (int l = 0; l < 3; l++) {
        in->feat[l] = malloc(sizeof(float) * (size_t)(C[l] * H[l] * W[l]));
        for (int i = 0; i < C[l] * H[l] * W[l]; i++) in->feat[l][i] = frand();
    }
    in->bert = malloc(sizeof(float) * 5 * 12);
    for (int i = 0; i < 5 * 12; i++) in->bert[i] = frand();
    memset(in->mask, 1, sizeof in->mask);
    for (int t = 0; t < 5; t++) in->pos[t] = t;
}

static void free_inputs(inputs *in)
{
    for (int l = 0; l < 3; l++) free(in->feat[l]);
    free(in->bert);
}

static void test_few_tokens(const saa_gdino_config *cfg0)
{
    saa_gdino_config cfg = *cfg0;
    saa_weights *w = NULL, *ref = NULL;
    CHECK(saa_weights_open(DIR "/weights.pth", &w) == SAA_OK);
    CHECK(saa_weights_open(DIR "/weights.pth", &ref) == SAA_OK);
    saa_gdino *g = NULL;
    if (w) CHECK(gdino_load_transformer_only(w, &cfg, &g) == SAA_OK); /* takes w */
    if (!g || !ref) {
        saa_weights_close(ref);
        return;
    }
    const int C[3] = {16, 32, 64}, H[3] = {6, 3, 2}, W[3] = {6, 3, 2};
    inputs in;
    make_inputs(&in, C, H, W);
    gdino_image im;
    CHECK(gdino_image_from_features(g, 3, (const float *const *)in.feat, C, H, W, &im) == SAA_OK);
    const int64_t N = im.lv.n_tokens, nq = cfg.num_queries, d = 256, T = 5;
    CHECK(N == 50 && nq <= N && N < 2 * nq); /* the case under test */
    gdino_text text = {5, in.bert, in.mask, in.pos};
    gdino_trace tr;
    gdino_raw raw;
    int rc = gdino_run(g, &im, &text, NULL, &tr, &raw);
    CHECK(rc == SAA_OK);
    if (rc == SAA_OK) {
        double err_ref = 0, err_box = 0, err_logit = 0, y[4];
        for (int64_t q = 0; q < nq; q++) {
            const int64_t r = tr.topk_index[q];
            mlp_ref(ref, "transformer.enc_out_bbox_embed", 3, tr.output_memory + r * d, (int)d, y);
            for (int k = 0; k < 4; k++)
                err_ref = fmax(err_ref, fabs(y[k] + tr.output_proposals[r * 4 + k] - tr.refpoint_unsig[q * 4 + k]));
        }
        const int L = cfg.dec_layers - 1;
        char prefix[64];
        snprintf(prefix, sizeof prefix, "bbox_embed.%d", L);
        for (int64_t q = 0; q < nq; q++) {
            mlp_ref(ref, prefix, 3, tr.dec_hs[L] + q * d, (int)d, y);
            for (int k = 0; k < 4; k++) {
                const double box = 1 / (1 + exp(-(y[k] + inverse_sigmoid(tr.refs[L][q * 4 + k]))));
                err_box = fmax(err_box, fabs(box - raw.pred_boxes[q * 4 + k]));
            }
            for (int64_t t = 0; t < T; t++) {
                double s = 0;
                for (int64_t c = 0; c < d; c++) s += (double)tr.dec_hs[L][q * d + c] * tr.memory_text[t * d + c];
                err_logit = fmax(err_logit, fabs(s - raw.pred_logits[q * T + t]));
            }
        }
        printf("few tokens (N %lld, nq %lld): refpoint err %.3g, box err %.3g, logit err %.3g\n", (long long)N,
               (long long)nq, err_ref, err_box, err_logit);
        CHECK(err_ref < 1e-4);
        CHECK(err_box < 1e-5);
        CHECK(err_logit < 1e-4);
        gdino_trace_free(&tr);
        gdino_raw_free(&raw);
    }
    gdino_image_free(&im);
    free_inputs(&in);
    saa_gdino_free(g);
    saa_weights_close(ref);
}

static void test_no_encoder(const saa_gdino_config *cfg0)
{
    saa_weights *w = NULL;
    CHECK(saa_weights_open(DIR "/weights.pth", &w) == SAA_OK);
    if (!w) return;
    /* gdino_tiny's tensors without transformer.level_embed, as an official model with enc_layers 0 saves */
    saa_weights *no_le = saa_weights_alloc("no_level_embed"), *no_le2 = saa_weights_alloc("no_level_embed");
    int copied = no_le && no_le2;
    for (int i = 0; copied && i < saa_weights_count(w); i++) {
        const saa_tensor *t = saa_weights_at(w, i);
        if (!strcmp(saa_weights_name(w, i), "transformer.level_embed")) continue;
        copied &= saa_weights_add(no_le, saa_weights_name(w, i), saa_tensor_wrap(t->dtype, t->ndim, t->shape, t->data)) ==
                  SAA_OK;
        copied &= saa_weights_add(no_le2, saa_weights_name(w, i), saa_tensor_wrap(t->dtype, t->ndim, t->shape, t->data)) ==
                  SAA_OK;
    }
    CHECK(copied);
    saa_gdino_config cfg = *cfg0;
    saa_gdino *g = NULL;
    /* with encoder layers the level embedding is required */
    CHECK(gdino_load_transformer_only(no_le2, &cfg, &g) != SAA_OK && strstr(saa_last_error(), "level_embed"));
    cfg.enc_layers = 0;
    CHECK(gdino_load_transformer_only(no_le, &cfg, &g) == SAA_OK);
    if (g) {
        const int C[3] = {16, 32, 64}, H[3] = {6, 3, 2}, W[3] = {6, 3, 2};
        inputs in;
        make_inputs(&in, C, H, W);
        gdino_image im;
        CHECK(gdino_image_from_features(g, 3, (const float *const *)in.feat, C, H, W, &im) == SAA_OK);
        const int64_t N = im.lv.n_tokens, d = 256;
        CHECK(!memcmp(im.lvl_pos, im.pos, sizeof(float) * (size_t)(N * d))); /* lvl_pos_embed = pos */
        gdino_text text = {5, in.bert, in.mask, in.pos};
        gdino_trace tr;
        gdino_raw raw;
        CHECK(gdino_run(g, &im, &text, NULL, &tr, &raw) == SAA_OK);
        if (tr.memory) {
            CHECK(tr.n_enc == 0);
            CHECK(!memcmp(tr.memory, im.src, sizeof(float) * (size_t)(N * d)));
            CHECK(!memcmp(tr.memory_text, tr.feat_map, sizeof(float) * 5 * (size_t)d));
            gdino_trace_free(&tr);
            gdino_raw_free(&raw);
        }
        gdino_image_free(&im);
        free_inputs(&in);
        saa_gdino_free(g);
    } else {
        printf("load without level_embed: %s\n", saa_last_error());
    }
    saa_weights_close(w); /* after the views into it */
}

int main(void)
{
    if (!test_exists(DIR "/weights.pth")) {
        printf("SKIPPED: %s not found (../shared absent)\n", DIR);
        return 77;
    }
    saa_threads_init();
    cJSON *root = saa_json_load(DIR "/config.json");
    saa_gdino_config cfg;
    CHECK(root && saa_gdino_config_from_json(root, &cfg) == SAA_OK);
    cJSON_Delete(root);
    if (test_failed) TEST_MAIN_END();
    test_few_tokens(&cfg);
    test_no_encoder(&cfg);
    TEST_MAIN_END();
}
