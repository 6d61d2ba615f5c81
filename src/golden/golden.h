/* check-golden framework: reads a golden folder (config.json + golden.safetensors), compares computed
 * tensors under the folder's tolerance rules, and prints one line per tensor.
 * Each component kind ("sam", "gdino", ...) is one function golden_kind_<kind>(golden *g). */
#ifndef SAA_GOLDEN_H
#define SAA_GOLDEN_H

#include <stdio.h>

#include <cjson/cJSON.h>

#include "saa/tensor.h"
#include "saa/weights.h"

typedef struct golden golden;

struct golden {
    char *dir;           /* folder, without trailing slash */
    cJSON *config;       /* parsed config.json */
    saa_weights *ref;    /* golden.safetensors */
    FILE *out;           /* report stream (stdout in the CLI) */
    int passed, failed;
    unsigned char *seen; /* per reference tensor: checked or declared an input */
    int verbose;
};

/* Opens DIR (reads config.json and the golden file). */
int golden_open(const char *dir, FILE *out, golden **g);
void golden_close(golden *g);
/* Runs the kind named in config.json, then reports unchecked tensors. Returns 0 when all passed. */
int golden_run(golden *g);

/* Path of a file named in config.json, resolved relative to the folder (malloc'd). */
char *golden_path(const golden *g, const char *rel);
/* Config helpers (NULL/def when absent). Dotted paths: "model.encoder.depth". */
cJSON *golden_cfg(const golden *g, const char *dotted);
double golden_cfg_num(const golden *g, const char *dotted, double def);
const char *golden_cfg_str(const golden *g, const char *dotted);

/* A stored reference tensor (any dtype), or NULL with the error set. Using a tensor as an input does not
 * count as checking it. */
const saa_tensor *golden_ref(golden *g, const char *name);
/* The stored tensor as float32 (converted copy cached), checking its element count when expect_numel >= 0. */
const float *golden_ref_f32(golden *g, const char *name, int64_t expect_numel);
int golden_has(const golden *g, const char *name);

/* Compares a computed tensor with the stored one under the matching tolerance rule (handles "sampled":
 * pass the FULL result). Prints one line; counts it. Returns 1 on pass. */
int golden_check(golden *g, const char *name, const saa_tensor *got);
int golden_check_f32(golden *g, const char *name, const float *data, int ndim, const int64_t *shape);
/* Reports a check decided by the caller (e.g. topk with allowed swaps, expected JSON files). */
int golden_report(golden *g, const char *name, int pass, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Declares a stored tensor as an input (config "stored_inputs"): reported as INPUT, neither passed nor failed. */
void golden_mark_input(golden *g, const char *name);

/* Kind entry points (one file each under src/golden/). They return SAA_OK after running their checks
 * (failures are counted, not returned), or an error when the folder cannot be run at all. */
int golden_kind_checkpoint(golden *g);
int golden_kind_sam(golden *g);
int golden_kind_gdino(golden *g);
int golden_kind_tokenizer(golden *g);
int golden_kind_wrn_saliency(golden *g);
int golden_kind_metrics(golden *g);
int golden_kind_saa_e2e(golden *g);
/* Stages of the "gdino" kind kept in their own files: text (tokenizer, masks, BERT: capK.text.*,
 * capK.bert.*) and image (resize, normalisation, Swin: image.*, backbone.*). golden_kind_gdino calls them. */
int golden_gdino_text_stage(golden *g);
int golden_gdino_image_stage(golden *g);

#endif
