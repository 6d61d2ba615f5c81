/* saa eval without --maps: the SAA+ pipeline over a test set as eval_SAA.py runs it (one Model per category
 * with the dataset's hybrid prompts, box/text thresholds 0.1, out_size = the evaluation resolution), with
 * resume (complete outputs are kept), shards (--shard I/N) and their merge (--merge). */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/eval_cli.h"
#include "saa/image.h"
#include "saa/json.h"
#include "saa/saa.h"

/* ---------- helpers ---------- */

char *cli_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

int cli_mkdir_p(const char *path)
{
    char *p = strdup(path);
    if (!p) return -1;
    for (char *c = p + 1; *c; c++)
        if (*c == '/') {
            *c = 0;
            mkdir(p, 0755);
            *c = '/';
        }
    mkdir(p, 0755);
    struct stat st;
    int rc = (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) ? 0 : -1;
    free(p);
    return rc;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fmt_duration(double s, char *buf, size_t n)
{
    long t = lround(s);
    if (t >= 3600)
        snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60)
        snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, n, "%lds", t);
}

void cli_progress_start(cli_progress *p, int quiet, int64_t base)
{
    p->quiet = quiet;
    p->tty = isatty(2);
    p->t0 = p->last_time = now_s();
    p->last_step = -1;
    p->base = base;
}

void cli_progress_show(cli_progress *p, const char *label, const char *what, int64_t done, int64_t total)
{
    if (p->quiet || total <= 0) return;
    double t = now_s(), el = t - p->t0;
    int step = (int)(20 * done / total); /* 5% steps */
    /* a log gets a line per 5% (at most one a second) or every 30 s, and the last one */
    if (!p->tty && done != total && !(step != p->last_step && t - p->last_time >= 1) && t - p->last_time < 30)
        return;
    if (p->tty && done != total && done > 1 && t - p->last_time < 0.1) return; /* a terminal: 10 updates/s at most */
    p->last_step = step;
    p->last_time = t;
    double rate = el > 0 && done > p->base ? (double)(done - p->base) / el : 0;
    char eta[32] = "?";
    if (rate > 0) fmt_duration((double)(total - done) / rate, eta, sizeof eta);
    fprintf(stderr, "%s%s: %lld/%lld %s  %.2f img/s  ETA %s%s", p->tty ? "\r" : "", label, (long long)done,
            (long long)total, what, rate, eta, p->tty ? "\033[K" : "\n");
    if (p->tty && done == total) fputc('\n', stderr);
}

/* path.part, then renamed onto path */
static int write_json_atomic(const char *path, const cJSON *j)
{
    char *text = cJSON_Print(j), *tmp = cli_printf("%s.part", path);
    FILE *f = text && tmp ? fopen(tmp, "w") : NULL;
    int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0) ok = 0;
    if (ok && rename(tmp, path) != 0) ok = 0;
    if (!ok) {
        fprintf(stderr, "saa eval: %s: cannot write: %s\n", path, strerror(errno));
        if (tmp) remove(tmp);
    }
    free(text);
    free(tmp);
    return ok ? 0 : 1;
}

/* outputs of sample id "TYPE/STEM" of category: folder OUT/CATEGORY/TYPE, file stem STEM */
static char *sample_dir(const char *outdir, const char *category, const char *id, const char **stem)
{
    const char *slash = strrchr(id, '/');
    *stem = slash ? slash + 1 : id;
    return slash ? cli_printf("%s/%s/%.*s", outdir, category, (int)(slash - id), id)
                 : cli_printf("%s/%s", outdir, category);
}

static int sample_complete(const char *outdir, const char *category, const char *id)
{
    const char *stem;
    char *dir = sample_dir(outdir, category, id, &stem);
    int done = dir && saa_outputs_complete(dir, stem);
    free(dir);
    return done;
}

/* ---------- the test set ---------- */

static int cmp_sample_id(const void *a, const void *b)
{
    return strcmp((*(const saa_sample *const *)a)->id, (*(const saa_sample *const *)b)->id);
}

