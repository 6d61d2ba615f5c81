/* saa eval: the SAA+ evaluation protocol (eval_SAA.py) over a labelled test set: run the pipeline over every
 * test image (resumable, shardable; eval_run.c), or take maps written earlier (--maps), then the metrics of
 * each category, their mean and the HTML report. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/commands.h"
#include "cli/eval_cli.h"
#include "saa/datasets.h"
#include "saa/eval.h"
#include "saa/metrics.h"
#include "saa/report.h"
#include "saa/tensor.h"

static int usage(FILE *f)
{
    fprintf(f,
            "usage: saa eval --dataset mvtec|visa|ksdd2|mtd|folder --root DIR [--category NAME|all] -o OUTDIR [options]\n"
            "       saa eval --dataset ... --root DIR --shard I/N -o OUTDIR [options]\n"
            "       saa eval --merge OUTDIR1 OUTDIR2 ... -o OUTDIR [--root DIR]\n"
            "       saa eval --dataset ... --root DIR --maps MAPDIR -o OUTDIR\n"
            "\n"
            "Evaluates SAA+ as the official eval_SAA.py: runs the pipeline over each category's test set with the\n"
            "dataset's hybrid prompts (presets/DATASET.json), box/text thresholds 0.1 and the anomaly map resized to\n"
            "the evaluation resolution (Model(out_size=400)), then computes image AUROC/AP/max-F1, pixel AUROC/AP/\n"
            "max-F1 (F_p), region max-F1 (F_r) and AU-PRO (official and corrected) per category and their mean.\n"
            "\n"
            "Writes into OUTDIR:\n"
            "  CATEGORY/TYPE/STEM_*   per-image outputs as saa segment (STEM_map.npy at --out-size, default the\n"
            "                         evaluation resolution: the map the metrics use; STEM_map_full.npy, _mask.png,\n"
            "                         _overlay.png, _map.png, .json); TYPE/STEM as in the dataset (crack/000)\n"
            "  CATEGORY/metrics.json + metrics.csv, metrics.json + metrics.csv (all categories and their mean)\n"
            "  report.html            self-contained HTML report (tables, curves, gallery of the worst images)\n"
            "  run.json               the settings and prompts the outputs were made with\n"
            "Resume: run the same command again; images whose outputs are complete are skipped (the count is\n"
            "printed), and OUTDIR must hold outputs of the same settings.\n"
            "\n"
            "Datasets (--root):\n"
            "  mvtec   ROOT/CATEGORY/test/DEFECT/NAME.png, ground_truth/DEFECT/NAME_mask.png\n"
            "  visa    ROOT/split_csv/1cls.csv (or the prepared ROOT/CATEGORY/test/{good,bad} layout)\n"
            "  ksdd2   NNNNN.png + NNNNN_GT.png (ROOT/train when present, as the official reader)\n"
            "  mtd     ROOT/MT_*/Imgs/NAME.jpg + NAME.png\n"
            "  folder  ROOT/*.png|jpg, masks in --masks DIR named by --mask-pattern (default {stem}.png); the\n"
            "          category (output folder) is ROOT's name, its prompts are given as for saa segment:\n"
            "          --category NAME (a built-in category, e.g. mvtec/bottle), --prompts FILE [--category NAME],\n"
            "          or --object TEXT --defect TEXT ...\n"
            "  --category NAME|all   categories to evaluate (default all; several: a,b,c)\n"
            "  --masks DIR, --mask-pattern P   folder dataset masks ({stem}/{name} replaced)\n"
            "\n"
            "Sharding (several machines or processes):\n"
            "  --shard I/N           run only shard I of N of every category (sample k goes to shard k %% N + 1 in\n"
            "                        the sorted listing); writes the per-image outputs and OUTDIR/shard-I-of-N.json,\n"
            "                        no metrics. Shards may share one OUTDIR: once all are done, the plain command\n"
            "                        on that OUTDIR skips every image and computes the metrics.\n"
            "  --merge DIR...        combine shard folders: checks that every test image is covered exactly once\n"
            "                        (naming the missing ones), links (or copies) their outputs into OUTDIR as an\n"
            "                        unsharded run writes them and computes the same metrics and report. Dataset,\n"
            "                        categories, settings and resolution come from the manifests; --root DIR (and\n"
            "                        --masks DIR) when the dataset is elsewhere on this machine.\n"
            "\n"
            "Maps written earlier:\n"
            "  --maps MAPDIR         no models: MAPDIR/CATEGORY/TYPE/STEM{.npy,_map.npy} (float32/64 HxW) or\n"
            "                        {.png,_map.png} (gray 8/16-bit); a saa OUTDIR gives the same metrics as its run\n"
            "  --map-resize M        auto|cubic|linear: how maps not at R x R are resized; cubic = the evaluation's\n"
            "                        specify_resolution, linear = the model's own cv2.resize of its full-resolution\n"
            "                        map to R; auto (default): linear for saa's *_map.npy/_map.png/_map_full.npy\n"
            "                        (a STEM_map.* not at R x R gives way to STEM_map_full.npy), cubic otherwise\n"
            "\n"
            "Prompts: mvtec/visa/ksdd2/mtd use presets/DATASET.json, or --prompts FILE with an entry per category\n");
    run_options_help_models(f);
    fprintf(f, "Run options:\n");
    run_options_help_run(f, "default --resolution, as eval_SAA.py's Model");
    fprintf(f,
            "Evaluation:\n"
            "  --resolution R        evaluation resolution (default 400, as eval_SAA.py)\n"
            "  --score-memory MB     memory for the distinct pixel scores of a category before they spill to a\n"
            "                        temporary file (default 100; peak use is about twice that; results are identical)\n"
            "  --no-report           do not write OUTDIR/report.html\n"
            "  --quiet               no progress on stderr\n"
            "Progress (stderr): images done/total, rate and ETA; one updating line on a terminal, plain lines\n"
            "otherwise.\n");
    return f == stderr ? 2 : 0;
}

