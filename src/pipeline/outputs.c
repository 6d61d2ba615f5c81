/* Per-image outputs of `saa segment` / `saa eval`: anomaly map (16-bit PNG + float32 .npy), binary mask,
 * coloured overlay and a JSON record of every region. Everything is written under temporary names and
 * renamed at the end, so a failure leaves no partial output. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "saa/image.h"
#include "saa/npy.h"
#include "saa/saa.h"

void saa_result_free(saa_result *r)
{
    if (!r) return;
    free(r->map);
    free(r->map_full);
    free(r->saliency);
    free(r->regions);
    memset(r, 0, sizeof *r);
}

/* Matplotlib-like "jet": blue -> cyan -> yellow -> red. */
static void jet(double t, uint8_t rgb[3])
{
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double r = 1.5 - fabs(4 * t - 3), g = 1.5 - fabs(4 * t - 2), b = 1.5 - fabs(4 * t - 1);
    double c[3] = {r, g, b};
    for (int i = 0; i < 3; i++) rgb[i] = (uint8_t)lround(255 * (c[i] < 0 ? 0 : c[i] > 1 ? 1 : c[i]));
}

/* Overlay: the image blended with the map's colours (normalised by the image's own map maximum, so weak
 * maps stay visible) where the map is non-zero; mask outlines in white. */
static uint8_t *render_overlay(const uint8_t *rgb, const double *map, const uint8_t *mask, int w, int h)
{
    uint8_t *out = malloc((size_t)w * h * 3);
    if (!out) return NULL;
    double mx = 0;
    for (int64_t i = 0; i < (int64_t)w * h; i++)
        if (map[i] > mx) mx = map[i];
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int64_t i = (int64_t)y * w + x;
            uint8_t c[3];
            double t = mx > 0 ? map[i] / mx : 0;
            jet(t, c);
            double a = map[i] > 0 ? 0.25 + 0.35 * t : 0.0;
            for (int k = 0; k < 3; k++) out[3 * i + k] = (uint8_t)lround((1 - a) * rgb[3 * i + k] + a * c[k]);
            if (mask[i]) { /* outline: a mask pixel with a 4-neighbour outside the mask */
                int edge = x == 0 || y == 0 || x == w - 1 || y == h - 1 || !mask[i - 1] || !mask[i + 1] ||
                           !mask[i - w] || !mask[i + w];
                if (edge) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = 255;
            }
        }
    return out;
}