/* Outputs are named by sample id: two images with one id (a folder holding x.png and x.jpg) would share them. */
static int check_unique_ids(const saa_dataset *d)
{
    const saa_sample **v = malloc(sizeof *v * (size_t)(d->n ? d->n : 1));
    if (!v) return fprintf(stderr, "saa eval: out of memory\n"), 1;
    for (int64_t i = 0; i < d->n; i++) v[i] = &d->samples[i];
    qsort(v, (size_t)d->n, sizeof *v, cmp_sample_id);
    int status = 0;
    for (int64_t i = 1; i < d->n && !status; i++)
        if (!strcmp(v[i - 1]->id, v[i]->id)) {
            fprintf(stderr, "saa eval: %s and %s would share the outputs %s/%s_*: rename one\n", v[i - 1]->image,
                    v[i]->image, d->category, v[i]->id);
            status = 1;
        }
    free(v);
    return status;
}

int eval_set_open(eval_set *set, const char *const *categories, int ncat)
{
    set->ncat = 0;
    set->dsets = NULL;
    char **known = NULL;
    int nknown = 0, status = 0;
    if (set->kind == SAA_DS_FOLDER) {
        ncat = 1; /* the folder is the category; --category names its prompts */
    } else {
        if (saa_dataset_categories(set->kind, set->root, &known, &nknown) != SAA_OK) {
            fprintf(stderr, "saa eval: %s\n", saa_last_error());
            return 1;
        }
        if (!categories) categories = (const char *const *)known, ncat = nknown;
        for (int c = 0; c < ncat && !status; c++) {
            int found = 0;
            for (int k = 0; k < nknown; k++) found |= !strcmp(categories[c], known[k]);
            if (found) continue;
            fprintf(stderr, "saa eval: unknown %s category '%s' under %s; known:", set->dataset, categories[c],
                    set->root);
            for (int k = 0; k < nknown; k++) fprintf(stderr, "%s %s", k ? "," : "", known[k]);
            fprintf(stderr, "\n");
            status = 1;
        }
    }
    if (!status) {
        set->dsets = calloc((size_t)(ncat > 0 ? ncat : 1), sizeof *set->dsets);
        if (!set->dsets) fprintf(stderr, "saa eval: out of memory\n"), status = 1;
    }
    for (int c = 0; c < ncat && !status; c++) {
        const char *name = set->kind == SAA_DS_FOLDER ? NULL : categories[c];
        if (saa_dataset_open(set->kind, set->root, name, &set->opts, &set->dsets[c]) != SAA_OK) {
            fprintf(stderr, "saa eval: %s\n", saa_last_error());
            status = 1;
        } else {
            set->ncat = c + 1;
            status = check_unique_ids(&set->dsets[c]);
        }
    }
    saa_dataset_names_free(known, nknown);
    if (status) eval_set_free(set);
    return status;
}

void eval_set_free(eval_set *set)
{
    for (int c = 0; c < set->ncat; c++) saa_dataset_free(&set->dsets[c]);
    free(set->dsets);
    set->dsets = NULL;
    set->ncat = 0;
}

void eval_set_free_strings(eval_set *set)
{
    for (int k = 0; k < 4; k++) free(set->own[k]), set->own[k] = NULL;
}

/* ---------- settings: what the outputs depend on (run.json, shard manifests) ---------- */

static cJSON *settings_json(const run_options *ro, const saa_options *so)
{
    char fixes[256];
    cJSON *s = cJSON_CreateObject();
    cJSON_AddNumberToObject(s, "box_threshold", ro->box_threshold);
    cJSON_AddNumberToObject(s, "text_threshold", ro->text_threshold);
    cJSON_AddNumberToObject(s, "out_size", so->out_size);
    cJSON_AddNumberToObject(s, "mask_threshold", ro->threshold);
    cJSON_AddStringToObject(s, "fixes", saa_fix_names(so->fixes, fixes, sizeof fixes));
    return s;
}

static cJSON *category_json(const saa_category *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object_prompt", c->object_prompt ? c->object_prompt : "");
    cJSON_AddNumberToObject(o, "object_count", c->object_count);
    cJSON_AddNumberToObject(o, "top_k", c->top_k);
    cJSON_AddNumberToObject(o, "max_area", c->max_area_ratio);
    cJSON *p = cJSON_AddArrayToObject(o, "prompts");
    for (int i = 0; i < c->n_prompts; i++) {
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(c->defect_prompts[i]));
        cJSON_AddItemToArray(pair, cJSON_CreateString(c->filter_phrases[i]));
        cJSON_AddItemToArray(p, pair);
    }
    return o;
}

static void json_short(const cJSON *v, char *buf, size_t n)
{
    char *t = v ? cJSON_PrintUnformatted(v) : NULL;
    snprintf(buf, n, "%s", t ? t : "(none)");
    if (t && strlen(t) >= n && n > 4) strcpy(buf + n - 4, "...");
    free(t);
}

