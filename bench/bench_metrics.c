/* Times the evaluation protocol on a synthetic category: N maps of R x R (default 167 x 400 x 400, the
 * largest MVTec-AD test category), SAA+-like maps (a few constant blobs, bilinear-ish ramps at their edges,
 * plus optional noise), masks with 0-3 defects.
 * usage: bench_metrics [N] [R] [noise 0/1/2] [score-memory MB] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "saa/metrics.h"
#include "saa/tensor.h"

typedef struct {
    int R, noise;
} ctx;

static uint32_t hash(uint32_t x)
{
    x ^= x >> 16, x *= 0x7feb352d, x ^= x >> 15, x *= 0x846ca68b, x ^= x >> 16;
    return x;
}

static int loader(void *vc, int64_t i, double *map, uint8_t *mask, int *label)
{
    const ctx *c = vc;
    int R = c->R;
    uint32_t h = hash((uint32_t)i * 7919u + 1);
    int ndef = (int)(h % 4);
    *label = ndef > 0;
    memset(mask, 0, (size_t)R * R);
    for (size_t p = 0; p < (size_t)R * R; p++) map[p] = 0;
    for (int k = 0; k < ndef + 2; k++) { /* defects and false-positive blobs */
        uint32_t g = hash(h + 31u * (uint32_t)k);
        int cx = (int)(g % (uint32_t)R), cy = (int)((g >> 10) % (uint32_t)R), rad = 3 + (int)((g >> 20) % 30);
        double score = 0.2 + 0.8 * ((g >> 8) % 1000) / 1000.0;
        for (int y = cy - rad - 2; y <= cy + rad + 2; y++)
            for (int x = cx - rad - 2; x <= cx + rad + 2; x++) {
                if (y < 0 || x < 0 || y >= R || x >= R) continue;
                double d = sqrt((double)(x - cx) * (x - cx) + (double)(y - cy) * (y - cy));
                double w = d <= rad ? 1.0 : d >= rad + 2 ? 0.0 : (rad + 2 - d) / 2.0;
                size_t p = (size_t)y * R + x;
                if (w > 0) map[p] = fmax(map[p], score * w);
                if (k < ndef && d <= rad) mask[p] = 1;
            }
    }
    /* noise 1: 1e5 levels; noise 2: 2^24 levels (nearly every pixel score distinct: the memory worst case) */
    if (c->noise == 1)
        for (size_t p = 0; p < (size_t)R * R; p++) map[p] += 1e-3 * (hash((uint32_t)(i * R * R + p)) % 100000) / 1e5;
    if (c->noise == 2)
        for (size_t p = 0; p < (size_t)R * R; p++)
            map[p] += 1e-3 * (hash((uint32_t)(i * R * R + p)) & 0xffffff) / 16777216.0;
    return SAA_OK;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 167, R = argc > 2 ? atoi(argv[2]) : 400;
    ctx c = {R, argc > 3 ? atoi(argv[3]) : 0};
    saa_eval_params p;
    saa_eval_params_default(&p);
    p.resolution = R;
    if (argc > 4) p.memory_entries = (int64_t)(atof(argv[4]) * 1e6 / 24) + 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    clock_t c0 = clock();
    saa_metrics m;
    if (saa_metrics_compute(&p, n, loader, &c, NULL, NULL, &m) != SAA_OK) {
        fprintf(stderr, "%s\n", saa_last_error());
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%d images %dx%d noise=%d: wall %.2fs cpu %.2fs (%.1f ms cpu/image), peak RSS %.1f MB\n", n, R, R, c.noise,
           wall, (double)(clock() - c0) / CLOCKS_PER_SEC, 1e3 * (double)(clock() - c0) / CLOCKS_PER_SEC / n,
           ru.ru_maxrss / 1024.0);
    printf("image_auroc %.4f pixel_auroc %.4f pixel_ap %.4f pixel_f1 %.4f aupro %.4f aupro_official %.4f f_r %.4f "
           "f_r_official %.4f\n",
           m.image_auroc, m.pixel_auroc, m.pixel_ap, m.pixel_f1, m.aupro, m.aupro_official, m.f_r, m.f_r_official);
    saa_metrics_free(&m);
    return 0;
}
