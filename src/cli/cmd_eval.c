/* saa eval: the SAA+ evaluation protocol over a labelled test set.
 * Implemented: --maps DIR (metrics from anomaly maps already on disk). Running the models over the test
 * set, --shard and --merge come with the pipeline. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/commands.h"
#include "saa/datasets.h"
#include "saa/eval.h"
#include "saa/metrics.h"
#include "saa/report.h"
#include "saa/tensor.h"

static int usage(FILE *f)
{
    fprintf(f,
            "usage: saa eval --dataset mvtec|visa|ksdd2|mtd|folder --root DIR [--category NAME|all]\n"
            "                --maps MAPDIR -o OUTDIR [options]\n"
            "Computes the SAA+ metrics (image AUROC/AP/max-F1, pixel AUROC/AP/max-F1 (F_p), region max-F1 (F_r)\n"
            "and AUPRO, official and corrected) from anomaly maps written earlier, one per test image:\n"
            "MAPDIR/CATEGORY/TYPE/STEM{.npy,_map.npy} (float32 HxW) or {.png,_map.png} (gray 8/16-bit), TYPE/STEM\n"
            "as in the dataset.\n"
            "Writes OUTDIR/CATEGORY/metrics.json + metrics.csv, OUTDIR/metrics.json + metrics.csv (all\n"
            "categories and their mean) and OUTDIR/report.html.\n"
            "options:\n"
            "  --resolution R        evaluation resolution (default 400, as eval_SAA.py)\n"
            "  --map-resize M        auto|cubic|linear: how maps not at R x R are resized; cubic = the evaluation's\n"
            "                        specify_resolution, linear = the official model's own resize of its map to R\n"
            "                        (right for original-size maps such as saa segment's STEM_map.npy); auto (default):\n"
            "                        linear for *_map.npy / *_map.png files, cubic otherwise\n"
            "  --masks DIR           folder dataset: masks folder\n"
            "  --mask-pattern P      folder dataset: mask name, {stem}/{name} replaced (default {stem}.png)\n"
            "  --score-memory MB     memory for the distinct pixel scores of a category before they spill to a\n"
            "                        temporary file (default 100; peak use is about twice that; results are identical)\n"
            "  --no-report           do not write OUTDIR/report.html (self-contained HTML: tables, curves, gallery)\n"
            "  --quiet               no progress bar\n");
    return f == stderr ? 2 : 0;
}

typedef struct {
    const char *category;
    int quiet, tty;
    double t0;
    int last_pct;
} progress_state;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* images done/total, rate, ETA; pass 1 reads every map for the global min/max, pass 2 scores them */
static void on_progress(void *ctx, int pass, int64_t done, int64_t total)
{
    progress_state *p = ctx;
    if (p->quiet) return;
    if (done == 1) p->t0 = now_s(), p->last_pct = -1;
    int pct = (int)(100 * done / (total ? total : 1));
    if (!p->tty && pct / 10 == p->last_pct / 10 && done != total) return;
    if (p->tty && pct == p->last_pct && done != total) return;
    p->last_pct = pct;
    double el = now_s() - p->t0, rate = el > 0 ? (double)(done - 1) / el : 0;
    double eta = rate > 0 ? (double)(total - done) / rate : 0;
    fprintf(stderr, "%s%s [pass %d/2] %lld/%lld images  %.1f img/s  ETA %.0fs%s", p->tty ? "\r" : "", p->category,
            pass, (long long)done, (long long)total, rate, eta, p->tty ? "\033[K" : "\n");
    if (p->tty && done == total) fputc('\n', stderr);
}

static int mkdir_p(const char *path)
{
    char *p = strdup(path);
    if (!p) return -1;
    for (char *c = p + 1; *c; c++)
        if (*c == '/') {
            *c = 0;
            mkdir(p, 0755);
            *c = '/';
        }
    int rc = mkdir(p, 0755);
    struct stat st;
    rc = (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) ? 0 : -1;
    free(p);
    return rc;
}

