/* SAM benchmark (not a test): the real vit_b and vit_h configs with random weights (no file), one
 * 1024x1024 image through the image encoder, 8 boxes through prompt encoder + mask decoder, peak RSS,
 * and the encoder's achieved GFLOP/s next to this machine's OpenBLAS sgemm GFLOP/s.
 *
 *   build/bench/bench_sam [vit_b|vit_h ...]      (default: vit_b vit_h; each model in its own process
 *                                                  so peak RSS is per model; SAA_THREADS sets threads) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "saa/sam.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double peak_rss_gb(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_maxrss / (1024.0 * 1024.0); /* ru_maxrss is in KB on Linux */
}

/* Multiply-adds counted as 2 FLOPs. useful: the convention of the issue (linears over the real
 * tokens, attention over whole windows, rel-pos terms not counted: vit_b 0.94, vit_h 5.65 TFLOP);
 * executed: what this code runs (qkv of the zero-padded window tokens and the rel-pos products too). */
static double encoder_flops(const saa_sam_config *c, int executed)
{
    double C = c->embed_dim, G = c->img_size / c->patch_size, T = G * G, hd = C / c->num_heads, H = c->num_heads;
    double f = 2.0 * T * C * (3.0 * c->patch_size * c->patch_size);
    for (int i = 0; i < c->depth; i++) {
        int global = 0;
        for (int k = 0; k < c->n_global; k++) global |= c->global_attn_indexes[k] == i;
        double S = global ? G : c->window_size, nw = global ? 1 : (double)((int)(G + S - 1) / (int)S);
        double grids = nw * nw, L = S * S, rows = executed ? grids * L : T;
        f += 2.0 * rows * C * 3 * C;                               /* qkv */
        f += grids * H * (2.0 * L * L * hd * 2);                   /* q k^T and attn v */
        if (executed) f += grids * H * (2.0 * L * S * hd * 2);     /* rel-pos terms q.Rh, q.Rw */
        f += 2.0 * T * C * C + 2.0 * T * C * c->mlp_dim * 2;       /* proj, MLP */
    }
    f += 2.0 * T * C * c->out_chans + 2.0 * T * c->out_chans * c->out_chans * 9; /* neck */
    return f;
}

static double sgemm_gflops(void)
{
    int n = 2048;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n), *c = malloc(sizeof(float) * n * n);
    for (int i = 0; i < n * n; i++) a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.1f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n); /* warm up */
    int reps = 5;
    double t0 = now();
    for (int r = 0; r < reps; r++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    double dt = now() - t0;
    free(a), free(b), free(c);
    return 2.0 * n * (double)n * n * reps / dt / 1e9;
}

static int run(const char *preset)
{
    saa_sam_config cfg;
    if (saa_sam_config_preset(preset, &cfg) != SAA_OK) {
        fprintf(stderr, "bench_sam: %s\n", saa_last_error());
        return 1;
    }
    double t0 = now();
    saa_weights *w;
    saa_sam *m;
    if (saa_sam_random_weights(&cfg, 1, 0.02f, &w) != SAA_OK || saa_sam_from_weights(w, 1, &cfg, &m) != SAA_OK) {
        fprintf(stderr, "bench_sam: %s\n", saa_last_error());
        return 1;
    }
    double t_build = now() - t0;
    double rss_weights = peak_rss_gb();
    /* measured right before the encoder, under the same machine load */
    double sgemm = sgemm_gflops();
    saa_image img = {1024, 1024, 3, malloc(1024 * 1024 * 3)};
    for (int i = 0; i < 1024 * 1024 * 3; i++) img.data[i] = (uint8_t)((i * 2654435761u) >> 24);
    t0 = now();
    double c0 = cpu_now();
    if (saa_sam_set_image(m, &img) != SAA_OK) {
        fprintf(stderr, "bench_sam: %s\n", saa_last_error());
        return 1;
    }
    double t_enc = now() - t0, c_enc = cpu_now() - c0;
    float boxes[8 * 4];
    for (int i = 0; i < 8; i++) {
        boxes[i * 4 + 0] = 40.0f + 90.0f * i, boxes[i * 4 + 1] = 30.0f + 70.0f * i;
        boxes[i * 4 + 2] = boxes[i * 4 + 0] + 200.0f, boxes[i * 4 + 3] = boxes[i * 4 + 1] + 150.0f;
    }
    saa_sam_prompt p = {8, 0, NULL, NULL, boxes, 0, SAA_SAM_COORDS_F32};
    saa_sam_masks r;
    saa_sam_decode(m, &p, &r); /* warm up */
    saa_sam_masks_free(&r);
    int reps = 3;
    t0 = now();
    c0 = cpu_now();
    for (int i = 0; i < reps; i++) {
        saa_sam_decode(m, &p, &r);
        saa_sam_masks_free(&r);
    }
    double t_dec = (now() - t0) / reps, c_dec = (cpu_now() - c0) / reps;
    t0 = now();
    saa_sam_predict(m, &p, &r);
    double t_pred = now() - t0;
    saa_sam_masks_free(&r);
    double flops = encoder_flops(&cfg, 0), flops_exec = encoder_flops(&cfg, 1);
    printf("%s: embed %d depth %d heads %d (weights built in %.1f s, RSS after weights %.2f GB)\n", preset,
           cfg.embed_dim, cfg.depth, cfg.num_heads, t_build, rss_weights);
    printf("  image encoder, 1024x1024 image   : %7.2f s wall (%.2f s CPU over %d threads)\n", t_enc, c_enc, saa_threads());
    printf("    %.3f TFLOP (%.3f executed incl. window padding + rel-pos) -> %.1f GFLOP/s (%.1f executed) vs sgemm "
           "%.1f GFLOP/s: %.0f%%; per CPU-second %.1f GFLOP/s\n",
           flops / 1e12, flops_exec / 1e12, flops / t_enc / 1e9, flops_exec / t_enc / 1e9, sgemm,
           100.0 * flops / t_enc / 1e9 / sgemm, flops / c_enc / 1e9);
    printf("  prompt encoder + decoder, 8 boxes: %7.3f s wall (%.3f s CPU); predict incl. postprocess to the "
           "original size: %.3f s\n", t_dec, c_dec, t_pred);
    printf("  peak RSS                        : %7.2f GB\n", peak_rss_gb());
    free(img.data);
    saa_sam_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    saa_threads_init();
    printf("threads %d (sgemm = OpenBLAS sgemm 2048^3 on these threads, measured before each encoder run)\n",
           saa_threads());
    fflush(stdout);
    const char *defaults[] = {"vit_b", "vit_h"};
    int n = argc > 1 ? argc - 1 : 2;
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const char *preset = argc > 1 ? argv[i + 1] : defaults[i];
        pid_t pid = fork();
        if (pid == 0) {
            int r = run(preset);
            fflush(stdout);
            _exit(r);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status)) rc = 1;
    }
    return rc;
}