typedef struct {
    cli_progress prog;
    const char *category;
    int pass;
} metric_progress;

/* pass 1 reads every map for the global min/max, pass 2 scores them */
static void on_metric_progress(void *ctx, int pass, int64_t done, int64_t total)
{
    metric_progress *p = ctx;
    if (pass != p->pass) cli_progress_start(&p->prog, p->prog.quiet, done), p->pass = pass; /* clock from here */
    char label[300];
    snprintf(label, sizeof label, "%s metrics [pass %d/2]", p->category, pass);
    cli_progress_show(&p->prog, label, "maps", done, total);
}

/* OUTDIR/report.html: per category the metrics, curves (image ROC/PR, PRO, region F1 built in; pixel
 * ROC/PR added here) and the gallery of worst false positives / misses (maps from the map files). */
static int write_report(const char *path, const char *dataset, int ncat, const saa_dataset *ds,
                        const saa_metrics *ms, const char *maps, const char *subtitle)
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
        saa_report_options o;
        saa_report_options_default(&o);
        o.subtitle = subtitle;
        rc = saa_report_write(path, title, ncat, rc_cats, &o);
    }
    for (int c = 0; items && c < ncat; c++)
        if (items[c]) saa_report_items_free(items[c], nitems[c]);
    free(rc_cats), free(items), free(nitems), free(curves), free(summ);
    return rc;
}

static void add_metric(cJSON *o, const char *name, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, name, v);
    else
        cJSON_AddNullToObject(o, name);
}

/* The metrics of every category of set from the maps in maps_dir: OUTDIR/CATEGORY/metrics.{json,csv}, then
 * OUTDIR/metrics.{json,csv} with the mean row and OUTDIR/report.html. One row per category on stdout. */