/* OUTDIR/report.html: per category the metrics, curves (image ROC/PR, PRO, region F1 built in; pixel
 * ROC/PR added here) and the gallery of worst false positives / misses (maps from .npy files). */
static int write_report(const char *path, const char *dataset, int ncat, const saa_dataset *ds,
                        const saa_metrics *ms, const char *maps)
{
    saa_report_category *rc_cats = calloc((size_t)ncat, sizeof *rc_cats);
    saa_report_item **items = calloc((size_t)ncat, sizeof *items);
    int *nitems = calloc((size_t)ncat, sizeof *nitems);
    saa_report_curve(*curves)[2] = calloc((size_t)ncat, sizeof *curves);
    char(*summ)[2][64] = calloc((size_t)ncat, sizeof *summ);
    int rc = rc_cats && items && nitems && curves && summ ? SAA_OK : saa_set_error(SAA_ENOMEM, "out of memory");
    for (int c = 0; rc == SAA_OK && c < ncat; c++) {
        const saa_dataset *d = &ds[c];
        const saa_metrics *m = &ms[c];
        rc = saa_report_items_from_maps(d, maps, m, &items[c], &nitems[c]);
        if (rc != SAA_OK) break;
        snprintf(summ[c][0], sizeof summ[c][0], "AUROC %.2f", 100 * m->pixel_auroc);
        snprintf(summ[c][1], sizeof summ[c][1], "AP %.2f", 100 * m->pixel_ap);
        curves[c][0] = (saa_report_curve){"Pixel ROC", "FPR", "TPR", summ[c][0], m->pixel_roc.n, m->pixel_roc.x,
                                          m->pixel_roc.y, 0};
        curves[c][1] = (saa_report_curve){"Pixel PR", "recall", "precision", summ[c][1], m->pixel_pr.n,
                                          m->pixel_pr.x, m->pixel_pr.y, 1};
        rc_cats[c] = (saa_report_category){d->category, m, m->map_lo, m->map_hi, nitems[c], items[c],
                                           m->pixel_roc.n > 0 ? 2 : 0, curves[c]};
    }
    if (rc == SAA_OK) {
        char title[128];
        snprintf(title, sizeof title, "SAA+ evaluation: %s", dataset);
        rc = saa_report_write(path, title, ncat, rc_cats, NULL);
    }
    for (int c = 0; items && c < ncat; c++)
        if (items[c]) saa_report_items_free(items[c], nitems[c]);
    free(rc_cats), free(items), free(nitems), free(curves), free(summ);
    return rc;
}

