/* Grounding DINO benchmark: synthetic weights with the real Swin-T OGC + BERT-base shapes, an 800x1067
 * image and the caption "crack. hole. black defect.". Reports total and per-stage times, peak RSS and
 * achieved GFLOP/s next to the sgemm throughput of this machine.
 *
 *   bench_gdino VOCAB.txt [runs]     (vocab: shared/golden/tokenizer/vocab.txt) */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "models/gdino_model.h"
#include "saa/gdino.h"
#include "saa/tensor.h"
#include "saa/weights.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* ---------- synthetic weights ---------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float urand(void)
{
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / 16777216.0));
}
static float nrand(void) { return sqrtf(-2.0f * logf(urand() + 1e-12f)) * cosf(6.2831853f * urand()); }

enum { W_LIN, W_BIAS, W_ONE, W_ZERO, W_EMB, W_SMALL };

static int add(saa_weights *w, int kind, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int add(saa_weights *w, int kind, int ndim, const int64_t *shape, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    saa_tensor *t = saa_tensor_new(SAA_F32, ndim, shape);
    if (!t) return -1;
    float *x = t->data;
    const int64_t n = saa_tensor_numel(t), fan_in = ndim > 1 ? n / shape[0] : 1;
    const float s = 1.0f / sqrtf((float)fan_in);
    for (int64_t i = 0; i < n; i++) {
        switch (kind) {
        case W_LIN: x[i] = s * nrand(); break;
        case W_BIAS: x[i] = 0.02f * nrand(); break;
        case W_ONE: x[i] = 1.0f + 0.1f * nrand(); break;
        case W_ZERO: x[i] = 0.05f * nrand(); break;
        case W_EMB: x[i] = nrand(); break;
        default: x[i] = 0.01f * nrand(); break;
        }
    }
    return saa_weights_add(w, name, t);
}

#define S(...) ((const int64_t[]){__VA_ARGS__})
#define ND(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), S(__VA_ARGS__)

static void lin(saa_weights *w, int64_t out, int64_t in, const char *name)
{
    add(w, W_LIN, ND(out, in), "%s.weight", name);
    add(w, W_BIAS, ND(out), "%s.bias", name);
}
static void ln(saa_weights *w, int64_t dim, const char *name)
{
    add(w, W_ONE, ND(dim), "%s.weight", name);
    add(w, W_ZERO, ND(dim), "%s.bias", name);
}

static void synth_transformer(saa_weights *w, const saa_gdino_config *c)
{
    const int64_t d = c->hidden_dim, dff = c->dim_feedforward, nl = c->num_feature_levels, nh = c->nheads;
    char n[256];
    lin(w, d, c->bert_hidden, "feat_map");
    int64_t cin = (int64_t)c->swin_embed_dim << c->swin_out_indices[c->swin_num_out - 1];
    for (int l = 0; l < nl; l++) {
        const int64_t ci = l < c->swin_num_out ? (int64_t)c->swin_embed_dim << c->swin_out_indices[l] : cin;
        const int64_t k = l < c->swin_num_out ? 1 : 3;
        if (l >= c->swin_num_out) cin = d;
        add(w, W_LIN, ND(d, ci, k, k), "input_proj.%d.0.weight", l);
        add(w, W_BIAS, ND(d), "input_proj.%d.0.bias", l);
        snprintf(n, sizeof n, "input_proj.%d.1", l), ln(w, d, n);
    }
    add(w, W_EMB, ND(nl, d), "transformer.level_embed");
    add(w, W_EMB, ND(c->num_queries, d), "transformer.tgt_embed.weight");
    for (int i = 0; i < c->enc_layers; i++) {
        const int64_t hlp = nh * nl * c->enc_n_points;
#define P(...) (snprintf(n, sizeof n, __VA_ARGS__), n)
        add(w, W_SMALL, ND(hlp * 2, d), "transformer.encoder.layers.%d.self_attn.sampling_offsets.weight", i);
        add(w, W_EMB, ND(hlp * 2), "transformer.encoder.layers.%d.self_attn.sampling_offsets.bias", i);
        lin(w, hlp, d, P("transformer.encoder.layers.%d.self_attn.attention_weights", i));
        lin(w, d, d, P("transformer.encoder.layers.%d.self_attn.value_proj", i));
        lin(w, d, d, P("transformer.encoder.layers.%d.self_attn.output_proj", i));
        ln(w, d, P("transformer.encoder.layers.%d.norm1", i));
        ln(w, d, P("transformer.encoder.layers.%d.norm2", i));
        lin(w, dff, d, P("transformer.encoder.layers.%d.linear1", i));
        lin(w, d, dff, P("transformer.encoder.layers.%d.linear2", i));
        add(w, W_LIN, ND(3 * d, d), "transformer.encoder.text_layers.%d.self_attn.in_proj_weight", i);
        add(w, W_BIAS, ND(3 * d), "transformer.encoder.text_layers.%d.self_attn.in_proj_bias", i);
        lin(w, d, d, P("transformer.encoder.text_layers.%d.self_attn.out_proj", i));
        lin(w, dff / 2, d, P("transformer.encoder.text_layers.%d.linear1", i));
        lin(w, d, dff / 2, P("transformer.encoder.text_layers.%d.linear2", i));
        ln(w, d, P("transformer.encoder.text_layers.%d.norm1", i));
        ln(w, d, P("transformer.encoder.text_layers.%d.norm2", i));
        ln(w, d, P("transformer.encoder.fusion_layers.%d.layer_norm_v", i));
        ln(w, d, P("transformer.encoder.fusion_layers.%d.layer_norm_l", i));
        lin(w, dff / 2, d, P("transformer.encoder.fusion_layers.%d.attn.v_proj", i));
        lin(w, dff / 2, d, P("transformer.encoder.fusion_layers.%d.attn.l_proj", i));
        lin(w, dff / 2, d, P("transformer.encoder.fusion_layers.%d.attn.values_v_proj", i));
        lin(w, dff / 2, d, P("transformer.encoder.fusion_layers.%d.attn.values_l_proj", i));
        lin(w, d, dff / 2, P("transformer.encoder.fusion_layers.%d.attn.out_v_proj", i));
        lin(w, d, dff / 2, P("transformer.encoder.fusion_layers.%d.attn.out_l_proj", i));
        add(w, W_SMALL, ND(d), "transformer.encoder.fusion_layers.%d.gamma_v", i);
        add(w, W_SMALL, ND(d), "transformer.encoder.fusion_layers.%d.gamma_l", i);
    }
    for (int i = 0; i < c->dec_layers; i++) {
        const int64_t hlp = nh * nl * c->dec_n_points;
        add(w, W_SMALL, ND(hlp * 2, d), "transformer.decoder.layers.%d.cross_attn.sampling_offsets.weight", i);
        add(w, W_EMB, ND(hlp * 2), "transformer.decoder.layers.%d.cross_attn.sampling_offsets.bias", i);
        lin(w, hlp, d, P("transformer.decoder.layers.%d.cross_attn.attention_weights", i));
        lin(w, d, d, P("transformer.decoder.layers.%d.cross_attn.value_proj", i));
        lin(w, d, d, P("transformer.decoder.layers.%d.cross_attn.output_proj", i));
        ln(w, d, P("transformer.decoder.layers.%d.norm1", i));
        add(w, W_LIN, ND(3 * d, d), "transformer.decoder.layers.%d.ca_text.in_proj_weight", i);
        add(w, W_BIAS, ND(3 * d), "transformer.decoder.layers.%d.ca_text.in_proj_bias", i);
        lin(w, d, d, P("transformer.decoder.layers.%d.ca_text.out_proj", i));
        ln(w, d, P("transformer.decoder.layers.%d.catext_norm", i));
        add(w, W_LIN, ND(3 * d, d), "transformer.decoder.layers.%d.self_attn.in_proj_weight", i);
        add(w, W_BIAS, ND(3 * d), "transformer.decoder.layers.%d.self_attn.in_proj_bias", i);
        lin(w, d, d, P("transformer.decoder.layers.%d.self_attn.out_proj", i));
        ln(w, d, P("transformer.decoder.layers.%d.norm2", i));
        lin(w, dff, d, P("transformer.decoder.layers.%d.linear1", i));
        lin(w, d, dff, P("transformer.decoder.layers.%d.linear2", i));
        ln(w, d, P("transformer.decoder.layers.%d.norm3", i));
        lin(w, d, d, P("bbox_embed.%d.layers.0", i));
        lin(w, d, d, P("bbox_embed.%d.layers.1", i));
        lin(w, 4, d, P("bbox_embed.%d.layers.2", i));
    }
    ln(w, d, "transformer.decoder.norm");
    lin(w, d, 2 * d, "transformer.decoder.ref_point_head.layers.0");
    lin(w, d, d, "transformer.decoder.ref_point_head.layers.1");
    lin(w, d, d, "transformer.enc_output");
    ln(w, d, "transformer.enc_output_norm");
    lin(w, d, d, "transformer.enc_out_bbox_embed.layers.0");
    lin(w, d, d, "transformer.enc_out_bbox_embed.layers.1");
    lin(w, 4, d, "transformer.enc_out_bbox_embed.layers.2");
#undef P
}

/* ---------- sgemm reference ---------- */

static double sgemm_gflops(void)
{
    const int64_t M = 2048, N = 1024, K = 1024;
    float *A = malloc((size_t)(M * K) * 4), *B = malloc((size_t)(N * K) * 4), *C = malloc((size_t)(M * N) * 4);
    for (int64_t i = 0; i < M * K; i++) A[i] = urand();
    for (int64_t i = 0; i < N * K; i++) B[i] = urand();
    saa_gemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);
    double t0 = now_s();
    int reps = 10;
    for (int r = 0; r < reps; r++) saa_gemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);
    double dt = now_s() - t0;
    free(A), free(B), free(C);
    return 2.0 * (double)M * N * K * reps / dt * 1e-9;
}