/* The first key of object a or b whose values differ, as "key OLD (now NEW)"; 0 when equal. */
static int json_first_diff(const cJSON *old, const cJSON *now, char *buf, size_t n)
{
    const cJSON *it;
    for (int pass = 0; pass < 2; pass++) {
        const cJSON *from = pass ? old : now, *other = pass ? now : old;
        cJSON_ArrayForEach(it, from)
        {
            const cJSON *o = cJSON_GetObjectItemCaseSensitive(other, it->string);
            if (o && cJSON_Compare(o, it, 1)) continue;
            char a[160], b[160];
            json_short(pass ? it : o, a, sizeof a);
            json_short(pass ? o : it, b, sizeof b);
            snprintf(buf, n, "%s %s (now %s)", it->string, a, b);
            return 1;
        }
    }
    return 0;
}

static const char *json_str(const cJSON *j, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, key));
}

/* run.json: the dataset, the settings and the prompts of each category the outputs of outdir were made with */
static cJSON *run_record(const eval_set *set, cJSON *settings, cJSON *categories)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "written_by", "saa eval (run settings: a resumed run or --merge must match them)");
    cJSON_AddStringToObject(r, "dataset", set->dataset);
    cJSON_AddStringToObject(r, "root", set->root);
    if (set->opts.mask_dir) cJSON_AddStringToObject(r, "masks", set->opts.mask_dir);
    if (set->opts.mask_pattern) cJSON_AddStringToObject(r, "mask_pattern", set->opts.mask_pattern);
    cJSON_AddNumberToObject(r, "resolution", set->resolution);
    cJSON_AddItemToObject(r, "settings", settings);
    cJSON_AddItemToObject(r, "categories", categories);
    return r;
}

/* Checks that the outputs already in outdir (its run.json) were made with the same dataset, settings and
 * prompts; adds the categories recorded there to `categories` (run.json keeps them all). */
static int check_run_record(const char *outdir, const char *dataset, const cJSON *settings, cJSON *categories)
{
    char *path = cli_printf("%s/run.json", outdir);
    struct stat st;
    if (!path || stat(path, &st) != 0) {
        free(path);
        return 0;
    }
    cJSON *old = saa_json_load(path);
    int status = 0;
    char diff[400];
    if (!old) {
        fprintf(stderr, "saa eval: %s\n", saa_last_error());
        status = 1;
    } else if (!json_str(old, "dataset") || strcmp(json_str(old, "dataset"), dataset)) {
        fprintf(stderr, "saa eval: %s holds a %s evaluation, not %s: use another -o\n", outdir,
                json_str(old, "dataset") ? json_str(old, "dataset") : "different", dataset);
        status = 1;
    } else if (json_first_diff(cJSON_GetObjectItemCaseSensitive(old, "settings"), settings, diff, sizeof diff)) {
        fprintf(stderr, "saa eval: %s holds outputs made with %s; use another -o, or remove it to start over\n",
                outdir, diff);
        status = 1;
    } else {
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(old, "categories"))
        {
            const cJSON *now = cJSON_GetObjectItemCaseSensitive(categories, c->string);
            if (!now) {
                cJSON_AddItemToObject(categories, c->string, cJSON_Duplicate(c, 1));
            } else if (json_first_diff(c, now, diff, sizeof diff)) {
                fprintf(stderr,
                        "saa eval: %s holds outputs of %s made with other prompts: %s; use another -o, or remove "
                        "it to start over\n",
                        outdir, c->string, diff);
                status = 1;
                break;
            }
        }
    }
    cJSON_Delete(old);
    free(path);
    return status;
}

/* ---------- running the pipeline ---------- */

/* The hybrid prompts of a category: the dataset's preset (presets/DATASET.json, as eval_SAA.py takes
 * manul_prompts[dataset][class_name] and property_prompts[dataset][class_name]), the entry of the same name in
 * --prompts FILE, or for a folder dataset --category / --prompts / --object as saa segment. */
