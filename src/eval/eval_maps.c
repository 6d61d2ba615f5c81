/* saa eval --maps: metrics of a dataset from anomaly maps on disk, and the metrics.json/.csv writers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "saa/eval.h"
#include "saa/image.h"
#include "saa/npy.h"
#include "saa/tensor.h"

const char *const saa_metric_names[SAA_N_METRICS] = {
    "image_auroc", "image_ap", "image_f1", "pixel_auroc", "pixel_ap",
    "pixel_f1",    "aupro",    "aupro_official", "f_r", "f_r_official"};

void saa_metrics_values(const saa_metrics *m, double v[SAA_N_METRICS])
{
    v[0] = m->image_auroc, v[1] = m->image_ap, v[2] = m->image_f1;
    v[3] = m->pixel_auroc, v[4] = m->pixel_ap, v[5] = m->pixel_f1;
    v[6] = m->aupro, v[7] = m->aupro_official, v[8] = m->f_r, v[9] = m->f_r_official;
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int saa_eval_find_map(const char *maps_dir, const char *category, const char *id, char **path)
{
    *path = NULL;
    size_t n = strlen(maps_dir) + strlen(category) + strlen(id) + 16;
    char *p = malloc(n);
    if (!p) return saa_set_error(SAA_ENOMEM, "eval: out of memory");
    const char *ext[4] = {".npy", "_map.npy", ".png", "_map.png"};
    for (int with_cat = 1; with_cat >= 0; with_cat--)
        for (int e = 0; e < 4; e++) {
            if (with_cat)
                snprintf(p, n, "%s/%s/%s%s", maps_dir, category, id, ext[e]);
            else
                snprintf(p, n, "%s/%s%s", maps_dir, id, ext[e]);
            if (file_exists(p)) {
                *path = p;
                return SAA_OK;
            }
        }
    free(p);
    return saa_set_error(SAA_EIO, "%s: no anomaly map for %s (looked for %s/%s{.npy,_map.npy,.png,_map.png} and %s{...})", maps_dir,
                         id, category, id, id);
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

int saa_eval_load_map(const char *path, double **map, int *w, int *h)
{
    *map = NULL;
    if (ends_with(path, ".npy")) {
        saa_tensor *t;
        int rc = saa_npy_load(path, &t);
        if (rc != SAA_OK) return rc;
        int ok = (t->dtype == SAA_F32 || t->dtype == SAA_F64) && (t->ndim == 2 || (t->ndim == 3 && t->shape[0] == 1));
        if (!ok) {
            char b[96];
            rc = saa_set_error(SAA_EFORMAT, "%s: expected a float32/float64 (H, W) or (1, H, W) map, got %s %s", path,
                               saa_dtype_name(t->dtype), saa_shape_str(t, b, sizeof b));
            saa_tensor_free(t);
            return rc;
        }
        *h = (int)t->shape[t->ndim - 2];
        *w = (int)t->shape[t->ndim - 1];
        size_t N = (size_t)*w * *h;
        *map = malloc((N ? N : 1) * sizeof **map);
        if (!*map) {
            saa_tensor_free(t);
            return saa_set_error(SAA_ENOMEM, "eval: out of memory");
        }
        if (t->dtype == SAA_F64) {
            memcpy(*map, t->data, N * sizeof **map);
        } else {
            const float *f = t->data;
            for (size_t i = 0; i < N; i++) (*map)[i] = f[i];
        }
        saa_tensor_free(t);
        return SAA_OK;
    }
    uint16_t *v;
    int rc = saa_image_load_gray16(path, w, h, &v);
    if (rc != SAA_OK) return rc;
    size_t N = (size_t)*w * *h;
    *map = malloc((N ? N : 1) * sizeof **map);
    if (!*map) {
        free(v);
        return saa_set_error(SAA_ENOMEM, "eval: out of memory");
    }
    for (size_t i = 0; i < N; i++) (*map)[i] = v[i];
    free(v);
    return SAA_OK;
}

typedef struct {
    const saa_dataset *d;
    const char *maps_dir;
    int R;
    saa_map_resize mode;
} maps_ctx;

/* A saa output map STEM_map.{npy,png} that is not R x R (--out-size other than the evaluation resolution) is
 * replaced by STEM_map_full.npy beside it when that exists: the official map is the original-resolution map
 * resized once to R x R (Model(out_size=R): cv2.resize, INTER_LINEAR), not a resize of a resized map. */
static int prefer_full_map(char **path, double **map, int *w, int *h)
{
    static const char *const small[] = {"_map.npy", "_map.png"};
    for (int k = 0; k < 2; k++) {
        if (!ends_with(*path, small[k])) continue;
        size_t stem = strlen(*path) - strlen(small[k]);
        char *full = malloc(stem + sizeof "_map_full.npy");
        if (!full) return saa_set_error(SAA_ENOMEM, "eval: out of memory");
        memcpy(full, *path, stem);
        memcpy(full + stem, "_map_full.npy", sizeof "_map_full.npy");
        if (!file_exists(full)) {
            free(full);
            return SAA_OK;
        }
        free(*map);
        free(*path);
        *path = full;
        return saa_eval_load_map(full, map, w, h);
    }
    return SAA_OK;
}

