/* saa segment: SAA+ zero-shot anomaly segmentation of images, one set of outputs per image. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "cli/run_options.h"
#include "saa/image.h"
#include "saa/saa.h"

static void help(FILE *f)
{
    fprintf(f,
            "usage: saa segment [CATEGORY] [MODELS] [OPTIONS] -o OUTDIR IMAGE...\n"
            "\n"
            "Finds and outlines defects with SAA+ (Grounding DINO + SAM + WideResNet saliency). For each IMAGE\n"
            "(PNG or JPEG, gray or colour, any size) writes into OUTDIR, named after the image:\n"
            "  NAME_map.png       anomaly map at --out-size, 16-bit, value = min(map / %.4f, 1) * 65535\n"
            "  NAME_map.npy       the same map, float32\n"
            "  NAME_map_full.npy  anomaly map at the image's resolution, float32\n"
            "  NAME_mask.png      map_full > --threshold (255 inside)\n"
            "  NAME_overlay.png   the image with the map in colour and the mask outline\n"
            "  NAME.json          every detected region (box, phrase, score, rescored score, mask area, kept or\n"
            "                     why dropped) and the time of each stage\n"
            "\n"
            "Category (one of):\n"
            "  --category NAME       a built-in category: MVTec, VisA, KSDD2, MTD names, or DATASET/NAME\n",
            SAA_MAP_PNG_SCALE);
    run_options_help_category(f);
    run_options_help_models(f);
    fprintf(f, "Options:\n");
    run_options_help_run(f, "default 256, Model's default");
    fprintf(f, "  --quiet               no progress lines on stderr\n");
}

/* "dir/name.png" -> "name" */
static void stem_of(const char *path, char *out, size_t n)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(out, n, "%s", base);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = 0;
}

int cmd_segment(int argc, char **argv)
{
    const char *outdir = NULL;
    const char **images = calloc((size_t)argc + 1, sizeof *images);
    int n_images = 0, quiet = 0;
    run_options ro;
    int status = 2;
    if (run_options_init(&ro, argc) != 0 || !images) {
        fprintf(stderr, "saa segment: out of memory\n");
        goto out;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int taken = run_options_parse(&ro, "segment", argc, argv, &i);
        if (taken < 0) goto out;
        if (taken) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help(stdout);
            status = 0;
            goto out;
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--out")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "saa segment: %s needs a value\n", a);
                goto out;
            }
            outdir = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "saa segment: unknown option '%s' (saa segment --help)\n", a);
            goto out;
        } else {
            images[n_images++] = a;
        }
    }
    if (!outdir || !n_images) {
        fprintf(stderr, "saa segment: expected -o OUTDIR and at least one image (saa segment --help)\n");
        goto out;
    }
    if ((ro.object != NULL) + (ro.prompts != NULL || ro.category != NULL) != 1) {
        fprintf(stderr, "saa segment: give one of --category NAME, --prompts FILE [--category NAME], or --object TEXT "
                        "--defect TEXT\n");
        goto out;
    }
    if (run_options_check(&ro, "segment") != 0) goto out;
    status = 1;
    saa_options o;
    run_options_to_saa(&ro, 256, &o); /* Model(out_size=256) */
    const double threshold = ro.threshold;
    saa_category cat;
    int rc = run_options_category(&ro, ro.category, &cat);
    if (rc != SAA_OK) {
        fprintf(stderr, "saa segment: %s\n", saa_last_error());
        goto out;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    saa_models *models;
    if (saa_models_load(&ro.files, &models) != SAA_OK) {
        fprintf(stderr, "saa segment: %s\n", saa_last_error());
        saa_category_free(&cat);
        goto out;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (!quiet)
        fprintf(stderr, "saa segment: models loaded in %.2f s; category %s (%d prompts, %d object%s, top-%d)\n",
                (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec), cat.name,
                cat.n_prompts, cat.object_count, cat.object_count == 1 ? "" : "s", cat.top_k);
    int failures = 0;
    for (int i = 0; i < n_images; i++) {
        saa_image img;
        saa_result r;
        char stem[1024];
        stem_of(images[i], stem, sizeof stem);
        /* the same name twice (a/x.png, b/x.png): number the later ones */
        for (int j = 0; j < i; j++) {
            char other[1024];
            stem_of(images[j], other, sizeof other);
            if (!strcmp(other, stem)) {
                size_t len = strlen(stem);
                snprintf(stem + len, sizeof stem - len, "_%d", i);
                break;
            }
        }
        if (saa_image_load(images[i], &img) != SAA_OK) {
            fprintf(stderr, "saa segment: %s\n", saa_last_error());
            failures++;
            continue;
        }
        rc = saa_segment(models, &cat, &o, &img, &r);
        if (rc == SAA_OK) {
            rc = saa_write_outputs(outdir, stem, img.data, &r, threshold, 0, images[i]);
            if (rc == SAA_OK && !quiet) {
                int kept = 0;
                for (int k = 0; k < r.n_regions; k++) kept += !strcmp(r.regions[k].status, "fused");
                fprintf(stderr, "[%d/%d] %s: %dx%d, %d regions fused, %.2f s -> %s/%s_*\n", i + 1, n_images,
                        images[i], img.w, img.h, kept, r.seconds[5], outdir, stem);
            }
            saa_result_free(&r);
        }
        if (rc != SAA_OK) {
            fprintf(stderr, "saa segment: %s: %s\n", images[i], saa_last_error());
            failures++;
        }
        saa_image_free(&img);
    }
    saa_models_free(models);
    saa_category_free(&cat);
    status = failures ? 1 : 0;
out:
    run_options_free(&ro);
    free(images);
    return status;
}