static int load_prompts(const eval_set *set, const run_options *ro, const char *category, saa_category *cat)
{
    char *name = NULL;
    if (set->kind != SAA_DS_FOLDER)
        name = ro->prompts ? strdup(category) : cli_printf("%s/%s", set->dataset, category);
    else if (ro->category)
        name = strdup(ro->category);
    else if (!ro->prompts && !ro->object) {
        fprintf(stderr, "saa eval: a folder dataset needs its prompts: --category NAME (built-in), --prompts FILE "
                        "[--category NAME] or --object TEXT --defect TEXT\n");
        return 2;
    }
    int rc = run_options_category(ro, name, cat);
    free(name);
    if (rc != SAA_OK) {
        fprintf(stderr, "saa eval: %s\n", saa_last_error());
        return 1;
    }
    return 0;
}

static int run_image(saa_models *m, const saa_category *cat, const saa_options *so, double threshold,
                     const saa_sample *s, const char *outdir, const char *category)
{
    const char *stem;
    char *dir = sample_dir(outdir, category, s->id, &stem);
    if (!dir || cli_mkdir_p(dir) != 0) {
        int rc = saa_set_error(SAA_EIO, "%s: cannot create the folder", dir ? dir : outdir);
        free(dir);
        return rc;
    }
    saa_image img;
    int rc = saa_image_load(s->image, &img);
    if (rc == SAA_OK) {
        saa_result r;
        rc = saa_segment(m, cat, so, &img, &r);
        if (rc == SAA_OK) {
            rc = saa_write_outputs(dir, stem, img.data, &r, threshold, 1, s->image);
            saa_result_free(&r);
        }
        saa_image_free(&img);
    }
    free(dir);
    return rc;
}

static cJSON *id_list(const saa_dataset *d)
{
    cJSON *a = cJSON_CreateArray();
    for (int64_t i = 0; i < d->n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(d->samples[i].id));
    return a;
}

