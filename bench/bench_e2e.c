/* SAA+ end to end: time per image and peak RSS with synthetic weights of the real sizes (SAM vit_h, Grounding
 * DINO Swin-T OGC + BERT-base, WideResNet-50-2) for the MVTec bottle preset on a 900x900 image (MVTec's size),
 * broken down by stage, plus the model loading time (memory-mapped fp32 safetensors).
 *
 *   bench_e2e VOCAB.txt [MODEL_DIR] [runs]      (vocab: shared/golden/tokenizer/vocab.txt)
 *
 * The synthetic model files are written to MODEL_DIR (default /tmp/saa-bench-models) by a child process the
 * first time, so the peak RSS reported is that of loading and running only.
 * BENCH_BOX_THRESHOLD / BENCH_TEXT_THRESHOLD override the SAA+ defaults (0.1 / 0.1): random weights do not give
 * the score distribution of the released models, so the number of surviving boxes is printed with the times.
 * Targets (issue 5): <= 45 s per image, <= 4.5 GB peak RSS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* the Grounding DINO synthetic weights (real Swin-T OGC + BERT-base shapes) of bench_gdino.c, reused whole */
#define main bench_gdino_main
#include "bench_gdino.c"
#undef main

#include "saa/image.h"
#include "saa/saa.h"
#include "saa/sam.h"

/* timm wide_resnet50_2 names and shapes up to layer3 (what ModelINet uses; layer4/fc are never run) */
static void synth_bn(saa_weights *w, int64_t C, const char *name)
{
    add(w, W_ONE, ND(C), "%s.weight", name);
    add(w, W_BIAS, ND(C), "%s.bias", name);
    add(w, W_SMALL, ND(C), "%s.running_mean", name);
    add(w, W_ONE, ND(C), "%s.running_var", name);
}

static void synth_wrn50(saa_weights *w)
{
    add(w, W_LIN, ND(64, 3, 7, 7), "conv1.weight");
    synth_bn(w, 64, "bn1");
    const int blocks[3] = {3, 4, 6};
    int64_t inplanes = 64;
    for (int l = 0; l < 3; l++) {
        const int64_t planes = 64 << l, width = planes * 2, out = planes * 4; /* width_per_group 128 */
        for (int b = 0; b < blocks[l]; b++) {
            char p[64], n[96];
            snprintf(p, sizeof p, "layer%d.%d", l + 1, b);
            add(w, W_LIN, ND(width, inplanes, 1, 1), "%s.conv1.weight", p);
            snprintf(n, sizeof n, "%s.bn1", p), synth_bn(w, width, n);
            add(w, W_LIN, ND(width, width, 3, 3), "%s.conv2.weight", p);
            snprintf(n, sizeof n, "%s.bn2", p), synth_bn(w, width, n);
            add(w, W_LIN, ND(out, width, 1, 1), "%s.conv3.weight", p);
            snprintf(n, sizeof n, "%s.bn3", p), synth_bn(w, out, n);
            if (b == 0) {
                add(w, W_LIN, ND(out, inplanes, 1, 1), "%s.downsample.0.weight", p);
                snprintf(n, sizeof n, "%s.downsample.1", p), synth_bn(w, out, n);
            }
            inplanes = out;
        }
    }
}