static char *region_json(const saa_result *r, const char *image_path, double threshold, int64_t mask_pixels)
{
    static const char *stages[] = {"detector", "sam_encoder", "sam_decoder", "saliency", "fusion", "total"};
    cJSON *root = cJSON_CreateObject();
    if (image_path) cJSON_AddStringToObject(root, "image", image_path);
    cJSON_AddNumberToObject(root, "width", r->width);
    cJSON_AddNumberToObject(root, "height", r->height);
    cJSON_AddNumberToObject(root, "map_size", r->out_size);
    double mx = 0;
    for (int64_t i = 0; i < (int64_t)r->width * r->height; i++)
        if (r->map_full[i] > mx) mx = r->map_full[i];
    cJSON_AddNumberToObject(root, "map_max", mx);
    cJSON_AddNumberToObject(root, "threshold", threshold);
    cJSON_AddNumberToObject(root, "mask_pixels", (double)mask_pixels);
    cJSON_AddNumberToObject(root, "png16_scale", SAA_MAP_PNG_SCALE);
    if (r->saliency_mode[0]) cJSON_AddStringToObject(root, "saliency", r->saliency_mode);
    cJSON *regions = cJSON_AddArrayToObject(root, "regions");
    for (int i = 0; i < r->n_regions; i++) {
        const saa_region *g = &r->regions[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "pass", g->pass ? "defect" : "object");
        cJSON_AddNumberToObject(o, "prompt", g->prompt);
        cJSON *b = cJSON_AddArrayToObject(o, "box_xyxy");
        for (int k = 0; k < 4; k++) cJSON_AddItemToArray(b, cJSON_CreateNumber(g->box[k]));
        cJSON_AddStringToObject(o, "phrase", g->phrase);
        cJSON_AddNumberToObject(o, "score", g->score);
        cJSON_AddNumberToObject(o, "rescored", g->rescored);
        cJSON_AddNumberToObject(o, "mask_area", (double)g->mask_area);
        cJSON_AddStringToObject(o, "status", g->status ? g->status : "");
        cJSON_AddItemToArray(regions, o);
    }
    cJSON *t = cJSON_AddObjectToObject(root, "seconds");
    for (int k = 0; k < 6; k++) cJSON_AddNumberToObject(t, stages[k], r->seconds[k]);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

enum { OUT_MAP_PNG, OUT_MAP_NPY, OUT_MAP_FULL_NPY, OUT_MASK, OUT_OVERLAY, OUT_JSON, OUT_COUNT };

const char *const saa_output_suffixes[SAA_N_OUTPUTS] = {"_map.png",  "_map.npy",     "_map_full.npy",
                                                        "_mask.png", "_overlay.png", ".json"};

int saa_outputs_complete(const char *outdir, const char *stem)
{
    for (int k = 0; k < SAA_N_OUTPUTS; k++) {
        char path[4096];
        struct stat st;
        if ((size_t)snprintf(path, sizeof path, "%s/%s%s", outdir, stem, saa_output_suffixes[k]) >= sizeof path ||
            stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
            return 0;
    }
    return 1;
}

int saa_write_outputs(const char *outdir, const char *stem, const uint8_t *rgb, const saa_result *r,
                      double threshold, int map_f64, const char *image_path)
{
    _Static_assert(OUT_COUNT == SAA_N_OUTPUTS, "one suffix per output");
    const char *const *suffix = saa_output_suffixes;
    if (mkdir(outdir, 0777) != 0 && errno != EEXIST)
        return saa_set_error(SAA_EIO, "%s: cannot create the output folder: %s", outdir, strerror(errno));
    char final[OUT_COUNT][4096], tmp[OUT_COUNT][4200];
    for (int k = 0; k < OUT_COUNT; k++) {
        snprintf(final[k], sizeof final[k], "%s/%s%s", outdir, stem, suffix[k]);
        snprintf(tmp[k], sizeof tmp[k], "%s/.%s%s.part", outdir, stem, suffix[k]);
    }
    const int64_t full = (int64_t)r->width * r->height, small = (int64_t)r->out_size * r->out_size;
    uint16_t *png16 = malloc(sizeof *png16 * (size_t)(small ? small : 1));
    float *f32 = malloc(sizeof *f32 * (size_t)(full > small ? full : small));
    uint8_t *mask = malloc((size_t)full);
    uint8_t *overlay = NULL;
    char *json = NULL;
    int rc = (png16 && f32 && mask) ? SAA_OK : saa_set_error(SAA_ENOMEM, "out of memory writing %s", stem);
    int64_t mask_pixels = 0;
    if (rc == SAA_OK) {
        for (int64_t i = 0; i < small; i++) {
            double v = r->map[i] / SAA_MAP_PNG_SCALE;
            png16[i] = (uint16_t)lround((v < 0 ? 0 : v > 1 ? 1 : v) * 65535.0);
        }
        rc = saa_png_save_gray16(tmp[OUT_MAP_PNG], png16, r->out_size, r->out_size);
    }
    if (rc == SAA_OK && map_f64) {
        rc = saa_npy_save_f64(tmp[OUT_MAP_NPY], r->map, 2, (int64_t[]){r->out_size, r->out_size});
    } else if (rc == SAA_OK) {
        for (int64_t i = 0; i < small; i++) f32[i] = (float)r->map[i];
        rc = saa_npy_save_f32(tmp[OUT_MAP_NPY], f32, 2, (int64_t[]){r->out_size, r->out_size});
    }
    if (rc == SAA_OK) {
        for (int64_t i = 0; i < full; i++) f32[i] = (float)r->map_full[i];
        rc = saa_npy_save_f32(tmp[OUT_MAP_FULL_NPY], f32, 2, (int64_t[]){r->height, r->width});
    }
    if (rc == SAA_OK) {
        for (int64_t i = 0; i < full; i++) {
            mask[i] = r->map_full[i] > threshold;
            mask_pixels += mask[i];
        }
        for (int64_t i = 0; i < full; i++) mask[i] = mask[i] ? 255 : 0;
        rc = saa_png_save_u8(tmp[OUT_MASK], mask, r->width, r->height, 1);
    }
    if (rc == SAA_OK) {
        overlay = render_overlay(rgb, r->map_full, mask, r->width, r->height);
        rc = overlay ? saa_png_save_u8(tmp[OUT_OVERLAY], overlay, r->width, r->height, 3)
                     : saa_set_error(SAA_ENOMEM, "out of memory writing %s", stem);
    }
    if (rc == SAA_OK) {
        json = region_json(r, image_path, threshold, mask_pixels);
        FILE *f = json ? fopen(tmp[OUT_JSON], "w") : NULL;
        if (!f || fputs(json, f) < 0 || fputc('\n', f) < 0 || fclose(f) != 0)
            rc = saa_set_error(SAA_EIO, "%s: cannot write", tmp[OUT_JSON]);
    }
    int renamed = 0;
    for (; rc == SAA_OK && renamed < OUT_COUNT; renamed++)
        if (rename(tmp[renamed], final[renamed]) != 0)
            rc = saa_set_error(SAA_EIO, "%s: cannot rename into place: %s", final[renamed], strerror(errno));
    if (rc != SAA_OK)
        for (int k = 0; k < OUT_COUNT; k++) {
            remove(tmp[k]);
            if (k < renamed) remove(final[k]); /* no partial output */
        }
    free(png16);
    free(f32);
    free(mask);
    free(overlay);
    free(json);
    return rc;
}
