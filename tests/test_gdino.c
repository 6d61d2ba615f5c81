/* Grounding DINO pieces against independent references written here:
 * - multi-scale deformable attention vs a direct evaluation of the Deformable DETR formula with
 *   grid_sample's bilinear/zero-padding rule written out per corner (channel-first maps, double);
 * - encoder output proposals vs hand-computed values;
 * - Python str(float) of float32 scores (hand-checked strings);
 * - config keys the official model ignores (max_text_len). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/deform_attn.h"
#include "models/gdino_impl.h"
#include "saa/tensor.h"
#include "test.h"

static uint32_t rng = 12345;
static float frand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (float)(rng >> 8) / 16777216.0f * 2.0f - 1.0f;
}

/* value of channel c at integer pixel (x, y) of level l, head h (0 outside: padding_mode zeros) */
static double pix(const float *V, const msda_levels *lv, int64_t d, int64_t hd, int l, int h, int64_t x, int64_t y,
                  int64_t c)
{
    if (x < 0 || y < 0 || x >= lv->W[l] || y >= lv->H[l]) return 0.0;
    return V[(lv->start[l] + y * lv->W[l] + x) * d + h * hd + c];
}

/* torch grid_sample(align_corners=False) at normalised location (lx, ly) in [0, 1] */
static double bilinear(const float *V, const msda_levels *lv, int64_t d, int64_t hd, int l, int h, double lx,
                       double ly, int64_t c)
{
    double x = lx * (double)lv->W[l] - 0.5, y = ly * (double)lv->H[l] - 0.5;
    double x0 = floor(x), y0 = floor(y), fx = x - x0, fy = y - y0;
    int64_t ix = (int64_t)x0, iy = (int64_t)y0;
    return pix(V, lv, d, hd, l, h, ix, iy, c) * (1 - fx) * (1 - fy) + pix(V, lv, d, hd, l, h, ix + 1, iy, c) * fx * (1 - fy) +
           pix(V, lv, d, hd, l, h, ix, iy + 1, c) * (1 - fx) * fy + pix(V, lv, d, hd, l, h, ix + 1, iy + 1, c) * fx * fy;
}

static void linear_ref(const float *x, int64_t rows, int64_t in, const float *W, const float *b, int64_t out, double *y)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t o = 0; o < out; o++) {
            double s = b[o];
            for (int64_t i = 0; i < in; i++) s += (double)x[r * in + i] * W[o * in + i];
            y[r * out + o] = s;
        }
}

