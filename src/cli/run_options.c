/* Options shared by saa segment and saa eval: one parser, one set of checks, one help text. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/run_options.h"

int run_options_init(run_options *o, int argc)
{
    memset(o, 0, sizeof *o);
    o->count = 1;
    o->top_k = 5;
    o->max_area = 0.3;
    o->box_threshold = 0.1; /* eval_SAA.py --box_threshold / --text_threshold defaults */
    o->text_threshold = 0.1;
    /* the official fusion halves a lone mask's score, so 0.3 keeps regions whose rescored score is >= 0.6 */
    o->threshold = 0.3;
    o->defects = calloc((size_t)argc + 1, sizeof *o->defects);
    return o->defects ? 0 : -1;
}

void run_options_free(run_options *o)
{
    free(o->defects);
    o->defects = NULL;
}

static int parse_double(const char *cmd, const char *opt, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) {
        fprintf(stderr, "saa %s: %s expects a number, got '%s'\n", cmd, opt, s);
        return 0;
    }
    *out = v;
    return 1;
}

static int parse_int(const char *cmd, const char *opt, const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v <= 0 || v > 1000000) {
        fprintf(stderr, "saa %s: %s expects a positive integer, got '%s'\n", cmd, opt, s);
        return 0;
    }
    *out = (int)v;
    return 1;
}

int run_options_parse(run_options *o, const char *cmd, int argc, char **argv, int *i)
{
    static const char *const with_value[] = {
        "--category", "--prompts", "--object", "--defect", "--count", "--top-k", "--max-area", "--models",
        "--sam-model", "--sam", "--gdino", "--wrn", "--vocab", "--config", "--box-threshold", "--text-threshold",
        "--out-size", "--threshold", "--fix"};
    const char *a = argv[*i];
    int known = 0;
    for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++) known |= !strcmp(a, with_value[k]);
    if (!known) return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "saa %s: %s needs a value\n", cmd, a);
        return -1;
    }
    const char *v = argv[++*i];
    int ok = 1;
    if (strcmp(a, "--category")) o->n_model_args++;
#define OPT(name) (!strcmp(a, name))
    if (OPT("--category")) o->category = v;
    else if (OPT("--prompts")) o->prompts = v;
    else if (OPT("--object")) o->object = v;
    else if (OPT("--defect")) o->defects[o->n_defects++] = v;
    else if (OPT("--count")) ok = parse_int(cmd, a, v, &o->count);
    else if (OPT("--top-k")) ok = parse_int(cmd, a, v, &o->top_k);
    else if (OPT("--max-area")) ok = parse_double(cmd, a, v, &o->max_area);
    else if (OPT("--models")) o->files.dir = v;
    else if (OPT("--sam-model")) o->files.sam_variant = v;
    else if (OPT("--sam")) o->files.sam = v;
    else if (OPT("--gdino")) o->files.gdino = v;
    else if (OPT("--wrn")) o->files.wrn = v;
    else if (OPT("--vocab")) o->files.vocab = v;
    else if (OPT("--config")) o->files.config = v;
    else if (OPT("--box-threshold")) ok = parse_double(cmd, a, v, &o->box_threshold);
    else if (OPT("--text-threshold")) ok = parse_double(cmd, a, v, &o->text_threshold);
    else if (OPT("--out-size")) ok = parse_int(cmd, a, v, &o->out_size);
    else if (OPT("--threshold")) ok = parse_double(cmd, a, v, &o->threshold);
    else if (OPT("--fix")) o->fix = v;
#undef OPT
    return ok ? 1 : -1;
}

