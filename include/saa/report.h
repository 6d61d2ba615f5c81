/* Self-contained HTML evaluation report: per category the metrics table, the curves (inline SVG) and a
 * gallery of the worst false positives and misses (image, ground truth, anomaly map, predicted mask as
 * base64 PNG thumbnails), plus a summary table with one row per category and the dataset mean row.
 * The file references nothing external (no scripts, fonts, stylesheets or image files).
 *
 * The summary's mean row is the plain mean over categories, undefined when any category's value is (as
 * the mean row of saa eval's metrics.json/.csv).
 *
 * Everything is rendered in memory and written to PATH.part, then renamed onto PATH: a failure (a
 * missing or corrupt image, a bad map) returns an error naming the category and file and leaves no
 * report behind (an existing PATH is left untouched). */
#ifndef SAA_REPORT_H
#define SAA_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "saa/datasets.h"
#include "saa/metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One evaluated image. Only the images picked for the gallery are read. */
typedef struct {
    const char *id;        /* shown name, e.g. "crack/000" (NULL: the image path) */
    const char *image;     /* image file (PNG/JPEG) */
    const char *gt_mask;   /* ground-truth mask file, NULL = no mask (normal image: shown empty) */
    const char *map_path;  /* anomaly map file as saa eval reads it (saa_eval_load_map: float32/64 .npy HxW or
                              1xHxW, or a gray 8/16-bit PNG), or NULL and map below */
    const double *map;     /* anomaly map map_h x map_w in memory (used when map_path is NULL; NULL: no map) */
    int map_w, map_h;
    const char *pred_mask; /* predicted mask file (e.g. STEM_mask.png), NULL: not shown */
    int label;             /* 1 = anomalous */
    double score;          /* image score (e.g. saa_metrics.image_scores[i]); NaN sorts last */
} saa_report_item;

/* An extra curve to draw (e.g. pixel-level ROC/PR once the metrics expose them). Points in order; step = 1
 * draws a right-continuous step (y_k holds on (x_{k-1}, x_k], as average precision integrates). */
typedef struct {
    const char *title;   /* e.g. "Pixel ROC" */
    const char *x_label, *y_label;
    const char *summary; /* shown under the title, e.g. "AUROC 97.53" (NULL: none) */
    int64_t n;
    const double *x, *y; /* in [0, 1] */
    int step;
} saa_report_curve;

typedef struct {
    const char *name;          /* category name */
    const saa_metrics *metrics; /* NaN fields are shown as "—"; image_scores/labels give the image ROC/PR;
                                   pro_fprs/pro_pros the PRO curve; fr_* the region F1 curve */
    double map_lo, map_hi;     /* colour range of the gallery maps (the evaluation's global min/max, in the
                                  units of the map files); when not finite or map_hi <= map_lo: the min/max
                                  over the maps shown in the category's gallery (one shared scale) */
    int n_items;
    const saa_report_item *items;
    int n_curves;              /* extra curves drawn after the built-in ones */
    const saa_report_curve *curves;
} saa_report_category;

typedef struct {
    int gallery_n;  /* worst false positives and worst misses shown per category (default 6) */
    int thumb_size; /* longest side of a thumbnail in pixels (default 160) */
    const char *subtitle; /* free text under the title (e.g. the command line), NULL: none */
} saa_report_options;

void saa_report_options_default(saa_report_options *o);

/* Writes the report (opts NULL = defaults). Returns SAA_OK or an error (nothing written). */
int saa_report_write(const char *path, const char *title, int n_categories, const saa_report_category *cats,
                     const saa_report_options *opts);

/* Gallery items for a category evaluated from maps on disk (saa eval --maps): item i = sample i of d, with
 * id, image and GT mask from the sample, the map that saa_eval_find_map finds, the predicted mask
 * STEM_mask.png next to a STEM_map.npy / STEM_map.png / STEM_map_full.npy when that file exists (saa segment's
 * outputs), and score = m->image_scores[i] (m: saa_eval_maps of the same dataset, so n_images = d->n).
 * *items is malloc'd (n = d->n); free it with saa_report_items_free. */
int saa_report_items_from_maps(const saa_dataset *d, const char *maps_dir, const saa_metrics *m,
                               saa_report_item **items, int *n);
void saa_report_items_free(saa_report_item *items, int n);

/* Helpers used by the report, exposed for tests and other writers. */
/* Standard base64 (RFC 4648, with padding) of n bytes into a new NUL-terminated string (NULL: no memory). */
char *saa_base64_encode(const uint8_t *data, size_t n);
/* The colour map of the gallery (the same "jet" as the per-image overlays): t in [0, 1] -> RGB. */
void saa_report_colormap(double t, uint8_t rgb[3]);

#ifdef __cplusplus
}
#endif
#endif
