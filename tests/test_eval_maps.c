/* saa_eval_maps on a generated MVTec-style tree with .npy maps equal to the masks (a perfect
 * predictor at the evaluation size): every ranking metric, AU-PRO and both region F1 are exactly 1;
 * the official AUPRO is undefined (every FPR on the grid is 0, so its min-max rescale is 0/0).
 * Then the same maps at twice the size as saa segment's STEM_map.npy: the default (linear, the model's
 * own resize) halves 2x2 blocks exactly, so the normalised GT scores are exactly 1 again, whereas the
 * evaluation's cubic resize overshoots at the edges. Then saa's outputs at another --out-size: the
 * STEM_map_full.npy beside a STEM_map.npy that is not R x R is evaluated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "saa/datasets.h"
#include "saa/eval.h"
#include "saa/image.h"
#include "saa/npy.h"
#include "saa/tensor.h"
#include "test.h"

#define R 16

static char root[256];

static void path(char *p, size_t n, const char *rel) { snprintf(p, n, "%s/%s", root, rel); }

int main(void)
{
    snprintf(root, sizeof root, "/tmp/saa_test_eval_maps_XXXXXX");
    if (!mkdtemp(root)) return 1;
    const char *dirs[] = {"cat", "cat/test", "cat/test/good", "cat/test/hole", "cat/ground_truth",
                          "cat/ground_truth/hole", "maps", "maps/cat", "maps/cat/good", "maps/cat/hole"};
    char p[512];
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) path(p, sizeof p, dirs[i]), mkdir(p, 0755);
    uint8_t img[R * R] = {0}, mask[R * R];
    float map[R * R];
    int64_t shape[2] = {R, R};
    for (int k = 0; k < 4; k++) {
        int anomalous = k >= 2;
        char rel[128];
        snprintf(rel, sizeof rel, "cat/test/%s/%03d.png", anomalous ? "hole" : "good", k);
        path(p, sizeof p, rel);
        CHECK(saa_png_save_u8(p, img, R, R, 1) == SAA_OK);
        memset(mask, 0, sizeof mask);
        if (anomalous) /* two blobs in image 2, one in image 3 */
            for (int y = 2; y < 6; y++)
                for (int x = 3 + k; x < 8 + k; x++) mask[y * R + x] = 255, mask[(y + 8) * R + x - 2] = k == 2 ? 255 : 0;
        if (anomalous) {
            snprintf(rel, sizeof rel, "cat/ground_truth/hole/%03d_mask.png", k);
            path(p, sizeof p, rel);
            CHECK(saa_png_save_u8(p, mask, R, R, 1) == SAA_OK);
        }
        for (int i = 0; i < R * R; i++) map[i] = mask[i] ? 0.75f : 0.125f;
        snprintf(rel, sizeof rel, "maps/cat/%s/%03d.npy", anomalous ? "hole" : "good", k);
        path(p, sizeof p, rel);
        CHECK(saa_npy_save_f32(p, map, 2, shape) == SAA_OK);
    }
    saa_dataset d;
    CHECK(saa_dataset_open(SAA_DS_MVTEC, root, "cat", NULL, &d) == SAA_OK);
    CHECK(d.n == 4);
    saa_eval_params prm;
    saa_eval_params_default(&prm);
    prm.resolution = R;
    saa_metrics m;
    path(p, sizeof p, "maps");
    int rc = saa_eval_maps(&d, p, &prm, SAA_MAP_RESIZE_AUTO, NULL, NULL, &m);
    CHECK(rc == SAA_OK);
    if (rc == SAA_OK) {
        CHECK(m.n_images == 4 && m.n_anomalous == 2 && m.n_gt_regions == 3);
        CHECK(m.image_auroc == 1 && m.image_ap == 1 && m.image_f1 == 1);
        CHECK(m.pixel_auroc == 1 && m.pixel_ap == 1 && m.pixel_f1 == 1);
        CHECK(m.pixel_f1_threshold == 1); /* normalised: 0.75 -> 1, 0.125 -> 0 */
        CHECK_NEAR(m.aupro, 1.0, 1e-15);
        CHECK(m.f_r == 1 && m.f_r_official == 1);
        CHECK(isnan(m.aupro_official));
        CHECK(m.map_lo == 0.125 && m.map_hi == 0.75);
        /* perfect separation: ROC (0,0) -> (0,1) -> (1,1), PR (0,1) -> (1,1) */
        CHECK(m.pixel_roc.n == 3 && m.pixel_roc.x[1] == 0 && m.pixel_roc.y[1] == 1 && m.pixel_roc.x[2] == 1);
        CHECK(m.pixel_pr.n == 3 && m.pixel_pr.x[1] == 1 && m.pixel_pr.y[1] == 1);
        saa_metrics_free(&m);
    }
    /* original-size maps (2R x 2R blocks) named like saa segment's output */
    {
        float big[4 * R * R];
        int64_t bshape[2] = {2 * R, 2 * R};
        for (int k = 0; k < 4; k++) {
            char rel[128], src[512];
            snprintf(rel, sizeof rel, "maps/cat/%s/%03d.npy", k >= 2 ? "hole" : "good", k);
            path(src, sizeof src, rel);
            saa_tensor *t;
            CHECK(saa_npy_load(src, &t) == SAA_OK);
            const float *f = t->data;
            for (int y = 0; y < 2 * R; y++)
                for (int x = 0; x < 2 * R; x++) big[y * 2 * R + x] = f[(y / 2) * R + x / 2];
            saa_tensor_free(t);
            remove(src);
            snprintf(rel, sizeof rel, "maps/cat/%s/%03d_map.npy", k >= 2 ? "hole" : "good", k);
            path(src, sizeof src, rel);
            CHECK(saa_npy_save_f32(src, big, 2, bshape) == SAA_OK);
        }
        path(p, sizeof p, "maps");
        CHECK(saa_eval_maps(&d, p, &prm, SAA_MAP_RESIZE_AUTO, NULL, NULL, &m) == SAA_OK);
        CHECK(m.pixel_f1_threshold == 1 && m.pixel_auroc == 1 && m.f_r == 1);
        saa_metrics_free(&m);
        CHECK(saa_eval_maps(&d, p, &prm, SAA_MAP_RESIZE_CUBIC, NULL, NULL, &m) == SAA_OK);
        CHECK(m.pixel_f1_threshold < 1);
        saa_metrics_free(&m);
    }
    /* saa's outputs written at another --out-size: each STEM_map.npy (here a constant 8x8 float64 map) gives way
     * to the STEM_map_full.npy beside it (the official route: one linear resize of the full map to R) */
    {
        double flat[8 * 8];
        for (int i = 0; i < 64; i++) flat[i] = 0.5;
        int64_t fshape[2] = {8, 8};
        for (int k = 0; k < 4; k++) {
            char rel[128], a[512], b[512];
            snprintf(rel, sizeof rel, "maps/cat/%s/%03d_map.npy", k >= 2 ? "hole" : "good", k);
            path(a, sizeof a, rel);
            snprintf(rel, sizeof rel, "maps/cat/%s/%03d_map_full.npy", k >= 2 ? "hole" : "good", k);
            path(b, sizeof b, rel);
            CHECK(rename(a, b) == 0);
            CHECK(saa_npy_save_f64(a, flat, 2, fshape) == SAA_OK);
        }
        path(p, sizeof p, "maps");
        CHECK(saa_eval_maps(&d, p, &prm, SAA_MAP_RESIZE_AUTO, NULL, NULL, &m) == SAA_OK);
        CHECK(m.pixel_f1_threshold == 1 && m.pixel_auroc == 1 && m.f_r == 1 && m.image_auroc == 1);
        saa_metrics_free(&m);
        /* without the full maps the constant float64 maps are evaluated: one value, so every score is NaN */
        for (int k = 0; k < 4; k++) {
            char rel[128];
            snprintf(rel, sizeof rel, "maps/cat/%s/%03d_map_full.npy", k >= 2 ? "hole" : "good", k);
            path(p, sizeof p, rel);
            CHECK(remove(p) == 0);
        }
        path(p, sizeof p, "maps");
        CHECK(saa_eval_maps(&d, p, &prm, SAA_MAP_RESIZE_AUTO, NULL, NULL, &m) == SAA_OK);
        CHECK(m.map_lo == 0.5 && m.map_hi == 0.5 && isnan(m.pixel_auroc) && isnan(m.image_auroc));
        saa_metrics_free(&m);
    }
    /* a map of the wrong dtype is an error naming the file */
    uint8_t u[R * R] = {0};
    path(p, sizeof p, "maps/cat/good/000_map.npy");
    CHECK(saa_npy_save_u8(p, u, 2, shape) == SAA_OK);
    path(p, sizeof p, "maps");
    CHECK(saa_eval_maps(&d, p, &prm, SAA_MAP_RESIZE_AUTO, NULL, NULL, &m) == SAA_EFORMAT);
    CHECK(strstr(saa_last_error(), "000_map.npy") != NULL);
    saa_dataset_free(&d);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    TEST_MAIN_END();
}