static void test_msda(int ref_dim)
{
    const int d = 16, nh = 2, nl = 3, np = 2, hd = d / nh, nq = 7;
    msda_levels lv = {0};
    lv.n_levels = nl;
    const int64_t Hs[3] = {5, 3, 2}, Ws[3] = {6, 4, 1};
    for (int l = 0; l < nl; l++) lv.H[l] = Hs[l], lv.W[l] = Ws[l], lv.start[l] = lv.n_tokens, lv.n_tokens += Hs[l] * Ws[l];
    const int64_t N = lv.n_tokens, hlp = nh * nl * np;
    float *so_w = malloc(sizeof(float) * hlp * 2 * d), *so_b = malloc(sizeof(float) * hlp * 2);
    float *aw_w = malloc(sizeof(float) * hlp * d), *aw_b = malloc(sizeof(float) * hlp);
    float *vp_w = malloc(sizeof(float) * d * d), *vp_b = malloc(sizeof(float) * d);
    float *op_w = malloc(sizeof(float) * d * d), *op_b = malloc(sizeof(float) * d);
    float *value = malloc(sizeof(float) * N * d), *query = malloc(sizeof(float) * nq * d);
    float *ref = malloc(sizeof(float) * nq * 4);
    for (int64_t i = 0; i < hlp * 2 * d; i++) so_w[i] = 0.3f * frand();
    for (int64_t i = 0; i < hlp * 2; i++) so_b[i] = 2.0f * frand(); /* some samples land outside the maps */
    for (int64_t i = 0; i < hlp * d; i++) aw_w[i] = frand();
    for (int64_t i = 0; i < hlp; i++) aw_b[i] = frand();
    for (int64_t i = 0; i < d * d; i++) vp_w[i] = frand(), op_w[i] = frand();
    for (int64_t i = 0; i < d; i++) vp_b[i] = frand(), op_b[i] = frand();
    for (int64_t i = 0; i < N * d; i++) value[i] = frand();
    for (int64_t i = 0; i < nq * d; i++) query[i] = frand();
    for (int64_t q = 0; q < nq; q++) {
        ref[q * ref_dim] = 0.5f + 0.5f * frand();
        ref[q * ref_dim + 1] = 0.5f + 0.5f * frand();
        if (ref_dim == 4) ref[q * 4 + 2] = 0.3f + 0.2f * frand(), ref[q * 4 + 3] = 0.3f + 0.2f * frand();
    }
    msda_layer m = {d, nh, nl, np, so_w, so_b, aw_w, aw_b, vp_w, vp_b, op_w, op_b};
    float *vheads = malloc(sizeof(float) * N * d), *tmp = malloc(sizeof(float) * N * d);
    float *out = malloc(sizeof(float) * nq * d), *tmpq = malloc(sizeof(float) * nq * d);
    msda_project_value(&m, value, N, vheads, tmp);
    CHECK(msda_forward(&m, &lv, query, nq, ref, ref_dim, vheads, out, tmpq) == SAA_OK);

    /* reference */
    double *V = malloc(sizeof(double) * N * d), *off = malloc(sizeof(double) * nq * hlp * 2);
    double *aw = malloc(sizeof(double) * nq * hlp), *agg = malloc(sizeof(double) * nq * d);
    double *expect = malloc(sizeof(double) * nq * d);
    float *Vf = malloc(sizeof(float) * N * d), *aggf = malloc(sizeof(float) * nq * d);
    linear_ref(value, N, d, vp_w, vp_b, d, V);
    for (int64_t i = 0; i < N * d; i++) Vf[i] = (float)V[i];
    linear_ref(query, nq, d, so_w, so_b, hlp * 2, off);
    linear_ref(query, nq, d, aw_w, aw_b, hlp, aw);
    for (int64_t q = 0; q < nq; q++)
        for (int h = 0; h < nh; h++) {
            double *a = aw + q * hlp + h * nl * np, mx = -INFINITY, s = 0;
            for (int k = 0; k < nl * np; k++) mx = a[k] > mx ? a[k] : mx;
            for (int k = 0; k < nl * np; k++) s += exp(a[k] - mx);
            for (int k = 0; k < nl * np; k++) a[k] = exp(a[k] - mx) / s;
            for (int c = 0; c < hd; c++) {
                double acc = 0;
                for (int l = 0; l < nl; l++)
                    for (int p = 0; p < np; p++) {
                        const int64_t k = (h * nl + l) * np + p;
                        const double ox = off[(q * hlp + k) * 2], oy = off[(q * hlp + k) * 2 + 1];
                        double lx, ly;
                        if (ref_dim == 2) {
                            lx = ref[q * 2] + ox / (double)lv.W[l];
                            ly = ref[q * 2 + 1] + oy / (double)lv.H[l];
                        } else {
                            lx = ref[q * 4] + ox / np * ref[q * 4 + 2] * 0.5;
                            ly = ref[q * 4 + 1] + oy / np * ref[q * 4 + 3] * 0.5;
                        }
                        acc += aw[q * hlp + k] * bilinear(Vf, &lv, d, hd, l, h, lx, ly, c);
                    }
                agg[q * d + h * hd + c] = acc;
            }
        }
    for (int64_t i = 0; i < nq * d; i++) aggf[i] = (float)agg[i];
    linear_ref(aggf, nq, d, op_w, op_b, d, expect);
    double maxerr = 0;
    for (int64_t i = 0; i < nq * d; i++) maxerr = fmax(maxerr, fabs(out[i] - expect[i]));
    CHECK_NEAR(maxerr, 0.0, 2e-4);
    /* value_proj applied after sampling */
    CHECK(msda_forward_unprojected(&m, &lv, query, nq, ref, ref_dim, value, out) == SAA_OK);
    maxerr = 0;
    for (int64_t i = 0; i < nq * d; i++) maxerr = fmax(maxerr, fabs(out[i] - expect[i]));
    CHECK_NEAR(maxerr, 0.0, 2e-4);
    free(so_w), free(so_b), free(aw_w), free(aw_b), free(vp_w), free(vp_b), free(op_w), free(op_b);
    free(value), free(query), free(ref), free(vheads), free(tmp), free(out), free(tmpq);
    free(V), free(off), free(aw), free(agg), free(expect), free(Vf), free(aggf);
}

