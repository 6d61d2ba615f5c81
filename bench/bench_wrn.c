/* WideResNet-50-2 saliency at the real model size with synthetic weights (timm wide_resnet50_2:
 * stem 64, planes 64/128/256, blocks 3/4/6, width_per_group 128): model build (BN folding), the
 * backbone at 256 and 1024, the single-instance heat (256) and the multi-instance map (1024), with
 * GFLOP/s next to the sgemm yardstick and the peak RSS.
 * Usage: bench_wrn [mask_fraction] (each of the two object masks covers this fraction of the image,
 * default 0.0625; the multi-instance cost grows with the square of the masked area). */
#include <math.h>
#include <string.h>

#include "bench_util.h"
#include "saa/weights.h"
#include "saa/wrn.h"

static uint32_t seed = 12345;
static float frand(void)
{
    seed = seed * 1664525u + 1013904223u;
    return (float)(seed >> 8) / 16777216.0f;
}

static void add(saa_weights *w, const char *name, int ndim, const int64_t *shape, float lo, float hi)
{
    saa_tensor *t = saa_tensor_new(SAA_F32, ndim, shape);
    if (!t) exit(1);
    float *d = t->data;
    for (int64_t i = 0; i < saa_tensor_numel(t); i++) d[i] = lo + (hi - lo) * frand();
    if (saa_weights_add(w, name, t) != SAA_OK) exit(1);
}


static void add_conv_bn(saa_weights *w, const char *conv, const char *bn, int64_t O, int64_t C, int64_t K)
{
    char n[128];
    float s = 1.7f / sqrtf((float)(C * K * K));
    snprintf(n, sizeof n, "%s.weight", conv);
    add(w, n, 4, (int64_t[]){O, C, K, K}, -s, s);
    const char *suffix[4] = {"weight", "bias", "running_mean", "running_var"};
    const float lo[4] = {0.5f, -0.2f, -0.2f, 0.5f}, hi[4] = {1.5f, 0.3f, 0.2f, 1.5f};
    for (int i = 0; i < 4; i++) {
        snprintf(n, sizeof n, "%s.%s", bn, suffix[i]);
        add(w, n, 1, &O, lo[i], hi[i]);
    }
}

static const int BLOCKS[3] = {3, 4, 6};
static const int64_t PLANES[3] = {64, 128, 256};

static saa_weights *make_wrn50_2(void)
{
    saa_weights *w = saa_weights_alloc("synthetic wide_resnet50_2");
    add_conv_bn(w, "conv1", "bn1", 64, 3, 7);
    int64_t in = 64;
    char a[64], b[64];
    for (int l = 0; l < 3; l++) {
        int64_t width = PLANES[l] * 2, out = PLANES[l] * 4;
        for (int i = 0; i < BLOCKS[l]; i++) {
            snprintf(a, sizeof a, "layer%d.%d.conv1", l + 1, i), snprintf(b, sizeof b, "layer%d.%d.bn1", l + 1, i);
            add_conv_bn(w, a, b, width, in, 1);
            snprintf(a, sizeof a, "layer%d.%d.conv2", l + 1, i), snprintf(b, sizeof b, "layer%d.%d.bn2", l + 1, i);
            add_conv_bn(w, a, b, width, width, 3);
            snprintf(a, sizeof a, "layer%d.%d.conv3", l + 1, i), snprintf(b, sizeof b, "layer%d.%d.bn3", l + 1, i);
            add_conv_bn(w, a, b, out, width, 1);
            if (i == 0) {
                snprintf(a, sizeof a, "layer%d.%d.downsample.0", l + 1, i);
                snprintf(b, sizeof b, "layer%d.%d.downsample.1", l + 1, i);
                add_conv_bn(w, a, b, out, in, 1);
            }
            in = out;
        }
    }
    return w;
}

/* FLOPs (2 per multiply-add) of the stem and layers 1-3 for an S x S input. */
static double backbone_flops(int64_t S)
{
    int64_t h = (S + 6 - 7) / 2 + 1;
    double f = 2.0 * 64 * 3 * 49 * h * h;
    h = (h + 2 - 3) / 2 + 1;
    int64_t in = 64;
    for (int l = 0; l < 3; l++) {
        int64_t width = PLANES[l] * 2, out = PLANES[l] * 4;
        for (int i = 0; i < BLOCKS[l]; i++) {
            int64_t oh = (l > 0 && i == 0) ? (h - 1) / 2 + 1 : h;
            f += 2.0 * width * in * h * h + 2.0 * width * width * 9 * oh * oh + 2.0 * out * width * oh * oh;
            if (i == 0) f += 2.0 * out * in * oh * oh;
            in = out;
            h = oh;
        }
    }
    return f;
}