static int write_map(saa_weights *w, const char *path)
{
    int n = saa_weights_count(w);
    const char **names = malloc(sizeof *names * (size_t)n);
    const saa_tensor **ts = malloc(sizeof *ts * (size_t)n);
    int rc = names && ts ? SAA_OK : SAA_ENOMEM;
    for (int i = 0; rc == SAA_OK && i < n; i++) names[i] = saa_weights_name(w, i), ts[i] = saa_weights_at(w, i);
    if (rc == SAA_OK) rc = saa_safetensors_write(path, n, names, ts);
    free(names), free(ts);
    saa_weights_close(w);
    return rc;
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* runs in a child process: writes every missing synthetic model file */
static int make_models(const char *sam, const char *gd, const char *wrn)
{
    if (!exists(sam)) {
        saa_sam_config sc;
        saa_weights *w;
        saa_sam_config_preset("vit_h", &sc);
        if (saa_sam_random_weights(&sc, 1, 0.02f, &w) != SAA_OK || write_map(w, sam) != SAA_OK) return 1;
    }
    if (!exists(gd)) {
        saa_gdino_config cfg;
        saa_gdino_config_preset("swint_ogc", &cfg);
        saa_weights *w = saa_weights_alloc("synthetic-gdino");
        synth_transformer(w, &cfg);
        synth_swin(w, &cfg);
        synth_bert(w, &cfg);
        if (write_map(w, gd) != SAA_OK) return 1;
    }
    if (!exists(wrn)) {
        saa_weights *w = saa_weights_alloc("synthetic-wrn");
        synth_wrn50(w);
        if (write_map(w, wrn) != SAA_OK) return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_e2e VOCAB.txt [MODEL_DIR] [runs]\n");
        return 2;
    }
    saa_threads_init();
    const char *dir = argc > 2 ? argv[2] : "/tmp/saa-bench-models";
    const int runs = argc > 3 ? atoi(argv[3]) : 1;
    char sam[4096], gd[4096], wrn[4096];
    snprintf(sam, sizeof sam, "%s/sam_vit_h_synthetic.safetensors", dir);
    snprintf(gd, sizeof gd, "%s/groundingdino_swint_ogc_synthetic.safetensors", dir);
    snprintf(wrn, sizeof wrn, "%s/wide_resnet50_2_synthetic.safetensors", dir);
    if (!exists(sam) || !exists(gd) || !exists(wrn)) {
        mkdir(dir, 0777);
        fprintf(stderr, "bench_e2e: writing synthetic model files to %s ...\n", dir);
        pid_t pid = fork();
        if (pid == 0) _exit(make_models(sam, gd, wrn));
        int st = 0;
        if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
            fprintf(stderr, "bench_e2e: writing the synthetic models failed\n");
            return 1;
        }
    }
    double t0 = bench_now();
    saa_model_files mf = {.sam = sam, .gdino = gd, .wrn = wrn, .vocab = argv[1]};
    saa_models *m;
    if (saa_models_load(&mf, &m) != SAA_OK) {
        fprintf(stderr, "bench_e2e: %s\n", saa_last_error());
        return 1;
    }
    const double load = bench_now() - t0;
    saa_category cat;
    if (saa_category_load(saa_presets_dir(argv[0]), "mvtec/bottle", 0, &cat) != SAA_OK) {
        fprintf(stderr, "bench_e2e: %s\n", saa_last_error());
        return 1;
    }
    const int S = 900;
    saa_image img = {S, S, 3, malloc((size_t)S * S * 3)};
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            int d = (x - S / 2) * (x - S / 2) + (y - S / 2) * (y - S / 2); /* a bright disc on a dark ground */
            for (int ch = 0; ch < 3; ch++)
                img.data[((size_t)y * S + x) * 3 + ch] =
                    (uint8_t)(d < 300 * 300 ? 180 + ch * 20 + (x * y) % 13 : 20 + (x + 2 * y + ch * 7) % 23);
        }
    saa_options o;
    saa_options_init(&o);
    if (getenv("BENCH_BOX_THRESHOLD")) o.box_threshold = (float)atof(getenv("BENCH_BOX_THRESHOLD"));
    if (getenv("BENCH_TEXT_THRESHOLD")) o.text_threshold = (float)atof(getenv("BENCH_TEXT_THRESHOLD"));
    printf("models loaded in %.2f s (mmap); category bottle: %d captions + object; %d threads\n", load,
           cat.n_prompts, saa_threads());
    for (int r = 0; r < runs; r++) {
        saa_result res;
        if (saa_segment(m, &cat, &o, &img, &res) != SAA_OK) {
            fprintf(stderr, "bench_e2e: %s\n", saa_last_error());
            return 1;
        }
        int n_obj = 0, n_def = 0;
        for (int i = 0; i < res.n_regions; i++) {
            n_obj += !strcmp(res.regions[i].status, "object");
            n_def += res.regions[i].pass == 1 && (!strcmp(res.regions[i].status, "fused") ||
                                                  !strcmp(res.regions[i].status, "not-top-k"));
        }
        printf("run %d: %d regions scored, %d object + %d defect masks; detector %.2f s, SAM encoder %.2f s, "
               "SAM decoder %.2f s, saliency %.2f s (%s), rescore+fusion %.2f s, total %.2f s\n",
               r, res.n_regions, n_obj, n_def, res.seconds[0], res.seconds[1], res.seconds[2], res.seconds[3],
               res.saliency_mode, res.seconds[4], res.seconds[5]);
        saa_result_free(&res);
    }
    printf("peak RSS %.0f MB\n", bench_peak_rss_mb());
    free(img.data);
    saa_category_free(&cat);
    saa_models_free(m);
    return 0;
}
