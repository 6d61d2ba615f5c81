/* Options shared by the commands that run the SAA+ pipeline (saa segment, saa eval): the category
 * (--category/--prompts/--object/--defect ...), the model files and the run settings. */
#ifndef SAA_CLI_RUN_OPTIONS_H
#define SAA_CLI_RUN_OPTIONS_H

#include <stdio.h>

#include "saa/saa.h"

typedef struct {
    /* category: a built-in name, a preset-format file, or one given on the command line */
    const char *category, *prompts, *object;
    const char **defects;
    int n_defects, count, top_k;
    double max_area;
    saa_model_files files;
    double box_threshold, text_threshold, threshold;
    int out_size; /* 0: not given (the command's default) */
    const char *fix;
    unsigned fixes;   /* parsed --fix, set by run_options_check */
    int n_model_args; /* options given other than --category (for commands that reject them) */
} run_options;

/* Defaults (eval_SAA.py thresholds 0.1/0.1, mask threshold 0.3); room for argc --defect values. */
int run_options_init(run_options *o, int argc);
void run_options_free(run_options *o);
/* If argv[*i] is a shared option, takes it (and its value: *i is advanced) and returns 1; returns 0 for
 * any other argument and -1 after printing "saa CMD: ..." for a missing or bad value. */
int run_options_parse(run_options *o, const char *cmd, int argc, char **argv, int *i);
/* Checks the values and parses --fix; returns 0, or 2 after printing the usage error. */
int run_options_check(run_options *o, const char *cmd);
/* saa_options from the parsed values; out_size = the given --out-size, else default_out_size. */
void run_options_to_saa(const run_options *o, int default_out_size, saa_options *so);
/* The category: --prompts FILE (entry `name`, may be NULL when the file holds one), --object/--defect, else the
 * built-in `name` (saa_category_load). SAA status; the message is in saa_last_error(). */
int run_options_category(const run_options *o, const char *name, saa_category *cat);

/* Help text of the category options after --category, of the model options, and of the run options;
 * out_size_help describes the --out-size default. */
void run_options_help_category(FILE *f);
void run_options_help_models(FILE *f);
void run_options_help_run(FILE *f, const char *out_size_help);

#endif