int cmd_eval(int argc, char **argv)
{
    const char *dataset = NULL, *root = NULL, *category = "all", *maps = NULL, *outdir = NULL;
    const char *masks = NULL, *pattern = NULL;
    int quiet = 0, want_report = 1;
    saa_map_resize map_resize = SAA_MAP_RESIZE_AUTO;
    saa_eval_params p;
    saa_eval_params_default(&p);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout);
        if (!strcmp(a, "--quiet")) {
            quiet = 1;
            continue;
        }
        if (!strcmp(a, "--no-report")) {
            want_report = 0;
            continue;
        }
        if (!more) {
            fprintf(stderr, "saa eval: %s needs a value\n", a);
            return usage(stderr);
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--dataset"))
            dataset = v;
        else if (!strcmp(a, "--root"))
            root = v;
        else if (!strcmp(a, "--category"))
            category = v;
        else if (!strcmp(a, "--maps"))
            maps = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output"))
            outdir = v;
        else if (!strcmp(a, "--masks"))
            masks = v;
        else if (!strcmp(a, "--mask-pattern"))
            pattern = v;
        else if (!strcmp(a, "--score-memory")) {
            char *end;
            double mb = strtod(v, &end);
            if (*end || !(mb > 0)) {
                fprintf(stderr, "saa eval: --score-memory expects a positive number of MB, got \"%s\"\n", v);
                return 2;
            }
            p.memory_entries = (int64_t)(mb * 1e6 / 24) + 1;
        } else if (!strcmp(a, "--map-resize")) {
            if (!strcmp(v, "auto"))
                map_resize = SAA_MAP_RESIZE_AUTO;
            else if (!strcmp(v, "cubic"))
                map_resize = SAA_MAP_RESIZE_CUBIC;
            else if (!strcmp(v, "linear"))
                map_resize = SAA_MAP_RESIZE_LINEAR;
            else {
                fprintf(stderr, "saa eval: --map-resize expects auto, cubic or linear, got \"%s\"\n", v);
                return 2;
            }
        }
        else if (!strcmp(a, "--resolution")) {
            char *end;
            long r = strtol(v, &end, 10);
            if (*end || r < 1 || r > 8192) {
                fprintf(stderr, "saa eval: --resolution expects an integer in 1..8192, got \"%s\"\n", v);
                return 2;
            }
            p.resolution = (int)r;
        } else if (!strcmp(a, "--shard") || !strcmp(a, "--merge")) {
            fprintf(stderr, "saa eval: %s is not implemented yet (it comes with the model pipeline)\n", a);
            return 1;
        } else {
            fprintf(stderr, "saa eval: unknown option %s\n", a);
            return usage(stderr);
        }
    }
    if (!dataset || !root || !outdir) {
        fprintf(stderr, "saa eval: --dataset, --root and -o are required\n");
        return usage(stderr);
    }
    if (!maps) {
        fprintf(stderr, "saa eval: running the models over a test set is not implemented yet; "
                        "compute metrics from saved maps with --maps DIR\n");
        return 1;
    }
    saa_dataset_kind kind;
    if (saa_dataset_kind_parse(dataset, &kind) != SAA_OK) {
        fprintf(stderr, "saa eval: %s\n", saa_last_error());
        return 2;
    }
    char **cats = NULL;
    int ncat = 0;
    if (!strcmp(category, "all")) {
        if (saa_dataset_categories(kind, root, &cats, &ncat) != SAA_OK) {
            fprintf(stderr, "saa eval: %s\n", saa_last_error());
            return 1;
        }
    } else {
        cats = malloc(sizeof *cats);
        cats[0] = strdup(category);
        ncat = 1;
    }
    if (mkdir_p(outdir) != 0) {
        fprintf(stderr, "saa eval: cannot create %s\n", outdir);
        saa_dataset_names_free(cats, ncat);
        return 1;
    }
    saa_dataset_options opts = {masks, pattern};
    double *values = calloc((size_t)(ncat + 1) * SAA_N_METRICS, sizeof *values);
    const char **labels = calloc((size_t)ncat + 1, sizeof *labels);
    cJSON *all = cJSON_CreateObject(), *jcats = cJSON_AddObjectToObject(all, "categories");
    cJSON_AddStringToObject(all, "dataset", dataset);
    saa_dataset *dsets = calloc((size_t)ncat, sizeof *dsets);
    saa_metrics *mets = calloc((size_t)ncat, sizeof *mets);
    int ndone = 0;
    int status = 0;
    progress_state ps = {0};
    ps.quiet = quiet;
    ps.tty = isatty(2);
    for (int c = 0; c < ncat && status == 0; c++) {
        saa_dataset d;
        saa_metrics m;
        if (saa_dataset_open(kind, root, cats[c], &opts, &d) != SAA_OK) {
            fprintf(stderr, "saa eval: %s\n", saa_last_error());
            status = 1;
            break;
        }
        ps.category = d.category;
        if (saa_eval_maps(&d, maps, &p, map_resize, on_progress, &ps, &m) != SAA_OK) {
            if (!quiet && ps.tty) fputc('\n', stderr);
            fprintf(stderr, "saa eval: %s: %s\n", d.category, saa_last_error());
            saa_dataset_free(&d);
            status = 1;
            break;
        }
        size_t n = strlen(outdir) + strlen(d.category) + 32;
        char *dir = malloc(n), *path = malloc(n);
        snprintf(dir, n, "%s/%s", outdir, d.category);
        saa_metrics_values(&m, values + (size_t)c * SAA_N_METRICS);
        labels[c] = cats[c];
        int rc = mkdir_p(dir) == 0 ? SAA_OK : saa_set_error(SAA_EIO, "%s: cannot create folder", dir);
        if (rc == SAA_OK) {
            snprintf(path, n, "%s/metrics.json", dir);
            rc = saa_metrics_write_json(path, dataset, d.category, &p, &m);
        }
        if (rc == SAA_OK) {
            snprintf(path, n, "%s/metrics.csv", dir);
            rc = saa_metrics_write_csv(path, 1, &labels[c], values + (size_t)c * SAA_N_METRICS);
        }
        if (rc != SAA_OK) {
            fprintf(stderr, "saa eval: %s\n", saa_last_error());
            status = 1;
        } else {
            cJSON *o = cJSON_AddObjectToObject(jcats, d.category);
            cJSON_AddNumberToObject(o, "n_images", (double)m.n_images);
            cJSON_AddNumberToObject(o, "n_anomalous", (double)m.n_anomalous);
            for (int i = 0; i < SAA_N_METRICS; i++) {
                double v = values[(size_t)c * SAA_N_METRICS + i];
                if (isfinite(v))
                    cJSON_AddNumberToObject(o, saa_metric_names[i], v);
                else
                    cJSON_AddNullToObject(o, saa_metric_names[i]);
            }
            printf("%-14s", d.category);
            for (int i = 0; i < SAA_N_METRICS; i++) {
                double v = values[(size_t)c * SAA_N_METRICS + i];
                if (isfinite(v))
                    printf(" %s=%.2f", saa_metric_names[i], 100 * v);
                else
                    printf(" %s=null", saa_metric_names[i]);
            }
            printf("\n");
        }
        free(dir), free(path);
        dsets[c] = d, mets[c] = m, ndone = c + 1; /* kept for the report */
    }
    if (status == 0) {
        /* the paper's mean row: mean over categories; null when a category's value is undefined */
        double *mean = values + (size_t)ncat * SAA_N_METRICS;
        cJSON *jm = cJSON_AddObjectToObject(all, "mean");
        for (int i = 0; i < SAA_N_METRICS; i++) {
            double s = 0;
            for (int c = 0; c < ncat; c++) s += values[(size_t)c * SAA_N_METRICS + i];
            mean[i] = s / ncat;
            if (isfinite(mean[i]))
                cJSON_AddNumberToObject(jm, saa_metric_names[i], mean[i]);
            else
                cJSON_AddNullToObject(jm, saa_metric_names[i]);
        }
        labels[ncat] = "mean";
        size_t n = strlen(outdir) + 32;
        char *path = malloc(n);
        snprintf(path, n, "%s/metrics.csv", outdir);
        int rc = saa_metrics_write_csv(path, ncat + 1, labels, values);
        char *text = cJSON_Print(all);
        snprintf(path, n, "%s/metrics.json", outdir);
        FILE *f = rc == SAA_OK && text ? fopen(path, "w") : NULL;
        if (f) {
            fprintf(f, "%s\n", text);
            if (fclose(f) != 0) rc = saa_set_error(SAA_EIO, "%s: cannot write", path);
        } else if (rc == SAA_OK) {
            rc = saa_set_error(SAA_EIO, "%s: cannot write", path);
        }
        if (rc != SAA_OK) {
            fprintf(stderr, "saa eval: %s\n", saa_last_error());
            status = 1;
        }
        free(text);
        free(path);
    }
    if (status == 0 && want_report) {
        size_t n = strlen(outdir) + 32;
        char *path = malloc(n);
        snprintf(path, n, "%s/report.html", outdir);
        if (write_report(path, dataset, ncat, dsets, mets, maps) != SAA_OK) {
            fprintf(stderr, "saa eval: report: %s\n", saa_last_error());
            status = 1;
        }
        free(path);
    }
    for (int c = 0; c < ndone; c++) saa_metrics_free(&mets[c]), saa_dataset_free(&dsets[c]);
    free(mets), free(dsets);
    cJSON_Delete(all);
    free(values);
    free(labels);
    saa_dataset_names_free(cats, ncat);
    return status;
}
