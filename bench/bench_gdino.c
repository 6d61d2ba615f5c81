/* Grounding DINO benchmark: synthetic weights with the real Swin-T OGC + BERT-base shapes, an 800x1067
 * image and the caption "crack. hole. black defect.". Reports total and per-stage times, peak RSS and
 * achieved GFLOP/s next to the sgemm throughput of this machine.
 *
 *   bench_gdino VOCAB.txt [runs]     (vocab: shared/golden/tokenizer/vocab.txt)
 * GFLOP counts are the multiply-adds x 2 of the dense parts (Swin, transformer; BERT is negligible). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_util.h"

static int use_cpu_clock;
static double now(void)
{
    if (!use_cpu_clock) return bench_now();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
#include "models/gdino_model.h"
#include "models/swin.h"
#include "saa/gdino.h"
#include "saa/tensor.h"
#include "saa/weights.h"

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

static void synth_swin(saa_weights *w, const saa_gdino_config *c)
{
    const int64_t E = c->swin_embed_dim, ws = c->swin_window, ps = c->swin_patch_size;
    add(w, W_LIN, ND(E, 3, ps, ps), "backbone.0.patch_embed.proj.weight");
    add(w, W_BIAS, ND(E), "backbone.0.patch_embed.proj.bias");
    ln(w, E, "backbone.0.patch_embed.norm");
    char n[256];
    for (int s = 0; s < 4; s++) {
        const int64_t d = E << s, hid = (int64_t)((float)d * c->swin_mlp_ratio), nh = c->swin_heads[s];
        for (int i = 0; i < c->swin_depths[s]; i++) {
#define P(...) (snprintf(n, sizeof n, __VA_ARGS__), n)
            ln(w, d, P("backbone.0.layers.%d.blocks.%d.norm1", s, i));
            ln(w, d, P("backbone.0.layers.%d.blocks.%d.norm2", s, i));
            add(w, W_EMB, ND((2 * ws - 1) * (2 * ws - 1), nh), "backbone.0.layers.%d.blocks.%d.attn.relative_position_bias_table", s, i);
            lin(w, 3 * d, d, P("backbone.0.layers.%d.blocks.%d.attn.qkv", s, i));
            lin(w, d, d, P("backbone.0.layers.%d.blocks.%d.attn.proj", s, i));
            lin(w, hid, d, P("backbone.0.layers.%d.blocks.%d.mlp.fc1", s, i));
            lin(w, d, hid, P("backbone.0.layers.%d.blocks.%d.mlp.fc2", s, i));
        }
        if (s < 3) {
            add(w, W_LIN, ND(2 * d, 4 * d), "backbone.0.layers.%d.downsample.reduction.weight", s);
            ln(w, 4 * d, P("backbone.0.layers.%d.downsample.norm", s));
        }
        if (s >= 1) ln(w, d, P("backbone.0.norm%d", s));
    }
}

static void synth_bert(saa_weights *w, const saa_gdino_config *c)
{
    const int64_t H = c->bert_hidden, Hi = c->bert_intermediate;
    char n[256];
    add(w, W_EMB, ND(c->bert_vocab_size, H), "bert.embeddings.word_embeddings.weight");
    add(w, W_EMB, ND(c->bert_max_position, H), "bert.embeddings.position_embeddings.weight");
    add(w, W_EMB, ND(c->bert_type_vocab, H), "bert.embeddings.token_type_embeddings.weight");
    ln(w, H, "bert.embeddings.LayerNorm");
    for (int l = 0; l < c->bert_layers; l++) {
        lin(w, H, H, P("bert.encoder.layer.%d.attention.self.query", l));
        lin(w, H, H, P("bert.encoder.layer.%d.attention.self.key", l));
        lin(w, H, H, P("bert.encoder.layer.%d.attention.self.value", l));
        lin(w, H, H, P("bert.encoder.layer.%d.attention.output.dense", l));
        ln(w, H, P("bert.encoder.layer.%d.attention.output.LayerNorm", l));
        lin(w, Hi, H, P("bert.encoder.layer.%d.intermediate.dense", l));
        lin(w, H, Hi, P("bert.encoder.layer.%d.output.dense", l));
        ln(w, H, P("bert.encoder.layer.%d.output.LayerNorm", l));
    }
#undef P
}

/* Multiply-adds x 2 of the dense parts (what sgemm throughput bounds). */
static double transformer_flops(const saa_gdino_config *c, const gdino_image *im, int T)
{
    const double N = (double)im->lv.n_tokens, d = c->hidden_dim, dff = c->dim_feedforward, nq = c->num_queries;
    const double nh = c->nheads, nl = c->num_feature_levels, ht = nh / 2 * T;
    const double hlpe = nh * nl * c->enc_n_points, hlpd = nh * nl * c->dec_n_points;
    double enc = N * d * d * 2 + N * d * hlpe * 3 + N * d * dff * 2 /* value/out proj, offsets+weights, ffn */
                 + N * ht * d * 3                                   /* fusion logits, P_l v, P_v M */
                 + N * nh * nl * c->enc_n_points * (d / nh) * 4;    /* bilinear sampling */
    double dec = N * d * d + nq * (d * d * 2 + d * hlpd * 3 + d * dff * 2 + 4 * d * d + nq * d * 2 + 2 * d * d * 2 +
                                   nh * nl * c->dec_n_points * (d / nh) * 4);
    double sel = N * d * d + N * d * T + nq * d * d * 2;
    return 2 * (c->enc_layers * enc + c->dec_layers * dec + sel);
}

