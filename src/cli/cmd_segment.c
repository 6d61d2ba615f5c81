/* saa segment: SAA+ zero-shot anomaly segmentation of images, one set of outputs per image. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "saa/image.h"
#include "saa/saa.h"

#define DEFAULT_THRESHOLD 0.3

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
            "  --category NAME       a built-in category: MVTec, VisA, KSDD2, MTD names, or DATASET/NAME\n"
            "  --prompts FILE        categories in the preset format (presets/*.json); with --category to pick one\n"
            "  --object TEXT --defect TEXT [--defect TEXT ...] [--count N] [--top-k K] [--max-area R]\n"
            "                        a category given on the command line: the object caption, one caption per\n"
            "                        --defect (e.g. \"crack. hole.\"; boxes whose phrase contains the object name are\n"
            "                        dropped), N objects per image (default 1: single-instance saliency), top K\n"
            "                        masks fused (default 5), defect boxes smaller than R x the largest object box\n"
            "                        (default 0.3). The class-agnostic prompts (\"defect on OBJECT\", ...) come first.\n"
            "Models:\n"
            "  --models DIR          folder with the model files (default $SAA_MODELS, else ./models), as written by\n"
            "                        scripts/download-models.sh\n"
            "  --sam-model vit_h     SAM size looked up in the folder: vit_b, vit_l, vit_h (default vit_h)\n"
            "  --sam FILE --gdino FILE --wrn FILE --vocab FILE   explicit model files (override the folder)\n"
            "  --config FILE         model hyper-parameters (JSON in the saa_e2e golden config.json layout), for\n"
            "                        models of other sizes than the released ones\n"
            "Options:\n"
            "  --box-threshold T     detector box score threshold (default 0.1, as eval_SAA.py)\n"
            "  --text-threshold T    token threshold for the box phrases (default 0.1)\n"
            "  --out-size N          side of NAME_map.* (default 256, Model's default)\n"
            "  --threshold T         mask threshold on the map (default %g: the official fusion halves a lone\n"
            "                        mask's score, so this keeps regions whose rescored score is >= %g)\n"
            "  --fix LIST            correct official quirks (comma-separated, or all); default: official behaviour\n"
            "%s"
            "  --quiet               no progress lines on stderr\n",
            SAA_MAP_PNG_SCALE, DEFAULT_THRESHOLD, 2 * DEFAULT_THRESHOLD, saa_fix_help());
}

static int parse_double(const char *opt, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) {
        fprintf(stderr, "saa segment: %s expects a number, got '%s'\n", opt, s);
        return 0;
    }
    *out = v;
    return 1;
}

static int parse_int(const char *opt, const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v <= 0 || v > 1000000) {
        fprintf(stderr, "saa segment: %s expects a positive integer, got '%s'\n", opt, s);
        return 0;
    }
    *out = (int)v;
    return 1;
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
    const char *category = NULL, *prompts = NULL, *object = NULL, *outdir = NULL, *fix = NULL;
    const char **defects = calloc((size_t)argc + 1, sizeof *defects);
    const char **images = calloc((size_t)argc + 1, sizeof *images);
    int n_defects = 0, n_images = 0, count = 1, top_k = 5, quiet = 0;
    double max_area = 0.3, threshold = DEFAULT_THRESHOLD, box_thr = 0.1, text_thr = 0.1;
    int out_size = 256;
    saa_model_files mf = {0};
    int status = 2;
    if (!defects || !images) {
        fprintf(stderr, "saa segment: out of memory\n");
        goto out;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
#define OPT(name) (!strcmp(a, name))
        if (OPT("-h") || OPT("--help")) {
            help(stdout);
            status = 0;
            goto out;
        } else if (OPT("--quiet")) {
            quiet = 1;
            takes = 0;
        } else if (a[0] == '-' && a[1] && !v) {
            fprintf(stderr, "saa segment: %s needs a value\n", a);
            goto out;
        } else if (OPT("--category")) category = v;
        else if (OPT("--prompts")) prompts = v;
        else if (OPT("--object")) object = v;
        else if (OPT("--defect")) defects[n_defects++] = v;
        else if (OPT("--count")) { if (!parse_int(a, v, &count)) goto out; }
        else if (OPT("--top-k")) { if (!parse_int(a, v, &top_k)) goto out; }
        else if (OPT("--max-area")) { if (!parse_double(a, v, &max_area)) goto out; }
        else if (OPT("--models")) mf.dir = v;
        else if (OPT("--sam-model")) mf.sam_variant = v;
        else if (OPT("--sam")) mf.sam = v;
        else if (OPT("--gdino")) mf.gdino = v;
        else if (OPT("--wrn")) mf.wrn = v;
        else if (OPT("--vocab")) mf.vocab = v;
        else if (OPT("--config")) mf.config = v;
        else if (OPT("--box-threshold")) { if (!parse_double(a, v, &box_thr)) goto out; }
        else if (OPT("--text-threshold")) { if (!parse_double(a, v, &text_thr)) goto out; }
        else if (OPT("--out-size")) { if (!parse_int(a, v, &out_size)) goto out; }
        else if (OPT("--threshold")) { if (!parse_double(a, v, &threshold)) goto out; }
        else if (OPT("--fix")) fix = v;
        else if (OPT("-o") || OPT("--out")) outdir = v;
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "saa segment: unknown option '%s' (saa segment --help)\n", a);
            goto out;
        } else {
            images[n_images++] = a;
            takes = 0;
        }
#undef OPT
        i += takes;
    }
    if (!outdir || !n_images) {
        fprintf(stderr, "saa segment: expected -o OUTDIR and at least one image (saa segment --help)\n");
        goto out;
    }
    if ((object != NULL) + (prompts != NULL || category != NULL) != 1) {
        fprintf(stderr, "saa segment: give one of --category NAME, --prompts FILE [--category NAME], or --object TEXT "
                        "--defect TEXT\n");
        goto out;
    }
    if (object && !n_defects) {
        fprintf(stderr, "saa segment: --object needs at least one --defect caption\n");
        goto out;
    }
    if (!(max_area > 0) || !(box_thr >= 0 && box_thr < 1) || !(text_thr >= 0 && text_thr < 1)) {
        fprintf(stderr, "saa segment: --max-area must be > 0 and the thresholds in [0, 1)\n");
        goto out;
    }
    status = 1;
    saa_options o;
    saa_options_init(&o);
    o.box_threshold = (float)box_thr;
    o.text_threshold = (float)text_thr;
    o.out_size = out_size;
    if (saa_fix_parse(fix, &o.fixes) != SAA_OK) {
        fprintf(stderr, "saa segment: %s\n", saa_last_error());
        status = 2;
        goto out;
    }
    const char *presets = saa_presets_dir(NULL);
    saa_category cat;
    memset(&cat, 0, sizeof cat);
    int rc;
    if (prompts) {
        rc = saa_category_load_file(prompts, presets, category, o.fixes, &cat);
    } else if (category) {
        rc = saa_category_load(presets, category, o.fixes, &cat);
    } else {
        cat.name = strdup(object);
        cat.object_prompt = strdup(object);
        cat.object_count = count;
        cat.top_k = top_k;
        cat.max_area_ratio = max_area;
        rc = cat.name && cat.object_prompt ? SAA_OK : saa_set_error(SAA_ENOMEM, "out of memory");
        if (rc == SAA_OK) {
            if (presets) rc = saa_category_add_general_prompts(&cat, presets);
            else rc = saa_set_error(SAA_EIO, "preset files not found (set SAA_PRESETS to the presets/ folder)");
        }
        for (int i = 0; rc == SAA_OK && i < n_defects; i++) rc = saa_category_add_prompt(&cat, defects[i], object);
    }
    if (rc != SAA_OK) {
        fprintf(stderr, "saa segment: %s\n", saa_last_error());
        saa_category_free(&cat);
        goto out;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    saa_models *models;
    if (saa_models_load(&mf, &models) != SAA_OK) {
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
            rc = saa_write_outputs(outdir, stem, img.data, &r, threshold, images[i]);
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
    free(defects);
    free(images);
    return status;
}