int main(int argc, char **argv)
{
    saa_threads_init();
    const int runs = argc > 2 ? atoi(argv[2]) : 1;
    saa_gdino_config cfg;
    saa_gdino_config_preset("swint_ogc", &cfg);
    saa_weights *w = saa_weights_alloc("synthetic");
    synth_transformer(w, &cfg);
    saa_gdino *g = NULL;
    if (gdino_load_transformer_only(w, &cfg, &g) != SAA_OK) {
        fprintf(stderr, "load: %s\n", saa_last_error());
        return 1;
    }
    /* Swin-T levels of an 800x1067 image: strides 8, 16, 32 */
    const int C[3] = {192, 384, 768}, H[3] = {100, 50, 25}, W[3] = {134, 67, 34};
    float *feats[3];
    for (int l = 0; l < 3; l++) {
        feats[l] = malloc((size_t)C[l] * H[l] * W[l] * sizeof(float));
        for (int64_t i = 0; i < (int64_t)C[l] * H[l] * W[l]; i++) feats[l][i] = nrand();
    }
    enum { T = 9 }; /* [CLS] crack . hole . black defect . [SEP] */
    float *hidden = malloc((size_t)T * cfg.bert_hidden * sizeof(float));
    for (int64_t i = 0; i < (int64_t)T * cfg.bert_hidden; i++) hidden[i] = nrand();
    uint8_t mask[T * T];
    int64_t pos[T] = {0, 0, 1, 0, 1, 0, 1, 2, 0};
    memset(mask, 0, sizeof mask);
    const int blocks[][2] = {{0, 0}, {1, 2}, {3, 4}, {5, 7}, {8, 8}};
    for (int b = 0; b < 5; b++)
        for (int i = blocks[b][0]; i <= blocks[b][1]; i++)
            for (int j = blocks[b][0]; j <= blocks[b][1]; j++) mask[i * T + j] = 1;
    double gf = sgemm_gflops();
    printf("sgemm (2048x1024x1024): %.1f GFLOP/s, threads %d\n", gf, saa_threads());
    for (int r = 0; r < runs; r++) {
        gdino_image im;
        gdino_timing tm;
        memset(&tm, 0, sizeof tm);
        double t0 = now_s();
        if (gdino_image_from_features(g, 3, (const float *const *)feats, C, H, W, &im) != SAA_OK) {
            fprintf(stderr, "%s\n", saa_last_error());
            return 1;
        }
        double t1 = now_s();
        gdino_text text = {T, hidden, mask, pos};
        gdino_raw raw;
        if (gdino_run_timed(g, &im, &text, NULL, NULL, &raw, &tm) != SAA_OK) {
            fprintf(stderr, "%s\n", saa_last_error());
            return 1;
        }
        double t2 = now_s();
        printf("run %d: input_proj+pos %.3f s, transformer %.3f s (tokens %lld)\n", r, t1 - t0, t2 - t1,
               (long long)im.lv.n_tokens);
        printf("  fusion %.3f  text %.3f  enc_deform %.3f  enc_ffn %.3f  query_select %.3f  decoder %.3f\n",
               tm.fusion, tm.text, tm.enc_deform, tm.enc_ffn, tm.query_select, tm.decoder);
        gdino_raw_free(&raw);
        gdino_image_free(&im);
    }
    printf("peak RSS %.0f MB\n", peak_rss_mb());
    for (int l = 0; l < 3; l++) free(feats[l]);
    free(hidden);
    saa_gdino_free(g);
    return 0;
}
