/* SAA+ pipeline: categories (hybrid prompts as data), the official quirks and their fixes. */
#ifndef SAA_SAA_H
#define SAA_SAA_H

#include "saa/gdino.h"
#include "saa/sam.h"
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
/* The names of the fixes in flags, comma-separated ("none" for 0), into buf (saa_fix_parse reads it back). */
const char *saa_fix_names(unsigned flags, char *buf, size_t n);

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

/* ---------- model configurations ---------- */

/* Model hyper-parameters from a JSON document in the saa_e2e golden config.json layout: "weights": {"sam":
 * {"model": {...}} (saa_sam_config_from_json), "gdino": {"config": official args, "tiny_cfg": {...}}}.
 * Sets *has_sam / *has_gdino for the parts present; an error when neither is. */
int saa_model_configs_from_json(const struct cJSON *root, saa_sam_config *sam, int *has_sam, saa_gdino_config *gdino,
                                int *has_gdino);
/* The same from a file. */
int saa_model_configs_load(const char *path, saa_sam_config *sam, int *has_sam, saa_gdino_config *gdino,
                           int *has_gdino);

/* SAA/model.py Model.load_dino: the checkpoint's "model" state dict with clean_state_dict (the "module."
 * prefix of the released groundingdino_swint_ogc.pth removed). *raw (may be NULL) holds the opened file the
 * model borrows from: close it with saa_weights_close after saa_gdino_free. */
int saa_load_dino(const char *path, const char *vocab, const saa_gdino_config *cfg, saa_gdino **out,
                  saa_weights **raw);

/* ---------- hybrid-prompt arithmetic (SAA/model.py), model independent ---------- */

/* Normalised cxcywh boxes -> pixel xyxy, in float32 as the official in-place update
 * (box * [W,H,W,H]; xy -= wh/2; x2y2 += xy); not clipped unless clip (SAA_FIX_CLIP). */
void saa_boxes_to_pixels(const float *cxcywh, int n, int width, int height, int clip, float *xyxy);

/* Saliency prompt (SAA/model.py rescore): score * exp(3 * mean(saliency over the mask)), factor 1 for an empty
 * mask. saliency_is_f32: the single-instance map is float32 officially, so mean and exp are float32 there. */
void saa_rescore(const uint8_t *masks, int n, int64_t pixels, const double *scores, const double *saliency,
                 int saliency_is_f32, double *rescored);

/* Confidence prompt: indices of the top-k scores in ascending score order (numpy argsort()[-k:]; ties keep
 * index order). Returns the count min(k, n). */
int saa_topk_ascending(const double *scores, int n, int k, int *indices);

/* The same selection made incrementally (scores offered in index order), holding k entries: the pipeline keeps
 * only the masks of the current top-k. score/index arrays of k entries, n = 0 to start. */
typedef struct {
    int k, n;
    double *score;
    int *index;
} saa_topk_state;
/* Offers (score, index), index larger than all offered before: returns the slot it now holds, or -1. */
int saa_topk_offer(saa_topk_state *t, double score, int index);
/* slots[0..n) ordered by ascending (score, index): the order of saa_topk_ascending's indices. */
void saa_topk_order(const saa_topk_state *t, int *slots);

/* bbox_suppression's filter: 1 if the box with this phrase is dropped. Official (whole_words 0): substring
 * (`phrase.count(filtered) > 0`); SAA_FIX_PHRASE: whole words, case-insensitive. filtered NULL: never. */
int saa_phrase_filtered(const char *phrase, const char *filtered, int whole_words);

/* Confidence fusion: map = sum(mask * score) / (w0 + sum(mask)) over the selected masks, w0 = 1 officially
 * (0 with SAA_FIX_FUSION, pixels no mask covers stay 0). map[pixels] (float64). */
void saa_fuse_masks(const uint8_t *masks, int64_t pixels, const int *selected, int n_selected,
                    const double *scores, int fix_fusion, double *map);

/* ---------- results ---------- */

