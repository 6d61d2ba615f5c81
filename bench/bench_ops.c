/* Core op throughput next to the machine's sgemm yardstick: conv2d shapes of WRN-50-2 and the ViT
 * patch embedding, conv_transpose2d, attention heads, and the elementwise/normalisation kernels.
 * Usage: bench_ops [repeats] (default 3; each entry reports the best run). */
#include <string.h>

#include "bench_util.h"

static int repeats = 3;

static float *filled(size_t n)
{
    float *p = malloc(n * sizeof *p);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) p[i] = (float)((i * 2654435761u) % 2001u) * 1e-3f - 1.0f;
    return p;
}

static void bench_conv(const char *what, int64_t C, int64_t H, int64_t W, int64_t O, int64_t K, saa_conv_params p)
{
    int64_t OH = saa_conv_out_size(H, (int)K, p.stride_h, p.pad_h, p.dil_h);
    int64_t OW = saa_conv_out_size(W, (int)K, p.stride_w, p.pad_w, p.dil_w);
    float *x = filled((size_t)(C * H * W)), *w = filled((size_t)(O * C / p.groups * K * K)), *b = filled((size_t)O);
    float *y = filled((size_t)(O * OH * OW));
    double best = 1e30;
    for (int r = 0; r < repeats; r++) {
        double t0 = bench_now();
        saa_conv2d(x, 1, C, H, W, w, O, K, K, b, p, y);
        double t = bench_now() - t0;
        if (t < best) best = t;
    }
    double flops = 2.0 * O * OH * OW * (C / p.groups) * K * K;
    printf("%-44s %9.2f ms %8.1f GF/s\n", what, best * 1e3, flops / best * 1e-9);
    free(x), free(w), free(b), free(y);
}

int main(int argc, char **argv)
{
    if (argc > 1) repeats = atoi(argv[1]) > 0 ? atoi(argv[1]) : 1;
    saa_threads_init();
    printf("threads %d; sgemm yardstick 2048^3: %.1f GF/s\n\n", saa_threads(),
           bench_sgemm_gflops(2048, 2048, 2048, 0, 0.5));

    saa_conv_params s1 = {1, 1, 1, 1, 1, 1, 1}, s1p0 = {1, 1, 0, 0, 1, 1, 1}, s2 = {2, 2, 1, 1, 1, 1, 1};
    bench_conv("conv 3x3 128->128 64x64 (WRN layer2)", 128, 64, 64, 128, 3, s1);
    bench_conv("conv 3x3 256->256 32x32 (WRN layer3)", 256, 32, 32, 256, 3, s1);
    bench_conv("conv 3x3 s2 256->256 64x64", 256, 64, 64, 256, 3, s2);
    bench_conv("conv 1x1 512->1024 32x32 (direct GEMM)", 512, 32, 32, 1024, 1, s1p0);
    bench_conv("conv 7x7 s2 3->64 256x256 (WRN stem)", 3, 256, 256, 64, 7, (saa_conv_params){2, 2, 3, 3, 1, 1, 1});
    bench_conv("conv 16x16 s16 3->1280 1024x1024 (ViT-H)", 3, 1024, 1024, 1280, 16,
               (saa_conv_params){16, 16, 0, 0, 1, 1, 1});
    bench_conv("conv 3x3 depthwise 256 64x64", 256, 64, 64, 256, 3, (saa_conv_params){1, 1, 1, 1, 1, 1, 256});

    {   /* SAM mask decoder upscaling at ViT-H size: 256 -> 64, 2x2 s2, 64x64 */
        float *x = filled(256 * 64 * 64), *w = filled(256 * 64 * 4), *y = filled(64 * 128 * 128);
        double best = 1e30;
        for (int r = 0; r < repeats; r++) {
            double t0 = bench_now();
            saa_conv_transpose2d(x, 1, 256, 64, 64, w, 64, 2, 2, NULL, 2, 0, y);
            double t = bench_now() - t0;
            if (t < best) best = t;
        }
        printf("%-44s %9.2f ms %8.1f GF/s\n", "conv_transpose 2x2 s2 256->64 64x64", best * 1e3,
               2.0 * 256 * 64 * 4 * 64 * 64 / best * 1e-9);
        free(x), free(w), free(y);
    }
    {   /* attention: ViT-H global block head (4096 tokens, 80 dims) and a 14x14 window head */
        int64_t Ls[2] = {4096, 196};
        for (int i = 0; i < 2; i++) {
            int64_t L = Ls[i], d = 80;
            float *q = filled((size_t)(L * d)), *k = filled((size_t)(L * d)), *v = filled((size_t)(L * d));
            float *o = filled((size_t)(L * d)), *s = filled((size_t)(L * L));
            int inner = i ? 64 : 1;
            double best = 1e30;
            for (int r = 0; r < repeats; r++) {
                double t0 = bench_now();
                for (int j = 0; j < inner; j++) saa_attention_head(q, d, k, d, v, d, L, L, d, d, 0.11f, NULL, o, d, s);
                double t = (bench_now() - t0) / inner;
                if (t < best) best = t;
            }
            char what[64];
            snprintf(what, sizeof what, "attention head L=%ld d=80", (long)L);
            printf("%-44s %9.3f ms %8.1f GF/s\n", what, best * 1e3, 4.0 * L * L * d / best * 1e-9);
            free(q), free(k), free(v), free(o), free(s);
        }
    }
    {   /* elementwise / normalisation on a ViT-H MLP activation (4096 x 5120) */
        int64_t rows = 4096, cols = 5120, n = rows * cols;
        float *x = filled((size_t)n), *w = filled((size_t)cols), *b = filled((size_t)cols);
        struct {
            const char *what;
            int op;
        } ops[] = {{"gelu_erf", 0}, {"softmax_rows (rows of 5120)", 1}, {"layer_norm (rows of 5120)", 2},
                   {"sigmoid", 3}, {"layer_norm2d (5120 ch x 4096 px)", 4}};
        for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
            double best = 1e30;
            for (int r = 0; r < repeats; r++) {
                double t0 = bench_now();
                switch (ops[i].op) {
                case 0: saa_gelu_erf(x, n); break;
                case 1: saa_softmax_rows(x, rows, cols); break;
                case 2: saa_layer_norm(x, rows, cols, w, b, 1e-6f, x); break;
                case 3: saa_sigmoid(x, n); break;
                default: saa_layer_norm2d(x, cols, rows, w, b, 1e-6f, x); break;
                }
                double t = bench_now() - t0;
                if (t < best) best = t;
            }
            printf("%-44s %9.2f ms %8.2f ns/element\n", ops[i].what, best * 1e3, best * 1e9 / (double)n);
        }
        free(x), free(w), free(b);
    }
    printf("\npeak RSS %.1f MiB\n", bench_peak_rss_mb());
    return 0;
}