static void test_proposals(void)
{
    /* one 2x60 level: x = 0 gives cx = 0.5/60 < 0.01 (invalid), x = 1 gives 1.5/60 = 0.025 (valid) */
    msda_levels lv = {0};
    lv.n_levels = 1;
    lv.H[0] = 2, lv.W[0] = 60, lv.n_tokens = 120;
    float mem[120 * 2], om[120 * 2], props[120 * 4];
    for (int i = 0; i < 240; i++) mem[i] = (float)i + 1.0f;
    gdino_encoder_output_proposals(mem, 2, &lv, om, props);
    CHECK(isinf(props[0]) && props[0] > 0 && om[0] == 0.0f && om[1] == 0.0f);
    CHECK(isinf(props[59 * 4 + 2]) && om[59 * 2] == 0.0f); /* cx = 59.5/60 > 0.99 */
    CHECK(om[2] == mem[2] && om[3] == mem[3]);
    CHECK_NEAR(props[4 + 0], log(0.025 / 0.975), 1e-6);
    CHECK_NEAR(props[4 + 1], log(0.25 / 0.75), 1e-6);
    CHECK_NEAR(props[4 + 2], log(0.05 / 0.95), 1e-6);
    CHECK_NEAR(props[(60 + 1) * 4 + 1], log(0.75 / 0.25), 1e-6);
}