/* One detected region (a box that passed the detector's score threshold), kept or not. */
typedef struct {
    int pass;             /* 0 = object pass, 1 = defect pass */
    int prompt;           /* index of the caption within its pass */
    float box[4];         /* pixel x0, y0, x1, y1 as given to SAM */
    char phrase[160];     /* detector phrase with its score suffix, as the official code builds it */
    double score;         /* detector box score (max token probability) */
    double rescored;      /* defect regions: score after the saliency prompt; object regions: score */
    int64_t mask_area;    /* pixels of its SAM mask (0 if dropped before SAM) */
    const char *status;   /* "fused" (top-k), "not-top-k", "object", "dropped-area", "dropped-phrase" */
} saa_region;

typedef struct {
    int width, height; /* original image size */
    int out_size;      /* side of map */
    double *map;       /* anomaly map, out_size x out_size (the official output) */
    double *map_full;  /* anomaly map at the original resolution (before the official final resize) */
    double *saliency;  /* saliency map at the original resolution */
    int n_regions;
    saa_region *regions;
    double seconds[6]; /* detector, sam-encoder, sam-decoder, saliency, fusion, total */
    char saliency_mode[96]; /* "single-instance", "multi-instance (n of m object masks)" or the fallback taken */
} saa_result;

void saa_result_free(saa_result *r);

/* ---------- the pipeline (SAA/model.py Model) ---------- */

/* Where the model files are. Each explicit file overrides the folder; the folder is dir, else $SAA_MODELS,
 * else ./models, holding the names scripts/download-models.sh writes. */
typedef struct {
    const char *dir;
    const char *sam_variant;               /* "vit_h" (default), "vit_l", "vit_b": the SAM file looked up */
    const char *sam, *gdino, *wrn, *vocab; /* explicit files, or NULL */
    const char *config; /* JSON with model hyper-parameters (saa_model_configs_load), or NULL: SAM detected from
                         * the checkpoint, Grounding DINO Swin-T OGC */
} saa_model_files;

typedef struct saa_models saa_models;
/* Loads SAM, Grounding DINO (+ BERT vocabulary) and the WideResNet; a missing file fails with an error naming
 * it and the download command. Weights are memory-mapped. */
int saa_models_load(const saa_model_files *f, saa_models **out);
void saa_models_free(saa_models *m);

typedef struct {
    float box_threshold, text_threshold; /* bbox_suppression thresholds (eval_SAA.py: 0.1, 0.1) */
    int out_size;                        /* side of the returned map (Model default 256) */
    unsigned fixes;                      /* SAA_FIX_* */
} saa_options;
void saa_options_init(saa_options *o);

/* Model.forward on one image (8-bit RGB as saa_image_load returns it; the official BGR handling is applied
 * inside): object pass, defect passes, SAM, saliency, confidence fusion. Fills r (free with saa_result_free).
 * The SAM embedding and the detector backbone are computed once per image. */
int saa_segment(saa_models *m, const saa_category *c, const saa_options *o, const saa_image *rgb, saa_result *r);
/* Maps are written as 16-bit PNG with value = round(min(map / SAA_MAP_PNG_SCALE, 1) * 65535): e^3 is the largest
 * value the pipeline can produce (detector score <= 1 times exp(3 * saliency <= 1)). */
#define SAA_MAP_PNG_SCALE 20.085536923187668
/* Writes into outdir: STEM_map.png (r->map at out_size x out_size, 16-bit), STEM_map.npy (the same map,
 * float32, or float64 when map_f64: the official map's dtype, so that saa eval's metrics see the exact
 * values), STEM_map_full.npy (r->map_full at the original resolution, float32), STEM_mask.png (map_full >
 * threshold), STEM_overlay.png and STEM.json. Files are written under temporary names and renamed at the
 * end (STEM.json last), so a failure leaves no partial output. rgb: the input image (for the overlay). */
int saa_write_outputs(const char *outdir, const char *stem, const uint8_t *rgb, const saa_result *r,
                      double threshold, int map_f64, const char *image_path);
/* The file name suffixes saa_write_outputs appends to STEM, in the order they are renamed into place. */
#define SAA_N_OUTPUTS 6
extern const char *const saa_output_suffixes[SAA_N_OUTPUTS];
/* 1 if every output of STEM exists in outdir as a non-empty file (a finished saa_write_outputs), else 0. */
int saa_outputs_complete(const char *outdir, const char *stem);

#ifdef __cplusplus
}
#endif
#endif