/* eval_SAA.eval after inference: m[m > 0] = 1, specify_resolution (cubic maps, nearest masks). */
static int maps_loader(void *ctx, int64_t i, double *out_map, uint8_t *out_mask, int *label)
{
    const maps_ctx *c = ctx;
    const saa_sample *s = &c->d->samples[i];
    char *path;
    int rc = saa_eval_find_map(c->maps_dir, c->d->category, s->id, &path);
    if (rc != SAA_OK) return rc;
    double *map;
    int w, h;
    rc = saa_eval_load_map(path, &map, &w, &h);
    if (rc == SAA_OK && (w != c->R || h != c->R)) rc = prefer_full_map(&path, &map, &w, &h);
    if (rc == SAA_OK && (w <= 0 || h <= 0)) rc = saa_set_error(SAA_EFORMAT, "%s: empty map", path);
    int linear = c->mode == SAA_MAP_RESIZE_LINEAR ||
                 (c->mode == SAA_MAP_RESIZE_AUTO && (ends_with(path, "_map.npy") || ends_with(path, "_map.png") ||
                                                     ends_with(path, "_map_full.npy")));
    if (rc == SAA_OK)
        rc = saa_resize_cv_f64(map, w, h, 1, out_map, c->R, c->R, linear ? SAA_CV_INTER_LINEAR : SAA_CV_INTER_CUBIC);
    free(path);
    free(map);
    if (rc != SAA_OK) return rc;
    uint8_t *mask;
    rc = saa_sample_load_mask(s, &mask);
    if (rc != SAA_OK) return rc;
    saa_eval_resize_nearest_u8(mask, s->width, s->height, out_mask, c->R, c->R);
    free(mask);
    *label = s->label;
    return SAA_OK;
}

int saa_eval_maps(const saa_dataset *d, const char *maps_dir, const saa_eval_params *p, saa_map_resize map_resize,
                  saa_eval_progress progress, void *progress_ctx, saa_metrics *out)
{
    maps_ctx c = {d, maps_dir, p->resolution, map_resize};
    return saa_metrics_compute(p, d->n, maps_loader, &c, progress, progress_ctx, out);
}

static void add_num(cJSON *o, const char *k, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

int saa_metrics_write_json(const char *path, const char *dataset, const char *category, const saa_eval_params *p,
                           const saa_metrics *m)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) return saa_set_error(SAA_ENOMEM, "eval: out of memory");
    cJSON_AddStringToObject(root, "dataset", dataset);
    cJSON_AddStringToObject(root, "category", category);
    cJSON_AddNumberToObject(root, "n_images", (double)m->n_images);
    cJSON_AddNumberToObject(root, "n_anomalous", (double)m->n_anomalous);
    cJSON_AddNumberToObject(root, "n_gt_regions", (double)m->n_gt_regions);
    cJSON *s = cJSON_AddObjectToObject(root, "settings");
    cJSON_AddNumberToObject(s, "eval_resolution", p->resolution);
    cJSON_AddNumberToObject(s, "grid_steps", p->grid_steps);
    cJSON_AddNumberToObject(s, "pro_fpr_limit", p->pro_fpr_limit);
    cJSON_AddNumberToObject(s, "region_iou_threshold", p->region_iou);
    cJSON_AddStringToObject(s, "scale", "fractions (the official table multiplies by 100)");
    cJSON *mo = cJSON_AddObjectToObject(root, "metrics");
    double v[SAA_N_METRICS];
    saa_metrics_values(m, v);
    for (int i = 0; i < SAA_N_METRICS; i++) add_num(mo, saa_metric_names[i], v[i]);
    cJSON *t = cJSON_AddObjectToObject(root, "thresholds");
    add_num(t, "image_f1", m->image_f1_threshold);
    add_num(t, "pixel_f1", m->pixel_f1_threshold);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return saa_set_error(SAA_ENOMEM, "eval: out of memory");
    FILE *f = fopen(path, "w");
    int rc = SAA_OK;
    if (!f || fputs(text, f) < 0 || fputc('\n', f) == EOF) rc = saa_set_error(SAA_EIO, "%s: cannot write", path);
    if (f && fclose(f) != 0 && rc == SAA_OK) rc = saa_set_error(SAA_EIO, "%s: cannot write", path);
    free(text);
    return rc;
}

int saa_metrics_write_csv(const char *path, int rows, const char *const *labels, const double *values)
{
    FILE *f = fopen(path, "w");
    if (!f) return saa_set_error(SAA_EIO, "%s: cannot write", path);
    fprintf(f, "category");
    for (int i = 0; i < SAA_N_METRICS; i++) fprintf(f, ",%s", saa_metric_names[i]);
    fprintf(f, "\n");
    for (int r = 0; r < rows; r++) {
        fprintf(f, "%s", labels[r]);
        for (int i = 0; i < SAA_N_METRICS; i++) {
            double v = values[(size_t)r * SAA_N_METRICS + i];
            if (isfinite(v))
                fprintf(f, ",%.2f", v * 100);
            else
                fprintf(f, ",");
        }
        fprintf(f, "\n");
    }
    if (fclose(f) != 0) return saa_set_error(SAA_EIO, "%s: cannot write", path);
    return SAA_OK;
}
