/* check-golden kind "metrics": the SAA+ evaluation protocol on small synthetic test sets.
 * Per case: resize (cubic maps, nearest masks) and global normalisation from inputs.safetensors are
 * checked against maps_resized / masks_resized / normalised; the metrics are then computed from the
 * stored normalised maps and masks when they are stored in full (stage feeding), else end to end from
 * the inputs (case8 style, through saa_metrics_compute). Names listed under "expected_null" must come
 * out undefined. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "saa/metrics.h"

typedef struct {
    int R, n;
    double *resized; /* n*R*R raw resized maps */
    uint8_t *mres;   /* n*R*R binarised resized masks */
    const int64_t *labels;
} case_data;

static const char *null_reason(golden *g, const char *name)
{
    cJSON *e = golden_cfg(g, "expected_null");
    cJSON *it = e ? cJSON_GetObjectItemCaseSensitive(e, name) : NULL;
    return it ? (cJSON_IsString(it) ? it->valuestring : "") : NULL;
}

/* A scalar metric: checked against the stored [1] tensor, or required to be null. */
static void check_scalar(golden *g, const char *cs, const char *what, double v)
{
    char name[160];
    snprintf(name, sizeof name, "%s.%s", cs, what);
    const char *why = null_reason(g, name);
    if (why) {
        if (isnan(v))
            golden_report(g, name, 1, "null as expected (official: %s)", why);
        else
            golden_report(g, name, 0, "got %.9g, expected null (official: %s)", v, why);
        return;
    }
    if (!golden_has(g, name)) return;
    int64_t one = 1;
    saa_tensor *t = saa_tensor_wrap(SAA_F64, 1, &one, &v);
    golden_check(g, name, t);
    saa_tensor_free(t);
}

static void check_array(golden *g, const char *cs, const char *what, saa_dtype dt, const void *data, int ndim,
                        const int64_t *shape)
{
    char name[160];
    snprintf(name, sizeof name, "%s.%s", cs, what);
    const char *why = null_reason(g, name);
    if (why) {
        golden_report(g, name, data == NULL, data ? "computed, expected undefined (%s)" : "undefined as expected (%s)",
                      why);
        return;
    }
    if (!golden_has(g, name)) return;
    if (!data) {
        golden_report(g, name, 0, "not computed (undefined here)");
        return;
    }
    saa_tensor *t = saa_tensor_wrap(dt, ndim, shape, (void *)data);
    golden_check(g, name, t);
    saa_tensor_free(t);
}

/* loader over the case's own resized maps (end-to-end path) */
static int case_loader(void *ctx, int64_t i, double *map, uint8_t *mask, int *label)
{
    const case_data *c = ctx;
    size_t N = (size_t)c->R * c->R;
    memcpy(map, c->resized + (size_t)i * N, N * sizeof *map);
    memcpy(mask, c->mres + (size_t)i * N, N);
    *label = (int)c->labels[i];
    return SAA_OK;
}

/* A positive integer key of a case entry, or 0 when absent or not one. */
static int case_int(cJSON *cs, const char *key, int max)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(cs, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > max || v->valuedouble != (int)v->valuedouble)
        return 0;
    return (int)v->valuedouble;
}

