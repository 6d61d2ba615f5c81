/* Swin backbone benchmark: synthetic weights of the real Swin-T config (groundingdino_swint_ogc) on an
 * 800x1067 input (SAA+'s resize of a 4:3 image). Prints time, GFLOP/s, peak RSS, and a plain sgemm's
 * GFLOP/s for scale.  Usage: bench_swin [H W [runs]] (SAA_THREADS sets the thread count). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../src/models/swin.h"
#include "bench_util.h"
#include "saa/tensor.h"
#include "saa/weights.h"

/* CPU seconds of all threads of this process (less sensitive to other load than the wall clock) */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint32_t rng = 12345;
static float frand(void) /* uniform in [-1, 1) */
{
    rng = rng * 1664525u + 1013904223u;
    return (float)(rng >> 8) / 8388608.0f - 1.0f;
}

static int add(saa_weights *w, const char *name, int ndim, const int64_t *shape, float scale, float offset)
{
    saa_tensor *t = saa_tensor_new(SAA_F32, ndim, shape);
    if (!t) return SAA_ENOMEM;
    float *d = t->data;
    for (int64_t i = 0; i < saa_tensor_numel(t); i++) d[i] = offset + scale * frand();
    return saa_weights_add(w, name, t);
}

#define ADD(ndim, scale, offset, ...)                                                   \
    do {                                                                                \
        char nm[160];                                                                   \
        snprintf(nm, sizeof nm, __VA_ARGS__);                                           \
        if (add(w, nm, ndim, shp, scale, offset) != SAA_OK) return NULL;                \
    } while (0)

static saa_weights *synthetic_weights(const swin_config *c)
{
    saa_weights *w = saa_weights_alloc("synthetic-swin-t");
    if (!w) return NULL;
    int64_t E = c->embed_dim, ws = c->window_size, ps = c->patch_size;
    int64_t *shp;
    shp = (int64_t[]){E, 3, ps, ps};
    ADD(4, 0.1f, 0, "backbone.0.patch_embed.proj.weight");
    shp = (int64_t[]){E};
    ADD(1, 0.1f, 0, "backbone.0.patch_embed.proj.bias");
    ADD(1, 0.1f, 1, "backbone.0.patch_embed.norm.weight");
    ADD(1, 0.1f, 0, "backbone.0.patch_embed.norm.bias");
    for (int s = 0; s < c->num_stages; s++) {
        int64_t d = E << s, hd = (int64_t)(d * c->mlp_ratio), nh = c->num_heads[s];
        float sc = 1.0f / (float)d;
        for (int i = 0; i < c->depths[s]; i++) {
            const char *p = "backbone.0.layers";
            shp = (int64_t[]){d};
            ADD(1, 0.1f, 1, "%s.%d.blocks.%d.norm1.weight", p, s, i);
            ADD(1, 0.1f, 0, "%s.%d.blocks.%d.norm1.bias", p, s, i);
            ADD(1, 0.1f, 1, "%s.%d.blocks.%d.norm2.weight", p, s, i);
            ADD(1, 0.1f, 0, "%s.%d.blocks.%d.norm2.bias", p, s, i);
            ADD(1, 0.1f, 0, "%s.%d.blocks.%d.attn.proj.bias", p, s, i);
            ADD(1, 0.1f, 0, "%s.%d.blocks.%d.mlp.fc2.bias", p, s, i);
            shp = (int64_t[]){(2 * ws - 1) * (2 * ws - 1), nh};
            ADD(2, 0.5f, 0, "%s.%d.blocks.%d.attn.relative_position_bias_table", p, s, i);
            shp = (int64_t[]){3 * d, d};
            ADD(2, sc, 0, "%s.%d.blocks.%d.attn.qkv.weight", p, s, i);
            shp = (int64_t[]){3 * d};
            ADD(1, 0.1f, 0, "%s.%d.blocks.%d.attn.qkv.bias", p, s, i);
            shp = (int64_t[]){d, d};
            ADD(2, sc, 0, "%s.%d.blocks.%d.attn.proj.weight", p, s, i);
            shp = (int64_t[]){hd, d};
            ADD(2, sc, 0, "%s.%d.blocks.%d.mlp.fc1.weight", p, s, i);
            shp = (int64_t[]){hd};
            ADD(1, 0.1f, 0, "%s.%d.blocks.%d.mlp.fc1.bias", p, s, i);
            shp = (int64_t[]){d, hd};
            ADD(2, sc, 0, "%s.%d.blocks.%d.mlp.fc2.weight", p, s, i);
        }
        if (s < c->num_stages - 1) {
            shp = (int64_t[]){2 * d, 4 * d};
            ADD(2, sc, 0, "backbone.0.layers.%d.downsample.reduction.weight", s);
            shp = (int64_t[]){4 * d};
            ADD(1, 0.1f, 1, "backbone.0.layers.%d.downsample.norm.weight", s);
            ADD(1, 0.1f, 0, "backbone.0.layers.%d.downsample.norm.bias", s);
        }
        if (s >= 1) {
            shp = (int64_t[]){d};
            ADD(1, 0.1f, 1, "backbone.0.norm%d.weight", s);
            ADD(1, 0.1f, 0, "backbone.0.norm%d.bias", s);
        }
    }
    return w;
}