int eval_run(eval_set *set, const run_options *ro, const char *outdir, int shard_i, int shard_n, int quiet)
{
    const int ncat = set->ncat;
    saa_options so;
    run_options_to_saa(ro, set->resolution, &so); /* eval_SAA.py: Model(out_size=eval_resolution) */
    saa_category *cats = calloc((size_t)ncat, sizeof *cats);
    int64_t *n_test = calloc((size_t)ncat, sizeof *n_test), *n_todo = calloc((size_t)ncat, sizeof *n_todo);
    uint8_t **todo = calloc((size_t)ncat, sizeof *todo);
    cJSON *settings = settings_json(ro, &so), *catj = cJSON_CreateObject(), *record = NULL;
    saa_models *models = NULL;
    int status = cats && n_test && n_todo && todo && settings && catj ? 0 : 1;
    if (status) fprintf(stderr, "saa eval: out of memory\n");
    int nloaded = 0;
    for (int c = 0; c < ncat && !status; c++) {
        status = load_prompts(set, ro, set->dsets[c].category, &cats[c]);
        if (!status) nloaded = c + 1, cJSON_AddItemToObject(catj, set->dsets[c].category, category_json(&cats[c]));
    }
    if (!status) status = check_run_record(outdir, set->dataset, settings, catj);
    int64_t all_todo = 0, all_n = 0;
    for (int c = 0; c < ncat && !status; c++) {
        saa_dataset *d = &set->dsets[c];
        n_test[c] = d->n;
        if (shard_n > 0 && saa_dataset_shard(d, shard_i, shard_n) != SAA_OK) {
            fprintf(stderr, "saa eval: %s\n", saa_last_error());
            status = 2;
            break;
        }
        todo[c] = calloc((size_t)(d->n ? d->n : 1), 1);
        if (!todo[c]) {
            fprintf(stderr, "saa eval: out of memory\n");
            status = 1;
            break;
        }
        for (int64_t i = 0; i < d->n; i++) n_todo[c] += todo[c][i] = !sample_complete(outdir, d->category, d->samples[i].id);
        all_todo += n_todo[c];
        all_n += d->n;
    }
    if (!status && all_todo > 0) { /* models are needed only when something is left to run */
        double t0 = now_s();
        if (saa_models_load(&ro->files, &models) != SAA_OK) {
            fprintf(stderr, "saa eval: %s\n", saa_last_error());
            status = 1;
        } else if (!quiet) {
            fprintf(stderr, "saa eval: models loaded in %.2f s\n", now_s() - t0);
        }
    }
    /* everything is checked: from here on files are written */
    if (!status && cli_mkdir_p(outdir) != 0) {
        fprintf(stderr, "saa eval: cannot create %s\n", outdir);
        status = 1;
    }
    if (!status) {
        record = run_record(set, settings, catj);
        settings = catj = NULL; /* owned by record */
        char *path = cli_printf("%s/run.json", outdir);
        status = path ? write_json_atomic(path, record) : 1;
        free(path);
    }
    cli_progress prog;
    cli_progress_start(&prog, quiet, 0);
    int64_t all_done = 0;
    for (int c = 0; c < ncat && !status; c++) {
        const saa_dataset *d = &set->dsets[c];
        if (!quiet) {
            char shard[64] = "";
            if (shard_n > 0) snprintf(shard, sizeof shard, "shard %d/%d: %lld of ", shard_i, shard_n, (long long)d->n);
            fprintf(stderr, "saa eval: %s: %s%lld test images, %lld already done (skipped), %lld to run", d->category,
                    shard, (long long)n_test[c], (long long)(d->n - n_todo[c]), (long long)n_todo[c]);
            if (n_todo[c])
                fprintf(stderr, " (%d prompts, %d object%s, top-%d)", cats[c].n_prompts, cats[c].object_count,
                        cats[c].object_count == 1 ? "" : "s", cats[c].top_k);
            fprintf(stderr, "\n");
        }
        int64_t done = 0;
        for (int64_t i = 0; i < d->n && !status; i++) {
            if (!todo[c][i]) continue;
            const saa_sample *s = &d->samples[i];
            if (run_image(models, &cats[c], &so, ro->threshold, s, outdir, d->category) != SAA_OK) {
                if (!quiet && prog.tty) fputc('\n', stderr);
                fprintf(stderr, "saa eval: %s: %s (outputs of the images done so far are kept: run again to resume)\n",
                        s->image, saa_last_error());
                status = 1;
                break;
            }
            done++, all_done++;
            char label[300];
            if (ncat > 1)
                snprintf(label, sizeof label, "%s [all %lld/%lld]", d->category, (long long)all_done, (long long)all_todo);
            else
                snprintf(label, sizeof label, "%s", d->category);
            cli_progress_show(&prog, label, "images", done, n_todo[c]);
        }
    }
    if (!status && shard_n > 0) { /* the manifest --merge reads: which images this shard covered */
        cJSON *m = cJSON_Duplicate(record, 1);
        char shard[48];
        snprintf(shard, sizeof shard, "%d/%d", shard_i, shard_n);
        cJSON_ReplaceItemInObjectCaseSensitive(m, "written_by",
                                               cJSON_CreateString("saa eval --shard (combine the shards with --merge)"));
        cJSON_AddStringToObject(m, "shard", shard);
        cJSON *n = cJSON_AddObjectToObject(m, "n_test"), *imgs = cJSON_AddObjectToObject(m, "images");
        cJSON *cats_here = cJSON_CreateObject();
        for (int c = 0; c < ncat; c++) {
            const char *name = set->dsets[c].category;
            cJSON_AddNumberToObject(n, name, (double)n_test[c]);
            cJSON_AddItemToObject(imgs, name, id_list(&set->dsets[c]));
            /* only this run's categories: the record may hold others from earlier runs in outdir */
            cJSON_AddItemToObject(cats_here, name,
                                  cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(
                                                      cJSON_GetObjectItemCaseSensitive(record, "categories"), name),
                                                  1));
        }
        cJSON_ReplaceItemInObjectCaseSensitive(m, "categories", cats_here);
        char *path = cli_printf("%s/shard-%d-of-%d.json", outdir, shard_i, shard_n);
        status = path ? write_json_atomic(path, m) : 1;
        if (!status && !quiet)
            fprintf(stderr, "saa eval: shard %d/%d done: %lld images; combine all %d shards with saa eval --merge\n",
                    shard_i, shard_n, (long long)all_n, shard_n);
        free(path);
        cJSON_Delete(m);
    }
    saa_models_free(models);
    for (int c = 0; c < nloaded; c++) saa_category_free(&cats[c]);
    for (int c = 0; todo && c < ncat; c++) free(todo[c]);
    free(cats), free(n_test), free(n_todo), free(todo);
    cJSON_Delete(settings), cJSON_Delete(catj), cJSON_Delete(record);
    return status;
}

/* ---------- --merge ---------- */

typedef struct {
    const char *dir;
    char *path;
    cJSON *j;
    int index, count;
} manifest;

