/* saa eval internals shared by cmd_eval.c (arguments, metrics, report) and eval_run.c (running the pipeline
 * over a test set, resume, shards and their merge). Functions print their own "saa eval: ..." errors and return
 * an exit status (0 ok, 1 error, 2 usage). */
#ifndef SAA_CLI_EVAL_CLI_H
#define SAA_CLI_EVAL_CLI_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "cli/run_options.h"
#include "saa/datasets.h"

/* The test set being evaluated: one opened dataset per category. */
typedef struct {
    const char *dataset; /* "mvtec", ... */
    saa_dataset_kind kind;
    const char *root;
    saa_dataset_options opts; /* folder datasets: masks folder and mask name pattern */
    int ncat;
    saa_dataset *dsets;
    int resolution; /* evaluation resolution: the default --out-size of a run */
    char *own[4];   /* strings the fields above point to when read from shard manifests (--merge) */
} eval_set;

/* Progress on stderr: one updating line on a terminal (at most 10 updates a second), plain lines (every 5%
 * but at most one a second, every 30 s, and at the end) otherwise. */
typedef struct {
    int quiet, tty, last_step;
    double t0, last_time;
    int64_t base;
} cli_progress;
/* base: items already done when the clock starts */
void cli_progress_start(cli_progress *p, int quiet, int64_t base);
/* "LABEL: done/total WHAT  rate/s  ETA"; rate and ETA from the items done since cli_progress_start. */
void cli_progress_show(cli_progress *p, const char *label, const char *what, int64_t done, int64_t total);

int cli_mkdir_p(const char *path);
char *cli_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Run mode (no --maps / --merge) and --shard I/N: runs the pipeline over every image of the set (shard_n > 0: only shard shard_i of
 * each category) whose outputs are not complete in outdir/CATEGORY/TYPE/STEM_*; writes outdir/run.json and,
 * for a shard, outdir/shard-I-of-N.json. Everything is checked before the first file is written. A shard keeps
 * only its samples in set (saa_dataset_shard). */
int eval_run(eval_set *set, const run_options *ro, const char *outdir, int shard_i, int shard_n, int quiet);

/* --merge: reads the shard manifests of dirs, fills set (dataset, root, masks, mask pattern and resolution
 * where not given: NULL / set->resolution <= 0; the categories), checks that every test image is covered
 * exactly once, then links (or copies) the shards' outputs into outdir as an unsharded run would have written
 * them. root_override: --root (the shards may then name different roots). */
int eval_merge(const char *const *dirs, int ndirs, const char *root_override, const char *dataset_check,
               const char *outdir, eval_set *set, char **subtitle);

/* Opens the datasets of categories (NULL = every category under root) of set->kind; unknown categories are an
 * error listing the known ones. */
int eval_set_open(eval_set *set, const char *const *categories, int ncat);
void eval_set_free(eval_set *set);
void eval_set_free_strings(eval_set *set);

#endif