int run_options_check(run_options *o, const char *cmd)
{
    if (o->object && !o->n_defects) {
        fprintf(stderr, "saa %s: --object needs at least one --defect caption\n", cmd);
        return 2;
    }
    if (!o->object && o->n_defects) {
        fprintf(stderr, "saa %s: --defect needs --object\n", cmd);
        return 2;
    }
    if (!(o->max_area > 0) || !(o->box_threshold >= 0 && o->box_threshold < 1) ||
        !(o->text_threshold >= 0 && o->text_threshold < 1)) {
        fprintf(stderr, "saa %s: --max-area must be > 0 and the thresholds in [0, 1)\n", cmd);
        return 2;
    }
    if (saa_fix_parse(o->fix, &o->fixes) != SAA_OK) {
        fprintf(stderr, "saa %s: %s\n", cmd, saa_last_error());
        return 2;
    }
    return 0;
}

void run_options_to_saa(const run_options *o, int default_out_size, saa_options *so)
{
    saa_options_init(so);
    so->box_threshold = (float)o->box_threshold;
    so->text_threshold = (float)o->text_threshold;
    so->out_size = o->out_size ? o->out_size : default_out_size;
    so->fixes = o->fixes;
}

int run_options_category(const run_options *o, const char *name, saa_category *cat)
{
    memset(cat, 0, sizeof *cat);
    const char *presets = saa_presets_dir(NULL);
    if (o->prompts) return saa_category_load_file(o->prompts, presets, name, o->fixes, cat);
    if (!o->object) return saa_category_load(presets, name, o->fixes, cat);
    cat->name = strdup(o->object);
    cat->object_prompt = strdup(o->object);
    cat->object_count = o->count;
    cat->top_k = o->top_k;
    cat->max_area_ratio = o->max_area;
    int rc = cat->name && cat->object_prompt ? SAA_OK : saa_set_error(SAA_ENOMEM, "out of memory");
    if (rc == SAA_OK)
        rc = presets ? saa_category_add_general_prompts(cat, presets)
                     : saa_set_error(SAA_EIO, "preset files not found (set SAA_PRESETS to the presets/ folder)");
    for (int i = 0; rc == SAA_OK && i < o->n_defects; i++) rc = saa_category_add_prompt(cat, o->defects[i], o->object);
    if (rc != SAA_OK) saa_category_free(cat);
    return rc;
}

void run_options_help_category(FILE *f)
{
    fprintf(f,
            "  --prompts FILE        categories in the preset format (presets/*.json); with --category to pick one\n"
            "  --object TEXT --defect TEXT [--defect TEXT ...] [--count N] [--top-k K] [--max-area R]\n"
            "                        a category given on the command line: the object caption, one caption per\n"
            "                        --defect (e.g. \"crack. hole.\"; boxes whose phrase contains the object name are\n"
            "                        dropped), N objects per image (default 1: single-instance saliency), top K\n"
            "                        masks fused (default 5), defect boxes smaller than R x the largest object box\n"
            "                        (default 0.3). The class-agnostic prompts (\"defect on OBJECT\", ...) come first.\n");
}

void run_options_help_models(FILE *f)
{
    fprintf(f,
            "Models:\n"
            "  --models DIR          folder with the model files (default $SAA_MODELS, else ./models), as written by\n"
            "                        scripts/download-models.sh\n"
            "  --sam-model vit_h     SAM size looked up in the folder: vit_b, vit_l, vit_h (default vit_h)\n"
            "  --sam FILE --gdino FILE --wrn FILE --vocab FILE   explicit model files (override the folder)\n"
            "  --config FILE         model hyper-parameters (JSON in the saa_e2e golden config.json layout), for\n"
            "                        models of other sizes than the released ones\n");
}

void run_options_help_run(FILE *f, const char *out_size_help)
{
    fprintf(f,
            "  --box-threshold T     detector box score threshold (default 0.1, as eval_SAA.py)\n"
            "  --text-threshold T    token threshold for the box phrases (default 0.1)\n"
            "  --out-size N          side of NAME_map.png / NAME_map.npy (%s)\n"
            "  --threshold T         NAME_mask.png = map > T (default 0.3: the official fusion halves a lone\n"
            "                        mask's score, so this keeps regions whose rescored score is >= 0.6)\n"
            "  --fix LIST            correct official quirks (comma-separated, or all); default: official behaviour\n"
            "%s",
            out_size_help, saa_fix_help());
}