/* Every DIR/shard-I-of-N.json of dirs. */
static int read_manifests(const char *const *dirs, int ndirs, manifest **out, int *n)
{
    *out = NULL;
    *n = 0;
    int cap = 0, status = 0;
    for (int k = 0; k < ndirs && !status; k++) {
        DIR *dp = opendir(dirs[k]);
        if (!dp) {
            fprintf(stderr, "saa eval: --merge: %s: cannot open folder: %s\n", dirs[k], strerror(errno));
            status = 1;
            break;
        }
        int found = 0;
        struct dirent *e;
        while (!status && (e = readdir(dp))) {
            int i, c, end = 0;
            if (sscanf(e->d_name, "shard-%d-of-%d.json%n", &i, &c, &end) != 2 || e->d_name[end]) continue;
            if (*n == cap) {
                manifest *m = realloc(*out, sizeof *m * (size_t)(cap = cap ? 2 * cap : 8));
                if (!m) {
                    fprintf(stderr, "saa eval: out of memory\n");
                    status = 1;
                    break;
                }
                *out = m;
            }
            manifest *m = &(*out)[*n];
            m->dir = dirs[k];
            m->path = cli_printf("%s/%s", dirs[k], e->d_name);
            m->j = m->path ? saa_json_load(m->path) : NULL;
            m->index = i, m->count = c;
            ++*n;
            found++;
            if (!m->j) {
                fprintf(stderr, "saa eval: --merge: %s\n", m->path ? saa_last_error() : "out of memory");
                status = 1;
            }
        }
        closedir(dp);
        if (!status && !found) {
            fprintf(stderr, "saa eval: --merge: %s holds no shard manifest (shard-I-of-N.json, written by saa eval "
                            "--shard I/N)\n", dirs[k]);
            status = 1;
        }
    }
    return status;
}

static void manifests_free(manifest *m, int n)
{
    for (int k = 0; k < n; k++) free(m[k].path), cJSON_Delete(m[k].j);
    free(m);
}

/* dst = src: a hard link (or a copy across file systems) under a temporary name, renamed into place */
static int link_or_copy(const char *src, const char *dst)
{
    struct stat a, b;
    if (stat(src, &a) == 0 && stat(dst, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) return SAA_OK;
    char *tmp = cli_printf("%s.merge.part", dst);
    if (!tmp) return saa_set_error(SAA_ENOMEM, "out of memory");
    remove(tmp);
    int rc = SAA_OK;
    if (link(src, tmp) != 0) {
        FILE *in = fopen(src, "rb"), *out = in ? fopen(tmp, "wb") : NULL;
        char buf[1 << 16];
        size_t got;
        int ok = in && out;
        while (ok && (got = fread(buf, 1, sizeof buf, in)) > 0) ok = fwrite(buf, 1, got, out) == got;
        if (ok && ferror(in)) ok = 0;
        if (in) fclose(in);
        if (out && fclose(out) != 0) ok = 0;
        if (!ok) rc = saa_set_error(SAA_EIO, "cannot copy %s to %s: %s", src, tmp, strerror(errno));
    }
    if (rc == SAA_OK && rename(tmp, dst) != 0) rc = saa_set_error(SAA_EIO, "%s: cannot rename into place: %s", dst, strerror(errno));
    if (rc != SAA_OK) remove(tmp);
    free(tmp);
    return rc;
}

typedef struct {
    const char *id;
    int64_t index;
} id_entry;

static int cmp_id(const void *a, const void *b) { return strcmp(((const id_entry *)a)->id, ((const id_entry *)b)->id); }

/* Which manifest covers each sample of d (owner[i]); errors name images covered twice, unknown or missing. */
static int check_coverage(const saa_dataset *d, const char *root, const manifest *m, int nm, int *owner)
{
    id_entry *ids = malloc(sizeof *ids * (size_t)(d->n ? d->n : 1));
    if (!ids) return fprintf(stderr, "saa eval: out of memory\n"), 1;
    for (int64_t i = 0; i < d->n; i++) ids[i] = (id_entry){d->samples[i].id, i}, owner[i] = -1;
    qsort(ids, (size_t)d->n, sizeof *ids, cmp_id);
    int status = 0;
    for (int k = 0; k < nm && !status; k++) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(m[k].j, "images"),
                                                              d->category),
                    *it;
        if (!cJSON_IsArray(list)) {
            fprintf(stderr, "saa eval: --merge: %s has no image list for %s\n", m[k].path, d->category);
            status = 1;
            break;
        }
        cJSON_ArrayForEach(it, list)
        {
            id_entry key = {cJSON_GetStringValue(it), 0}, *hit;
            hit = key.id ? bsearch(&key, ids, (size_t)d->n, sizeof *ids, cmp_id) : NULL;
            if (!hit) {
                fprintf(stderr, "saa eval: --merge: %s lists %s/%s, which is not in the test set under %s\n", m[k].path,
                        d->category, key.id ? key.id : "(not a string)", root);
                status = 1;
                break;
            }
            if (owner[hit->index] >= 0) {
                fprintf(stderr, "saa eval: --merge: %s/%s is covered twice: by %s and %s\n", d->category, key.id,
                        m[owner[hit->index]].path, m[k].path);
                status = 1;
                break;
            }
            owner[hit->index] = k;
        }
    }
    free(ids);
    int64_t missing = 0;
    for (int64_t i = 0; i < d->n && !status; i++) missing += owner[i] < 0;
    if (!status && missing) {
        fprintf(stderr, "saa eval: --merge: %lld of %lld test images of %s are in no shard (found", (long long)missing,
                (long long)d->n, d->category);
        for (int k = 0; k < nm; k++) fprintf(stderr, "%s %d/%d", k ? "," : "", m[k].index, m[k].count);
        fprintf(stderr, "):");
        int shown = 0;
        for (int64_t i = 0; i < d->n && shown < 8; i++)
            if (owner[i] < 0) fprintf(stderr, "%s %s", shown++ ? "," : "", d->samples[i].id);
        fprintf(stderr, "%s\n", missing > shown ? ", ..." : "");
        status = 1;
    }
    return status;
}