static int eval_metrics(const eval_set *set, const char *maps, const char *outdir, const saa_eval_params *p,
                        saa_map_resize map_resize, int quiet, int want_report, const char *subtitle)
{
    const int ncat = set->ncat;
    double *values = calloc((size_t)(ncat + 1) * SAA_N_METRICS, sizeof *values);
    const char **labels = calloc((size_t)ncat + 1, sizeof *labels);
    saa_metrics *mets = calloc((size_t)ncat, sizeof *mets);
    cJSON *all = cJSON_CreateObject(), *jcats = cJSON_AddObjectToObject(all, "categories");
    cJSON_AddStringToObject(all, "dataset", set->dataset);
    int status = values && labels && mets && jcats ? 0 : 1, ndone = 0;
    if (status) fprintf(stderr, "saa eval: out of memory\n");
    if (!status && cli_mkdir_p(outdir) != 0) {
        fprintf(stderr, "saa eval: cannot create %s\n", outdir);
        status = 1;
    }
    metric_progress mp = {{0}, NULL, 0};
    mp.prog.quiet = quiet;
    for (int c = 0; c < ncat && !status; c++) {
        const saa_dataset *d = &set->dsets[c];
        saa_metrics *m = &mets[c];
        mp.category = d->category;
        mp.pass = 0;
        if (saa_eval_maps(d, maps, p, map_resize, on_metric_progress, &mp, m) != SAA_OK) {
            if (!quiet && mp.prog.tty) fputc('\n', stderr);
            fprintf(stderr, "saa eval: %s: %s\n", d->category, saa_last_error());
            status = 1;
            break;
        }
        ndone = c + 1;
        double *v = values + (size_t)c * SAA_N_METRICS;
        saa_metrics_values(m, v);
        labels[c] = d->category;
        char *dir = cli_printf("%s/%s", outdir, d->category);
        char *json = cli_printf("%s/metrics.json", dir ? dir : ""), *csv = cli_printf("%s/metrics.csv", dir ? dir : "");
        int rc = dir && json && csv ? SAA_OK : saa_set_error(SAA_ENOMEM, "out of memory");
        if (rc == SAA_OK && cli_mkdir_p(dir) != 0) rc = saa_set_error(SAA_EIO, "%s: cannot create folder", dir);
        if (rc == SAA_OK) rc = saa_metrics_write_json(json, set->dataset, d->category, p, m);
        if (rc == SAA_OK) rc = saa_metrics_write_csv(csv, 1, &labels[c], v);
        free(dir), free(json), free(csv);
        if (rc != SAA_OK) {
            fprintf(stderr, "saa eval: %s\n", saa_last_error());
            status = 1;
            break;
        }
        cJSON *o = cJSON_AddObjectToObject(jcats, d->category);
        cJSON_AddNumberToObject(o, "n_images", (double)m->n_images);
        cJSON_AddNumberToObject(o, "n_anomalous", (double)m->n_anomalous);
        printf("%-14s", d->category);
        for (int i = 0; i < SAA_N_METRICS; i++) {
            add_metric(o, saa_metric_names[i], v[i]);
            if (isfinite(v[i]))
                printf(" %s=%.2f", saa_metric_names[i], 100 * v[i]);
            else
                printf(" %s=null", saa_metric_names[i]);
        }
        printf("\n");
        fflush(stdout);
    }
    if (!status) {
        /* the paper's mean row: mean over categories; null when a category's value is undefined */
        double *mean = values + (size_t)ncat * SAA_N_METRICS;
        cJSON *jm = cJSON_AddObjectToObject(all, "mean");
        for (int i = 0; i < SAA_N_METRICS; i++) {
            double s = 0;
            for (int c = 0; c < ncat; c++) s += values[(size_t)c * SAA_N_METRICS + i];
            mean[i] = s / ncat;
            add_metric(jm, saa_metric_names[i], mean[i]);
        }
        labels[ncat] = "mean";
        char *csv = cli_printf("%s/metrics.csv", outdir), *json = cli_printf("%s/metrics.json", outdir);
        char *text = cJSON_Print(all);
        int rc = csv && json && text ? saa_metrics_write_csv(csv, ncat + 1, labels, values)
                                     : saa_set_error(SAA_ENOMEM, "out of memory");
        FILE *f = rc == SAA_OK ? fopen(json, "w") : NULL;
        if (rc == SAA_OK && (!f || fprintf(f, "%s\n", text) < 0)) rc = saa_set_error(SAA_EIO, "%s: cannot write", json);
        if (f && fclose(f) != 0 && rc == SAA_OK) rc = saa_set_error(SAA_EIO, "%s: cannot write", json);
        if (rc != SAA_OK) {
            fprintf(stderr, "saa eval: %s\n", saa_last_error());
            status = 1;
        }
        free(text), free(csv), free(json);
    }
    if (!status && want_report) {
        char *path = cli_printf("%s/report.html", outdir);
        if (!path || write_report(path, set->dataset, ncat, set->dsets, mets, maps, subtitle) != SAA_OK) {
            fprintf(stderr, "saa eval: report: %s\n", path ? saa_last_error() : "out of memory");
            status = 1;
        }
        free(path);
    }
    for (int c = 0; c < ndone; c++) saa_metrics_free(&mets[c]);
    free(mets);
    cJSON_Delete(all);
    free(values);
    free(labels);
    return status;
}