static void features_at(const saa_wrn *m, int S, saa_wrn_features *f, const char *label)
{
    uint8_t *img = malloc((size_t)S * S * 3);
    float *x = malloc(sizeof(float) * 3 * (size_t)S * S);
    for (size_t i = 0; i < (size_t)S * S * 3; i++) img[i] = (uint8_t)(frand() * 256);
    double t0 = bench_now();
    if (saa_wrn_preprocess(img, S, S, S, x, NULL) != SAA_OK || saa_wrn_features_compute(m, x, S, S, f) != SAA_OK) {
        fprintf(stderr, "%s\n", saa_last_error());
        exit(1);
    }
    double t = bench_now() - t0, fl = backbone_flops(S);
    printf("%-40s %9.1f ms %7.1f GFLOP  %6.1f GF/s  peak RSS %7.0f MB\n", label, t * 1e3, fl * 1e-9, fl / t * 1e-9,
           bench_peak_rss_mb());
    free(img);
    free(x);
}

int main(int argc, char **argv)
{
    double frac = argc > 1 ? atof(argv[1]) : 0.0625;
    saa_threads_init();
    printf("threads %d; sgemm yardstick 2048^3: %.1f GF/s\n\n", saa_threads(),
           bench_sgemm_gflops(2048, 2048, 2048, 0, 0.5));
    saa_weights *w = make_wrn50_2();
    double t0 = bench_now();
    saa_wrn *m;
    if (saa_wrn_load(w, "", &m) != SAA_OK) {
        fprintf(stderr, "%s\n", saa_last_error());
        return 1;
    }
    printf("%-40s %9.1f ms  peak RSS %7.0f MB\n", "build model (bind + fold BN)", (bench_now() - t0) * 1e3,
           bench_peak_rss_mb());
    saa_weights_close(w);

    saa_wrn_features f;
    features_at(m, 256, &f, "backbone 256 (single path)");
    int64_t hw = f.H[0] * f.W[0];
    float *heat = malloc(sizeof(float) * (size_t)hw);
    t0 = bench_now();
    saa_wrn_single_heat(&f, 400, heat);
    double t = bench_now() - t0, fl = 2.0 * (double)hw * hw * f.fused_C;
    printf("%-40s %9.1f ms %7.1f GFLOP  %6.1f GF/s  peak RSS %7.0f MB\n", "single heat 64x64 (top-400)", t * 1e3,
           fl * 1e-9, fl / t * 1e-9, bench_peak_rss_mb());
    free(heat);
    saa_wrn_features_free(&f);

    features_at(m, 1024, &f, "backbone 1024 (multi path)");
    hw = f.H[0] * f.W[0];
    /* two square object masks side by side, each frac of the grid */
    int64_t side = (int64_t)(sqrt(frac) * (double)f.W[0]);
    uint8_t *masks = calloc((size_t)(2 * hw), 1);
    for (int64_t y = 0; y < side; y++)
        for (int64_t x = 0; x < side; x++) {
            masks[y * f.W[0] + x] = 1;
            masks[hw + (f.H[0] - 1 - y) * f.W[0] + (f.W[0] - 1 - x)] = 1;
        }
    double *map = malloc(sizeof(double) * (size_t)hw);
    t0 = bench_now();
    if (saa_wrn_multi_map(&f, masks, 2, NULL, map) != SAA_OK) fprintf(stderr, "%s\n", saa_last_error());
    t = bench_now() - t0;
    double u = 2.0 * (double)(side * side);
    fl = u * u * f.fused_C; /* upper triangle of the union, 2 FLOPs per multiply-add */
    char label[96];
    snprintf(label, sizeof label, "multi map 256x256, 2 masks of %lld px", (long long)(side * side));
    printf("%-40s %9.1f ms %7.1f GFLOP  %6.1f GF/s  peak RSS %7.0f MB\n", label, t * 1e3, fl * 1e-9, fl / t * 1e-9,
           bench_peak_rss_mb());
    free(masks);
    free(map);
    saa_wrn_features_free(&f);
    saa_wrn_free(m);
    return 0;
}