int eval_merge(const char *const *dirs, int ndirs, const char *root_override, const char *dataset_check,
               const char *outdir, eval_set *set, char **subtitle)
{
    manifest *m;
    int nm, status = read_manifests(dirs, ndirs, &m, &nm);
    const cJSON *ref = nm ? m[0].j : NULL;
    char diff[400];
    const char *keys[] = {"dataset", "root", "masks", "mask_pattern"};
    for (int k = 1; k < nm && !status; k++) { /* every shard of one run: same count, dataset and settings */
        const char *what = NULL;
        if (m[k].count != m[0].count)
            what = "a different shard count";
        else if (!cJSON_Compare(cJSON_GetObjectItemCaseSensitive(ref, "dataset"),
                                cJSON_GetObjectItemCaseSensitive(m[k].j, "dataset"), 1))
            what = "another dataset";
        if (what) {
            fprintf(stderr, "saa eval: --merge: %s and %s have %s\n", m[0].path, m[k].path, what);
            status = 1;
        } else if (json_first_diff(cJSON_GetObjectItemCaseSensitive(ref, "settings"),
                                   cJSON_GetObjectItemCaseSensitive(m[k].j, "settings"), diff, sizeof diff) ||
                   json_first_diff(cJSON_GetObjectItemCaseSensitive(ref, "categories"),
                                   cJSON_GetObjectItemCaseSensitive(m[k].j, "categories"), diff, sizeof diff)) {
            fprintf(stderr, "saa eval: --merge: %s and %s were made with different settings: %s\n", m[0].path,
                    m[k].path, diff);
            status = 1;
        } else if (!root_override && !cJSON_Compare(cJSON_GetObjectItemCaseSensitive(ref, "root"),
                                                    cJSON_GetObjectItemCaseSensitive(m[k].j, "root"), 1)) {
            fprintf(stderr, "saa eval: --merge: the shards name different dataset roots (%s, %s): give --root\n",
                    json_str(ref, "root"), json_str(m[k].j, "root"));
            status = 1;
        }
    }
    const char *vals[4] = {0};
    for (int k = 0; k < 4 && !status; k++) vals[k] = json_str(ref, keys[k]);
    if (!status && (!vals[0] || !vals[1] || saa_dataset_kind_parse(vals[0], &set->kind) != SAA_OK)) {
        fprintf(stderr, "saa eval: --merge: %s: not a shard manifest of saa eval (dataset/root)\n", m[0].path);
        status = 1;
    }
    if (!status && dataset_check && strcmp(dataset_check, vals[0])) {
        fprintf(stderr, "saa eval: --merge: the shards evaluate %s, not %s\n", vals[0], dataset_check);
        status = 1;
    }
    /* the test set, listed again from the dataset (its masks are needed for the metrics anyway) */
    const cJSON *cats = ref ? cJSON_GetObjectItemCaseSensitive(ref, "categories") : NULL, *c;
    int ncat = 0;
    const char **names = NULL;
    if (!status) { /* the manifests' values unless given (copies: the manifests are freed below) */
        const char **fields[4] = {&set->dataset, &set->root, &set->opts.mask_dir, &set->opts.mask_pattern};
        for (int k = 0; k < 4; k++)
            if (!*fields[k] && vals[k] && !(*fields[k] = set->own[k] = strdup(vals[k]))) status = 1;
        if (status) fprintf(stderr, "saa eval: out of memory\n");
    }
    if (!status) {
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(ref, "resolution");
        if (set->resolution <= 0) set->resolution = cJSON_IsNumber(res) ? res->valueint : 400;
        names = calloc((size_t)cJSON_GetArraySize(cats) + 1, sizeof *names);
        cJSON_ArrayForEach(c, cats) names[ncat++] = c->string;
        if (!ncat) {
            fprintf(stderr, "saa eval: --merge: %s lists no category\n", m[0].path);
            status = 1;
        } else {
            status = eval_set_open(set, names, ncat);
        }
    }
    int **owner = NULL;
    if (!status) {
        owner = calloc((size_t)set->ncat, sizeof *owner);
        for (int k = 0; k < set->ncat && !status; k++) {
            owner[k] = malloc(sizeof **owner * (size_t)(set->dsets[k].n ? set->dsets[k].n : 1));
            if (!owner[k]) fprintf(stderr, "saa eval: out of memory\n"), status = 1;
            else status = check_coverage(&set->dsets[k], set->root, m, nm, owner[k]);
        }
    }
    for (int k = 0; k < set->ncat && !status; k++) /* each shard's outputs must be complete */
        for (int64_t i = 0; i < set->dsets[k].n && !status; i++) {
            const saa_dataset *d = &set->dsets[k];
            if (sample_complete(m[owner[k][i]].dir, d->category, d->samples[i].id)) continue;
            fprintf(stderr, "saa eval: --merge: %s: the outputs of %s/%s are missing or incomplete (listed in %s)\n",
                    m[owner[k][i]].dir, d->category, d->samples[i].id, m[owner[k][i]].path);
            status = 1;
        }
    cJSON *settings = NULL, *catj = NULL;
    if (!status) {
        settings = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(ref, "settings"), 1);
        catj = cJSON_Duplicate(cats, 1);
        status = check_run_record(outdir, set->dataset, settings, catj);
    }
    /* checked: write outdir as an unsharded run would have */
    if (!status && cli_mkdir_p(outdir) != 0) {
        fprintf(stderr, "saa eval: cannot create %s\n", outdir);
        status = 1;
    }
    for (int k = 0; k < set->ncat && !status; k++) {
        const saa_dataset *d = &set->dsets[k];
        for (int64_t i = 0; i < d->n && !status; i++) {
            const char *stem;
            char *src = sample_dir(m[owner[k][i]].dir, d->category, d->samples[i].id, &stem);
            char *dst = sample_dir(outdir, d->category, d->samples[i].id, &stem);
            int rc = src && dst && cli_mkdir_p(dst) == 0 ? SAA_OK : saa_set_error(SAA_EIO, "cannot create %s", dst);
            for (int f = 0; f < SAA_N_OUTPUTS && rc == SAA_OK; f++) { /* STEM.json last, as saa_write_outputs */
                char *a = cli_printf("%s/%s%s", src, stem, saa_output_suffixes[f]);
                char *b = cli_printf("%s/%s%s", dst, stem, saa_output_suffixes[f]);
                rc = a && b ? link_or_copy(a, b) : saa_set_error(SAA_ENOMEM, "out of memory");
                free(a), free(b);
            }
            if (rc != SAA_OK) {
                fprintf(stderr, "saa eval: --merge: %s\n", saa_last_error());
                status = 1;
            }
            free(src), free(dst);
        }
    }
    if (!status) {
        cJSON *record = run_record(set, settings, catj);
        settings = catj = NULL;
        char *path = cli_printf("%s/run.json", outdir);
        status = path ? write_json_atomic(path, record) : 1;
        free(path);
        cJSON_Delete(record);
        *subtitle = cli_printf("%d shards of %d merged", nm, m[0].count);
    }
    cJSON_Delete(settings), cJSON_Delete(catj);
    for (int k = 0; owner && k < set->ncat; k++) free(owner[k]);
    free(owner);
    free(names);
    manifests_free(m, nm);
    if (status) eval_set_free(set);
    return status;
}