static int run_case(golden *g, saa_weights *in, cJSON *cs)
{
    cJSON *nm = cJSON_GetObjectItemCaseSensitive(cs, "name");
    case_data c = {0};
    c.R = case_int(cs, "eval_resolution", 1 << 14);
    c.n = case_int(cs, "n_images", 1 << 20);
    if (!cJSON_IsString(nm) || !c.R || !c.n)
        return saa_set_error(SAA_EFORMAT,
                             "%s/config.json: every entry of \"cases\" needs a string \"name\" and positive integers "
                             "\"eval_resolution\" and \"n_images\"",
                             g->dir);
    const char *cname = nm->valuestring;
    char name[160];
    snprintf(name, sizeof name, "%s.labels", cname);
    const saa_tensor *lt = saa_weights_find(in, name);
    if (!lt || lt->dtype != SAA_I64 || saa_tensor_numel(lt) != c.n)
        return saa_set_error(SAA_EFORMAT, "%s: inputs lack int64 %s with %d entries", g->dir, name, c.n);
    c.labels = lt->data;
    size_t N = (size_t)c.R * c.R;
    c.resized = malloc((size_t)c.n * N * sizeof *c.resized);
    c.mres = malloc((size_t)c.n * N);
    double *sums = malloc((size_t)c.n * sizeof *sums), *nsums = malloc((size_t)c.n * sizeof *nsums);
    int64_t *counts = malloc((size_t)c.n * sizeof *counts);
    double *norm = malloc((size_t)c.n * N * sizeof *norm);
    if (!c.resized || !c.mres || !sums || !nsums || !counts || !norm) {
        free(c.resized), free(c.mres), free(sums), free(nsums), free(counts), free(norm);
        return saa_set_error(SAA_ENOMEM, "metrics golden: out of memory");
    }
    int rc = SAA_OK;
    for (int k = 0; k < c.n && rc == SAA_OK; k++) {
        char mn[160], kn[160];
        snprintf(mn, sizeof mn, "%s.map.%d", cname, k);
        snprintf(kn, sizeof kn, "%s.mask.%d", cname, k);
        const saa_tensor *mt = saa_weights_find(in, mn), *kt = saa_weights_find(in, kn);
        if (!mt || mt->dtype != SAA_F64 || mt->ndim != 2 || !kt || kt->dtype != SAA_U8 || kt->ndim != 2) {
            rc = saa_set_error(SAA_EFORMAT, "%s: inputs lack float64 %s / uint8 %s (2-D)", g->dir, mn, kn);
            break;
        }
        int h = (int)mt->shape[0], w = (int)mt->shape[1], mh = (int)kt->shape[0], mw = (int)kt->shape[1];
        if (h < 1 || w < 1 || mh < 1 || mw < 1) {
            rc = saa_set_error(SAA_EFORMAT, "%s: inputs %s / %s must not be empty", g->dir, mn, kn);
            break;
        }
        saa_eval_resize_cubic_f64(mt->data, w, h, c.resized + k * N, c.R, c.R);
        uint8_t *bin = malloc((size_t)mh * mw);
        if (!bin) {
            rc = saa_set_error(SAA_ENOMEM, "metrics golden: out of memory");
            break;
        }
        const uint8_t *src = kt->data;
        for (int64_t i = 0; i < (int64_t)mh * mw; i++) bin[i] = src[i] > 0; /* m[m > 0] = 1 */
        saa_eval_resize_nearest_u8(bin, mw, mh, c.mres + k * N, c.R, c.R);
        free(bin);
    }
    if (rc == SAA_OK) {
        int64_t shape[3] = {c.n, c.R, c.R};
        int64_t nshape[1] = {c.n};
        double lo = INFINITY, hi = -INFINITY;
        saa_minmax_nan(c.resized, (int64_t)(c.n * N), &lo, &hi);
        for (size_t i = 0; i < c.n * N; i++) norm[i] = (c.resized[i] - lo) / (hi - lo);
        for (int k = 0; k < c.n; k++) {
            double s = 0, t = 0;
            int64_t m = 0;
            for (size_t i = 0; i < N; i++) s += c.resized[k * N + i], t += norm[k * N + i], m += c.mres[k * N + i];
            sums[k] = s, nsums[k] = t, counts[k] = m;
        }
        /* every stored form is checked (full arrays, samples, per-image sums); absent names are skipped here
         * and any stored tensor left unchecked is reported by golden_run */
        check_array(g, cname, "maps_resized", SAA_F64, c.resized, 3, shape);
        check_array(g, cname, "masks_resized", SAA_U8, c.mres, 3, shape);
        check_array(g, cname, "normalised", SAA_F64, norm, 3, shape);
        check_array(g, cname, "maps_resized_sampled", SAA_F64, c.resized, 3, shape);
        check_array(g, cname, "masks_resized_sampled", SAA_U8, c.mres, 3, shape);
        check_array(g, cname, "normalised_sampled", SAA_F64, norm, 3, shape);
        check_array(g, cname, "maps_resized_sum", SAA_F64, sums, 1, nshape);
        check_array(g, cname, "normalised_sum", SAA_F64, nsums, 1, nshape);
        check_array(g, cname, "masks_resized_count", SAA_I64, counts, 1, nshape);

        saa_eval_params p;
        saa_eval_params_default(&p);
        p.resolution = c.R;
        p.grid_steps = (int)golden_cfg_num(g, "settings.grid_steps", 200);
        p.pro_fpr_limit = golden_cfg_num(g, "settings.pro_fpr_limit", 0.3);
        p.region_iou = golden_cfg_num(g, "settings.region_iou_threshold", 0.6);
        saa_metrics m;
        char nn[160], mn[160];
        snprintf(nn, sizeof nn, "%s.normalised", cname);
        snprintf(mn, sizeof mn, "%s.masks_resized", cname);
        const saa_tensor *fn = saa_weights_find(g->ref, nn);
        const saa_tensor *fm = saa_weights_find(g->ref, mn);
        if (fn && fm && fn->dtype == SAA_F64 && fm->dtype == SAA_U8 && saa_tensor_numel(fn) == (int64_t)(c.n * N) &&
            saa_tensor_numel(fm) == (int64_t)(c.n * N)) {
            /* stage feeding: metrics from the stored normalised maps and resized masks */
            double flo = INFINITY, fhi = -INFINITY;
            saa_minmax_nan(fn->data, (int64_t)(c.n * N), &flo, &fhi);
            saa_metric_acc *a = saa_metric_acc_new(&p, flo, fhi, 0);
            double *map = malloc(N * sizeof *map);
            rc = a && map ? SAA_OK : SAA_ENOMEM;
            for (int k = 0; k < c.n && rc == SAA_OK; k++) {
                memcpy(map, (const double *)fn->data + k * N, N * sizeof *map);
                rc = saa_metric_acc_add(a, map, (const uint8_t *)fm->data + k * N, (int)c.labels[k]);
            }
            free(map);
            if (rc == SAA_OK) {
                rc = saa_metric_acc_finish(a, &m);
            } else {
                saa_metric_acc_free(a);
            }
        } else {
            rc = saa_metrics_compute(&p, c.n, case_loader, &c, NULL, NULL, &m);
        }
        if (rc == SAA_OK) {
            int64_t S = m.steps;
            check_array(g, cname, "image_scores", SAA_F64, m.image_scores, 1, nshape);
            check_scalar(g, cname, "image_auroc", m.image_auroc);
            check_scalar(g, cname, "image_ap", m.image_ap);
            check_scalar(g, cname, "image_f1", m.image_f1);
            check_scalar(g, cname, "image_f1_threshold", m.image_f1_threshold);
            check_scalar(g, cname, "pixel_auroc", m.pixel_auroc);
            check_scalar(g, cname, "pixel_ap", m.pixel_ap);
            check_scalar(g, cname, "pixel_f1", m.pixel_f1);
            check_scalar(g, cname, "pixel_f1_threshold", m.pixel_f1_threshold);
            check_scalar(g, cname, "aupro", m.aupro);
            check_scalar(g, cname, "aupro_official", m.aupro_official);
            check_scalar(g, cname, "f_r", m.f_r);
            check_scalar(g, cname, "f_r_official", m.f_r_official);
            check_array(g, cname, "grid_thresholds", SAA_F64, m.grid_thresholds, 1, &S);
            check_array(g, cname, "pro_official.fprs", SAA_F64, m.pro_fprs, 1, &S);
            check_array(g, cname, "pro_official.pros", SAA_F64, m.pro_pros, 1, &S);
            check_array(g, cname, "f_r_official.f1", SAA_F64, m.fr_official_f1, 1, &S);
            check_array(g, cname, "f_r_official.recall", SAA_F64, m.fr_official_recall, 1, &S);
            check_array(g, cname, "f_r_official.precision", SAA_F64, m.fr_official_precision, 1, &S);
            check_array(g, cname, "f_r_official.n_pred_regions", SAA_I64, m.fr_official_n_pred, 1, &S);
            check_array(g, cname, "f_r_official.n_hits", SAA_I64, m.fr_official_n_hits, 1, &S);
            check_array(g, cname, "f_r.f1", SAA_F64, m.fr_f1, 1, &S);
            saa_metrics_free(&m);
        }
    }
    free(c.resized), free(c.mres), free(sums), free(nsums), free(counts), free(norm);
    return rc;
}

int golden_kind_metrics(golden *g)
{
    const char *inputs = golden_cfg_str(g, "inputs");
    if (!inputs) return saa_set_error(SAA_EFORMAT, "%s/config.json: no \"inputs\" file", g->dir);
    char *path = golden_path(g, inputs);
    saa_weights *in = NULL;
    int rc = path ? saa_weights_open(path, &in) : SAA_ENOMEM;
    free(path);
    if (rc != SAA_OK) return rc;
    cJSON *cases = golden_cfg(g, "cases"), *cs;
    if (!cJSON_IsArray(cases)) {
        saa_weights_close(in);
        return saa_set_error(SAA_EFORMAT, "%s/config.json: no \"cases\" list", g->dir);
    }
    cJSON_ArrayForEach(cs, cases)
    {
        rc = run_case(g, in, cs);
        if (rc != SAA_OK) break;
    }
    saa_weights_close(in);
    return rc;
}