static double swin_flops(const saa_gdino_config *c, int H, int W)
{
    const int ws = c->swin_window, n = ws * ws;
    int h = (H + c->swin_patch_size - 1) / c->swin_patch_size, w = (W + c->swin_patch_size - 1) / c->swin_patch_size;
    double macs = (double)h * w * 3 * c->swin_patch_size * c->swin_patch_size * c->swin_embed_dim;
    for (int s = 0; s < 4; s++) {
        double C = (double)(c->swin_embed_dim << s), T = (double)h * w;
        double Tp = (double)((h + ws - 1) / ws * ws) * ((w + ws - 1) / ws * ws);
        double hid = (double)(int)(C * c->swin_mlp_ratio);
        macs += c->swin_depths[s] * (Tp * C * 3 * C + 2 * Tp * n * C + Tp * C * C + 2 * T * C * hid);
        if (s < 3) {
            h = (h + 1) / 2;
            w = (w + 1) / 2;
            macs += (double)h * w * 4 * C * 2 * C;
        }
    }
    return 2 * macs;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_gdino VOCAB.txt [runs]\n");
        return 2;
    }
    saa_threads_init();
    /* BENCH_CPU=1: all times from the process CPU clock (for a loaded machine; run with SAA_THREADS=1) */
    const int cpu_clock = getenv("BENCH_CPU") && atoi(getenv("BENCH_CPU"));
    if (cpu_clock) gdino_timing_cpu_clock(1), use_cpu_clock = 1;
    const int runs = argc > 2 ? atoi(argv[2]) : 2;
    const char *caption = "crack. hole. black defect.";
    const int IH = 800, IW = 1067;
    saa_gdino_config cfg;
    saa_gdino_config_preset("swint_ogc", &cfg);
    saa_weights *w = saa_weights_alloc("synthetic");
    synth_transformer(w, &cfg);
    synth_swin(w, &cfg);
    synth_bert(w, &cfg);
    saa_gdino *g = NULL;
    if (saa_gdino_load_weights(w, argv[1], &cfg, &g) != SAA_OK) {
        fprintf(stderr, "load: %s\n", saa_last_error());
        return 1;
    }
    saa_image img = {IW, IH, 3, malloc((size_t)IW * IH * 3)};
    for (int y = 0; y < IH; y++)
        for (int x = 0; x < IW; x++)
            for (int ch = 0; ch < 3; ch++)
                img.data[((size_t)y * IW + x) * 3 + ch] = (uint8_t)((x * 3 + y * 5 + ch * 70 + (x * y) % 17) & 255);
    const double sgemm = bench_sgemm_gflops(4096, 1024, 256, 0, 0.5);
    double best_total = 1e30;
    for (int r = 0; r < runs; r++) {
        /* stage by stage (the same calls saa_gdino_set_image / saa_gdino_detect make) */
        double t0 = now();
        float *x = NULL;
        int oh, ow;
        if (gdino_image_preprocess(&img, cfg.resize_size, cfg.resize_max_size, NULL, &x, &oh, &ow) != SAA_OK) goto fail;
        double t1 = now();
        swin_features f;
        if (swin_forward(g->swin, x, oh, ow, &f) != SAA_OK) goto fail;
        double t2 = now();
        gdino_image im;
        if (gdino_image_from_features(g, f.num_levels, (const float *const *)f.data, f.C, f.H, f.W, &im) != SAA_OK)
            goto fail;
        swin_features_free(&f);
        free(x);
        double t3 = now();
        saa_text_input in;
        float *hidden;
        if (gdino_encode_text(g, caption, &in, &hidden) != SAA_OK) goto fail;
        int64_t pos[SAA_MAX_TEXT_LEN];
        for (int t = 0; t < in.len; t++) pos[t] = in.position_ids[t];
        double t4 = now();
        gdino_text text = {in.len, hidden, in.self_attention_mask, pos};
        gdino_raw raw;
        gdino_timing tm;
        memset(&tm, 0, sizeof tm);
        if (gdino_run_timed(g, &im, &text, NULL, NULL, &raw, &tm) != SAA_OK) goto fail;
        double t5 = now();
        const double fl_swin = swin_flops(&cfg, oh, ow), fl_tr = transformer_flops(&cfg, &im, in.len);
        printf("run %d (%dx%d, %lld tokens, T=%d): preprocess %.3f  swin %.3f (%.0f GFLOP/s)  input_proj+pos %.3f  "
               "text %.3f  transformer %.3f (%.0f GFLOP/s)\n",
               r, oh, ow, (long long)im.lv.n_tokens, in.len, t1 - t0, t2 - t1, fl_swin * 1e-9 / (t2 - t1), t3 - t2,
               t4 - t3, t5 - t4, fl_tr * 1e-9 / (t5 - t4));
        printf("  transformer: fusion %.3f  text_enh %.3f  enc_deform %.3f  enc_ffn %.3f  query_select %.3f  "
               "decoder %.3f\n",
               tm.fusion, tm.text, tm.enc_deform, tm.enc_ffn, tm.query_select, tm.decoder);
        gdino_raw_free(&raw);
        gdino_image_free(&im);
        free(hidden);
        saa_text_input_free(&in);

        /* the public API end to end */
        saa_gdino_filter filt = {0.3f, 0.25f, 0.9f, 0.0f, "black"};
        saa_gdino_detections det;
        double a0 = now();
        if (saa_gdino_set_image(g, &img) != SAA_OK) goto fail;
        double a1 = now();
        if (saa_gdino_detect(g, caption, &filt, &det) != SAA_OK) goto fail;
        double a2 = now();
        const double total = a2 - a0, fl = fl_swin + fl_tr;
        if (total < best_total) best_total = total;
        printf("  API: set_image %.3f s + detect %.3f s = total %.3f s, %.0f GFLOP -> %.0f GFLOP/s (%d kept boxes)\n",
               a1 - a0, a2 - a1, total, fl * 1e-9, fl * 1e-9 / total, det.num_kept);
        saa_gdino_detections_free(&det);
    }
    printf("best total %.3f s; sgemm 4096x1024x256: %.1f GFLOP/s; threads %d; peak RSS %.0f MB\n", best_total, sgemm,
           saa_threads(), bench_peak_rss_mb());
    free(img.data);
    saa_gdino_free(g);
    return 0;
fail:
    fprintf(stderr, "bench_gdino: %s\n", saa_last_error());
    return 1;
}