/* "I/N" with 1 <= I <= N */
static int parse_shard(const char *s, int *index, int *count)
{
    int end = 0;
    if (sscanf(s, "%d/%d%n", index, count, &end) != 2 || s[end] || *count < 1 || *index < 1 || *index > *count ||
        *count > 1000000 || strspn(s, "0123456789/") != strlen(s)) {
        fprintf(stderr, "saa eval: --shard expects I/N with 1 <= I <= N (e.g. 2/4), got '%s'\n", s);
        return 0;
    }
    return 1;
}

/* "a,b,c" -> names (pointers into a copy held by *buf) */
static int split_categories(const char *text, char **buf, const char ***names)
{
    *buf = strdup(text);
    *names = calloc(strlen(text) + 1, sizeof **names);
    if (!*buf || !*names) return -1;
    int n = 0;
    for (char *save = NULL, *t = strtok_r(*buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) (*names)[n++] = t;
    return n;
}

int cmd_eval(int argc, char **argv)
{
    const char *dataset = NULL, *root = NULL, *maps = NULL, *outdir = NULL, *shard = NULL;
    const char **merge = calloc((size_t)argc + 1, sizeof *merge);
    int n_merge = 0, quiet = 0, want_report = 1, shard_i = 0, shard_n = 0, status = 2;
    saa_map_resize map_resize = SAA_MAP_RESIZE_AUTO;
    saa_eval_params p;
    saa_eval_params_default(&p);
    int resolution_given = 0;
    eval_set set;
    memset(&set, 0, sizeof set);
    run_options ro;
    char *cat_buf = NULL, *subtitle = NULL;
    const char **cat_names = NULL;
    if (run_options_init(&ro, argc) != 0 || !merge) {
        fprintf(stderr, "saa eval: out of memory\n");
        goto out;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int taken = run_options_parse(&ro, "eval", argc, argv, &i);
        if (taken < 0) goto out;
        if (taken) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            status = usage(stdout);
            goto out;
        }
        if (!strcmp(a, "--quiet")) {
            quiet = 1;
            continue;
        }
        if (!strcmp(a, "--no-report")) {
            want_report = 0;
            continue;
        }
        if (!strcmp(a, "--merge")) { /* the folders up to the next option */
            while (i + 1 < argc && argv[i + 1][0] != '-') merge[n_merge++] = argv[++i];
            if (!n_merge) {
                fprintf(stderr, "saa eval: --merge needs the shard folders\n");
                goto out;
            }
            continue;
        }
        if (a[0] != '-') {
            fprintf(stderr, "saa eval: unexpected argument '%s' (saa eval --help)\n", a);
            goto out;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "saa eval: %s needs a value\n", a);
            goto out;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--dataset"))
            dataset = v;
        else if (!strcmp(a, "--root"))
            root = v;
        else if (!strcmp(a, "--maps"))
            maps = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output"))
            outdir = v;
        else if (!strcmp(a, "--masks"))
            set.opts.mask_dir = v;
        else if (!strcmp(a, "--mask-pattern"))
            set.opts.mask_pattern = v;
        else if (!strcmp(a, "--shard"))
            shard = v;
        else if (!strcmp(a, "--score-memory")) {
            char *end;
            double mb = strtod(v, &end);
            if (*end || !(mb > 0)) {
                fprintf(stderr, "saa eval: --score-memory expects a positive number of MB, got \"%s\"\n", v);
                goto out;
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
                goto out;
            }
        } else if (!strcmp(a, "--resolution")) {
            char *end;
            long r = strtol(v, &end, 10);
            if (*end || r < 1 || r > 8192) {
                fprintf(stderr, "saa eval: --resolution expects an integer in 1..8192, got \"%s\"\n", v);
                goto out;
            }
            p.resolution = (int)r;
            resolution_given = 1;
        } else {
            fprintf(stderr, "saa eval: unknown option %s (saa eval --help)\n", a);
            goto out;
        }
    }
    /* the modes and their options */
    if (!outdir) {
        fprintf(stderr, "saa eval: -o OUTDIR is required (saa eval --help)\n");
        goto out;
    }
    if ((maps != NULL) + (n_merge > 0) + (shard != NULL) > 1) {
        fprintf(stderr, "saa eval: --maps, --shard and --merge are different modes: give one\n");
        goto out;
    }
    if (shard && !parse_shard(shard, &shard_i, &shard_n)) goto out;
    if ((maps || n_merge) && ro.n_model_args) {
        fprintf(stderr, "saa eval: %s computes metrics from existing outputs: model, prompt and run options do not "
                        "apply\n", maps ? "--maps" : "--merge");
        goto out;
    }
    if (!n_merge && (!dataset || !root)) {
        fprintf(stderr, "saa eval: --dataset and --root are required (saa eval --help)\n");
        goto out;
    }
    if (n_merge && ro.category) {
        fprintf(stderr, "saa eval: --merge takes the categories from the shard manifests; --category does not apply\n");
        goto out;
    }
    if (run_options_check(&ro, "eval") != 0) goto out;
    if (!n_merge) {
        if (saa_dataset_kind_parse(dataset, &set.kind) != SAA_OK) {
            fprintf(stderr, "saa eval: %s\n", saa_last_error());
            goto out;
        }
        if (set.kind != SAA_DS_FOLDER && (ro.object || (set.opts.mask_dir || set.opts.mask_pattern))) {
            fprintf(stderr, "saa eval: %s only applies to --dataset folder\n", ro.object ? "--object" : "--masks/--mask-pattern");
            goto out;
        }
        if (set.kind == SAA_DS_FOLDER && ro.category && maps) {
            fprintf(stderr, "saa eval: for a folder dataset --category names its prompts; --maps uses none\n");
            goto out;
        }
        if (set.kind == SAA_DS_FOLDER && !maps && (ro.object != NULL) + (ro.prompts != NULL || ro.category != NULL) != 1) {
            fprintf(stderr, "saa eval: a folder dataset needs its prompts: --category NAME (built-in, e.g. "
                            "mvtec/bottle), --prompts FILE [--category NAME] or --object TEXT --defect TEXT\n");
            goto out;
        }
    }
    status = 1;
    set.dataset = dataset;
    set.root = root;
    set.resolution = p.resolution;
    if (n_merge) {
        if (!resolution_given) set.resolution = 0; /* the shards' */
        if (eval_merge(merge, n_merge, root, dataset, outdir, &set, &subtitle) != 0) goto out;
        p.resolution = set.resolution;
        maps = outdir;
    } else {
        int ncat = 0;
        if (set.kind != SAA_DS_FOLDER && ro.category && strcmp(ro.category, "all") &&
            (ncat = split_categories(ro.category, &cat_buf, &cat_names)) < 0) {
            fprintf(stderr, "saa eval: out of memory\n");
            goto out;
        }
        if (eval_set_open(&set, ncat ? cat_names : NULL, ncat) != 0) goto out;
        if (!maps) {
            int rc = eval_run(&set, &ro, outdir, shard_i, shard_n, quiet);
            if (rc != 0 || shard) {
                status = rc;
                goto out;
            }
            maps = outdir;
            char fixes[256];
            int64_t n = 0;
            for (int c = 0; c < set.ncat; c++) n += set.dsets[c].n;
            subtitle = cli_printf("%lld test images; SAA+ with fixes: %s; box/text thresholds %g/%g; maps %dx%d, "
                                  "evaluated at %dx%d", (long long)n, saa_fix_names(ro.fixes, fixes, sizeof fixes),
                                  ro.box_threshold, ro.text_threshold, ro.out_size ? ro.out_size : p.resolution,
                                  ro.out_size ? ro.out_size : p.resolution, p.resolution, p.resolution);
        } else {
            subtitle = cli_printf("maps from %s, evaluated at %dx%d", maps, p.resolution, p.resolution);
        }
    }
    status = eval_metrics(&set, maps, outdir, &p, map_resize, quiet, want_report, subtitle);
out:
    eval_set_free(&set);
    eval_set_free_strings(&set);
    run_options_free(&ro);
    free(merge);
    free(cat_buf);
    free(cat_names);
    free(subtitle);
    return status;
}
