/* SAA+ pipeline: categories (hybrid prompts as data), the official quirks and their fixes. */
#ifndef SAA_SAA_H
#define SAA_SAA_H

#include "saa/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Official SAA+ behaviour that changes results is the default (it produced the paper's numbers); each
 * quirk can be corrected with a named fix (`--fix NAME[,NAME...]` on the command line). */
enum {
    SAA_FIX_RGB = 1u << 0,      /* SAM and the saliency backbone get RGB (official: cv2's BGR array) */
    SAA_FIX_FUSION = 1u << 1,   /* confidence fusion weight map starts at 0 (official: 1, halving lone masks) */
    SAA_FIX_PROPERTY = 1u << 2, /* property prompt parsed by meaning (official: word positions, keeps "bottle,") */
    SAA_FIX_PHRASE = 1u << 3,   /* filtered phrase matched as whole words (official: substring count) */
    SAA_FIX_BOXSCORE = 1u << 4, /* box score = max over the caption's tokens (official: all 256 columns) */
    SAA_FIX_CLIP = 1u << 5,     /* boxes clipped to the image before SAM (official: unclipped) */
};
/* Parses "rgb,fusion" (or "all", or "none") into SAA_FIX_* flags; error names the unknown fix. */
int saa_fix_parse(const char *text, unsigned *flags);
/* One line per fix: "name: what it changes". */
const char *saa_fix_help(void);

/* A category: the hybrid prompts of the paper for one kind of part. */
typedef struct {
    char *name;            /* category name, e.g. "bottle" */
    char *property_prompt; /* the official property sentence, or NULL when given as values */
    char *object_prompt;   /* object caption (official parse keeps the comma: "bottle,") */
    int object_count;      /* objects per image: 1 selects single-instance saliency */
    int top_k;             /* confidence prompt: masks fused into the map */
    double max_area_ratio; /* defect boxes must be smaller than this fraction of the largest object box */
    int n_prompts;         /* language prompts: class-agnostic first, then class-specific */
    char **defect_prompts;
    char **filter_phrases; /* a box whose phrase contains this is dropped */
} saa_category;

void saa_category_free(saa_category *c);
/* Parses a property prompt ("the image of bottle have 1 dissimilar bottle, with a maximum of 5 anomaly.
 * The anomaly would not exceed 0.3 object area. ") into object_prompt/object_count/top_k/max_area_ratio.
 * Official parse (fixed == 0): Python `text.split(' ')` words 7, 5, 12, 19 as SAA/model.py
 * set_property_text_prompts; fixed: whitespace-split words with the object name's trailing punctuation removed. */
int saa_property_parse(const char *text, int fixed, saa_category *c);
/* Adds a language prompt (copies both strings). */
int saa_category_add_prompt(saa_category *c, const char *defect_prompt, const char *filter_phrase);
/* Adds the class-agnostic prompts ("defect on {}", ...) of presets/general.json for c->name. */
int saa_category_add_general_prompts(saa_category *c, const char *presets_dir);

/* Directory holding the preset files: $SAA_PRESETS, else <dir of the saa binary>/../share/saa/presets,
 * else the source tree's presets/. Returns a static string or NULL. */
const char *saa_presets_dir(const char *argv0);
/* Loads a built-in category: name "bottle" (searched in every dataset file) or "mvtec/bottle".
 * Unknown name: error listing the known categories. */
int saa_category_load(const char *presets_dir, const char *name, unsigned fixes, saa_category *out);
/* Loads a user file in the preset format ({"categories": {NAME: {"property_prompt" | "object", "count",
 * "top_k", "max_area", "defect_prompts": [[prompt, filter], ...]}}}); name may be NULL if it holds one. */
int saa_category_load_file(const char *path, const char *presets_dir, const char *name, unsigned fixes,
                           saa_category *out);

#ifdef __cplusplus
}
#endif
#endif