/* multiply-adds of one forward, times 2 */
static double swin_flops(const swin_config *c, int H, int W)
{
    int ws = c->window_size, n = ws * ws;
    int h = (H + c->patch_size - 1) / c->patch_size, w = (W + c->patch_size - 1) / c->patch_size;
    double macs = (double)h * w * 3 * c->patch_size * c->patch_size * c->embed_dim;
    for (int s = 0; s < c->num_stages; s++) {
        double C = (double)(c->embed_dim << s), T = (double)h * w;
        double Tp = (double)((h + ws - 1) / ws * ws) * ((w + ws - 1) / ws * ws);
        double hid = (double)(int)(C * c->mlp_ratio);
        macs += c->depths[s] * (Tp * C * 3 * C + 2 * Tp * n * C + Tp * C * C + 2 * T * C * hid);
        if (s < c->num_stages - 1) {
            h = (h + 1) / 2;
            w = (w + 1) / 2;
            macs += (double)h * w * 4 * C * 2 * C;
        }
    }
    return 2 * macs;
}

int main(int argc, char **argv)
{
    int H = argc > 2 ? atoi(argv[1]) : 800, W = argc > 2 ? atoi(argv[2]) : 1067;
    int runs = argc > 3 ? atoi(argv[3]) : 3;
    saa_threads_init();
    swin_config cfg;
    swin_config_swin_t(&cfg);
    saa_weights *w = synthetic_weights(&cfg);
    swin_model *m = NULL;
    if (!w || swin_load(w, "backbone.0.", &cfg, &m) != SAA_OK) {
        fprintf(stderr, "bench_swin: %s\n", saa_last_error());
        return 1;
    }
    float *img = malloc(sizeof(float) * 3 * (size_t)H * W);
    for (size_t i = 0; i < 3 * (size_t)H * W; i++) img[i] = 2.0f * frand();
    double best = 1e30, best_cpu = 1e30, flops = swin_flops(&cfg, H, W);
    for (int r = 0; r < runs; r++) {
        swin_features f;
        double t0 = bench_now(), c0 = cpu_now();
        if (swin_forward(m, img, H, W, &f) != SAA_OK) {
            fprintf(stderr, "bench_swin: %s\n", saa_last_error());
            return 1;
        }
        double t = bench_now() - t0, tc = cpu_now() - c0;
        if (t < best) best = t;
        if (tc < best_cpu) best_cpu = tc;
        if (r == 0)
            for (int l = 0; l < f.num_levels; l++) printf("level%d: [1, %d, %d, %d]\n", l, f.C[l], f.H[l], f.W[l]);
        swin_features_free(&f);
    }
    /* yardstick: plain OpenBLAS sgemm on the same threads, shape of the stage-0 MLP (tokens x 384 x 96) */
    double sgemm = bench_sgemm_gflops(4096, 384, 96, 0, 0.5);
    printf("swin-t %dx%d, %d threads: best of %d runs %.3f s (process CPU %.3f s), %.1f GFLOP -> %.1f GFLOP/s; "
           "sgemm 4096x384x96: %.1f GFLOP/s; peak RSS %.0f MB\n",
           H, W, saa_threads(), runs, best, best_cpu, flops * 1e-9, flops * 1e-9 / best, sgemm, bench_peak_rss_mb());
    free(img);
    swin_free(m);
    saa_weights_close(w);
    return 0;
}