static void test_float_repr(void)
{
    char b[64];
    struct {
        float x;
        const char *s;
    } cases[] = {
        {0.73f, "0.7300000190734863"}, {0.5f, "0.5"}, {1.0f, "1.0"}, {0.1f, "0.10000000149011612"},
        {1e-5f, "9.999999747378752e-06"}, {0.0001f, "9.999999747378752e-05"}, {0.25f, "0.25"},
        {123456.0f, "123456.0"}, {1e17f, "9.999999843067494e+16"}, {0.001f, "0.0010000000474974513"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gdino_python_float_repr(cases[i].x, b, sizeof b);
        if (strcmp(b, cases[i].s)) fprintf(stderr, "repr(%g): got %s, expected %s\n", cases[i].x, b, cases[i].s);
        CHECK(!strcmp(b, cases[i].s));
    }
}

/* bbox_suppression on hand-made scores with a small vocabulary: thresholds are strict, the phrase filter
 * is a substring test, special tokens above the threshold appear in the phrase, kept phrases carry
 * str(score)[:4]. */
static void test_suppression(void)
{
    static const char vocab[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n.\ncrack\nhole\nblack\n";
    saa_tokenizer *tok = NULL;
    CHECK(saa_tokenizer_load_buffer(vocab, sizeof vocab - 1, &tok) == SAA_OK);
    if (!tok) return;
    /* "crack. black hole." -> [CLS] crack . black hole . [SEP] = 2 5 4 7 6 4 3 */
    const int32_t ids[7] = {2, 5, 4, 7, 6, 4, 3};
    const int T = 7, nq = 4;
    const float logits[4 * 7] = {
        0.10f, 0.80f, 0.20f, 0.10f, 0.10f, 0.10f, 0.60f, /* crack [SEP], score 0.8 */
        0.10f, 0.10f, 0.10f, 0.75f, 0.70f, 0.65f, 0.10f, /* black hole., contains "black" -> dropped */
        0.90f, 0.10f, 0.10f, 0.10f, 0.10f, 0.10f, 0.10f, /* [CLS], area too large */
        0.30f, 0.50f, 0.10f, 0.10f, 0.10f, 0.10f, 0.10f, /* score 0.5 == box threshold: not above */
    };
    const float boxes[4 * 4] = {0.5f, 0.5f, 0.2f, 0.2f, 0.3f, 0.3f, 0.1f, 0.1f, 0.5f, 0.5f, 1.0f, 0.9f,
                                0.2f, 0.2f, 0.1f, 0.1f};
    saa_gdino_filter f = {0.5f, 0.55f, 0.5f, 0.0f, "black"};
    gdino_suppression s;
    CHECK(gdino_bbox_suppression(logits, boxes, nq, T, ids, 7, tok, &f, &s) == SAA_OK);
    CHECK(s.score_area_mask[0] == 1 && s.score_area_mask[1] == 1 && s.score_area_mask[2] == 0 &&
          s.score_area_mask[3] == 0);
    CHECK(s.n_candidates == 2 && s.n_kept == 1);
    if (s.n_candidates == 2) {
        CHECK(!strcmp(s.candidate_phrases[0], "crack [SEP]"));
        CHECK(!strcmp(s.candidate_phrases[1], "black hole."));
        CHECK(s.phrase_keep_mask[0] == 1 && s.phrase_keep_mask[1] == 0);
    }
    if (s.n_kept == 1) {
        CHECK(!strcmp(s.kept_phrases_with_score[0], "crack [SEP](0.80)"));
        CHECK(s.kept_query[0] == 0 && s.kept_boxes[2] == 0.2f && s.kept_scores[0] == 0.8f);
    }
    CHECK_NEAR(s.area[2], 0.9, 1e-7);
    gdino_suppression_free(&s);
    /* filtered phrase "" is contained in every phrase (Python str.count("") > 0): nothing is kept */
    f.filtered_phrase = "";
    CHECK(gdino_bbox_suppression(logits, boxes, nq, T, ids, 7, tok, &f, &s) == SAA_OK);
    CHECK(s.n_candidates == 2 && s.n_kept == 0);
    gdino_suppression_free(&s);
    saa_tokenizer_free(tok);
}

/* GroundingDINO.__init__ sets self.max_text_len = 256 whatever args.max_text_len is: a config's
 * model_fixed.max_text_len must not change the slicing; the pe temperatures are honoured; fixed choices
 * the port does not implement are refused. */
static void test_config_fixed_keys(void)
{
    cJSON *root = cJSON_Parse("{\"model_fixed\": {\"max_text_len\": 24, \"pe_temperatureH\": 10000}}");
    saa_gdino_config c;
    CHECK(root && saa_gdino_config_from_json(root, &c) == SAA_OK);
    CHECK(c.max_text_len == 256);
    CHECK(c.pe_temperature_h == 10000.0f && c.pe_temperature_w == 20.0f);
    cJSON_Delete(root);
    /* choices that only move the box / class heads between modules are accepted; choices that change the
     * computation are refused rather than silently computed the official default way */
    static const char *accepted[] = {
        "{\"model_fixed\": {\"two_stage_bbox_embed_share\": true, \"two_stage_class_embed_share\": true}}",
        "{\"model_fixed\": {\"embed_init_tgt\": true, \"query_dim\": 4, \"two_stage_type\": \"standard\"}}",
        "{\"bert_config\": {\"hidden_act\": \"gelu\", \"layer_norm_eps\": 1e-12}}"};
    static const char *refused[] = {"{\"model_fixed\": {\"embed_init_tgt\": false}}",
                                    "{\"model_fixed\": {\"two_stage_type\": \"no\"}}",
                                    "{\"model_fixed\": {\"transformer_activation\": \"gelu\"}}",
                                    "{\"model_fixed\": {\"sub_sentence_present\": false}}",
                                    "{\"bert_config\": {\"hidden_act\": \"relu\"}}",
                                    "{\"bert_config\": {\"layer_norm_eps\": 1e-5}}"};
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        root = cJSON_Parse(accepted[i]);
        CHECK(root && saa_gdino_config_from_json(root, &c) == SAA_OK);
        cJSON_Delete(root);
    }
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        root = cJSON_Parse(refused[i]);
        CHECK(root && saa_gdino_config_from_json(root, &c) == SAA_EUNSUPPORTED);
        cJSON_Delete(root);
    }
}

int main(void)
{
    saa_threads_init();
    test_msda(2);
    test_msda(4);
    test_proposals();
    test_float_repr();
    test_suppression();
    test_config_fixed_keys();
    TEST_MAIN_END();
}
