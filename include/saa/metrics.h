/* Evaluation metrics of SAA+ exactly as the official evaluation computes them (eval_SAA.py: eval,
 * utils/eval_utils.py: specify_resolution/normalize, utils/metrics.py: metric_cal, cal_pro_metric,
 * calculate_max_f1_region, with scikit-learn 1.2 roc/pr semantics), plus corrected region F1 and the
 * MVTec AD AU-PRO.
 *
 * Memory: a test set is evaluated image by image. Per image the accumulator keeps only O(1) per-step
 * counts; the pixel scores go into a table of DISTINCT scores with their label counts (24 bytes per
 * distinct value, built from per-image sorted runs merged like a merge sort), which is what sklearn's
 * roc_curve/precision_recall_curve reduce the data to anyway, so the results are exact (no binning).
 * Undefined metrics (one class only, NaN maps, no GT region) are NaN, reported as null. */
#ifndef SAA_METRICS_H
#define SAA_METRICS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------- the evaluation resizes (eval_utils.specify_resolution) ---------- */
/* cv2.resize(map, (ow, oh), interpolation=cv2.INTER_CUBIC) on a float64 single-channel map, bit-exact
 * (float32 cubic weights, double accumulation, horizontal pass first, clamped taps). */
void saa_eval_resize_cubic_f64(const double *src, int w, int h, double *dst, int ow, int oh);
/* cv2.resize(mask, (ow, oh), interpolation=cv2.INTER_NEAREST) on uint8 single-channel, bit-exact. */
void saa_eval_resize_nearest_u8(const uint8_t *src, int w, int h, uint8_t *dst, int ow, int oh);

/* ---------- connected components ---------- */
/* 8-connected components of mask != 0 (skimage.measure.label(connectivity=2)): labels[h*w] get 1..n in
 * raster order of each component's first pixel, 0 for background. Returns n, or <0 on allocation failure. */
int saa_label8(const uint8_t *mask, int h, int w, int32_t *labels);

/* ---------- distinct-score tables and the scikit-learn curves ---------- */
typedef struct {
    int64_t n;        /* distinct scores */
    double *value;    /* strictly decreasing */
    uint32_t *pos;    /* samples with label 1 at this score */
    uint32_t *neg;    /* samples with label 0 */
    double *pro;      /* sum of 1/|GT region| over the positive pixels at this score (AU-PRO) */
} saa_score_table;

typedef struct saa_score_builder saa_score_builder;
saa_score_builder *saa_score_builder_new(void);
/* Adds n finite scores with labels (nonzero = positive) and optional per-sample AU-PRO weights (NULL: 0).
 * The arrays are copied (sorted internally). */
int saa_score_builder_add(saa_score_builder *b, const double *score, const uint8_t *label, const double *pro_w,
                          int64_t n);
/* Above this many distinct-score entries in memory, the merged runs are spilled to an anonymous
 * temporary file (default: unlimited). */
void saa_score_builder_set_budget(saa_score_builder *b, int64_t entries);
/* Merges everything into out (reading spilled runs back) and frees the builder (also on error). */
int saa_score_builder_finish(saa_score_builder *b, saa_score_table *out);
/* The same entries as a stream that merges the memory run and the spilled runs on the fly (memory:
 * the budget plus one buffer per spilled run). Takes the builder (freed with the stream). */
typedef struct saa_score_stream saa_score_stream;
int saa_score_builder_finish_stream(saa_score_builder *b, saa_score_stream **out);
void saa_score_stream_free(saa_score_stream *s);
/* roc_auc_score, average_precision_score, calculate_max_f1 and the MVTec AU-PRO in one pass; NaN where
 * undefined (as the single-metric functions below). */
typedef struct {
    double auroc, ap, f1, f1_threshold, aupro;
} saa_rank_metrics;
int saa_score_stream_metrics(saa_score_stream *s, int64_t n_regions, double fpr_limit, saa_rank_metrics *out);
/* Display curves (for reports): ROC (fpr, tpr) from (0, 0) and PR (recall, precision) from sklearn's
 * (0, 1), one point per distinct score thinned to steps of at least min_step in either coordinate (the
 * last point always kept). Empty when a class is absent. Arrays malloc'd. */
typedef struct {
    int64_t n;
    double *x, *y;
} saa_curve;
int saa_score_stream_curves(saa_score_stream *s, double min_step, saa_curve *roc, saa_curve *pr);
void saa_score_builder_free(saa_score_builder *b);
void saa_score_table_free(saa_score_table *t);

/* sklearn.metrics.roc_curve(y, s, drop_intermediate) as arrays of n points (malloc'd; fpr/tpr NaN when a
 * class is absent, thresholds[0] = max + 1 as in sklearn 1.2). */
int saa_roc_curve(const saa_score_table *t, int drop_intermediate, double **fpr, double **tpr, double **thr,
                  int64_t *n);
/* roc_auc_score: NaN when only one class is present or the table is empty. */
double saa_roc_auc(const saa_score_table *t);
/* average_precision_score (step-wise sum; 0 with no positive sample, sklearn 1.2 says -0.0); NaN when empty. */
double saa_average_precision(const saa_score_table *t);
/* utils/metrics.calculate_max_f1: max over the precision_recall_curve of 2PR/(P+R) (0 where P+R = 0),
 * first maximum in increasing-threshold order; *threshold gets that threshold. NaN when empty. */
double saa_max_f1(const saa_score_table *t, double *threshold);
/* MVTec AD AU-PRO up to fpr_limit, normalised by fpr_limit (compute_pro + trapezoid, float64), given the
 * number of GT regions of the set; NaN when there is no region or no negative sample. */
double saa_aupro_standard(const saa_score_table *t, int64_t n_regions, double fpr_limit);

/* ---------- a whole test set ---------- */
typedef struct {
    int resolution;       /* evaluation resolution R (maps and masks are R x R); official default 400 */
    int grid_steps;       /* official grid of region F1 / PRO: 200 */
    double pro_fpr_limit; /* 0.3 */
    double region_iou;    /* region F1 IoU threshold: 0.6 */
    int64_t memory_entries; /* distinct pixel scores kept in memory (24 bytes each) before spilling to a
                               temporary file; results are the same either way */
} saa_eval_params;
void saa_eval_params_default(saa_eval_params *p);

typedef struct {
    int64_t n_images, n_anomalous, n_gt_regions, n_pos_pixels, n_neg_pixels;
    /* fractions in [0,1] (the official result_dict multiplies by 100); NaN = undefined (null) */
    double image_auroc, image_ap, image_f1, image_f1_threshold;
    double pixel_auroc, pixel_ap, pixel_f1, pixel_f1_threshold; /* pixel_f1 = the paper's F_p */
    double aupro;          /* MVTec AD AU-PRO, FPR <= limit */
    double aupro_official; /* cal_pro_metric */
    double f_r;            /* corrected region max-F1 (the paper's F_r, fixed counting) */
    double f_r_official;   /* calculate_max_f1_region */
    /* per-step curves on the official grid (grid_steps entries each; NULL when the grid is undefined) */
    int steps;
    double *grid_thresholds, *pro_fprs, *pro_pros;
    double *fr_official_f1, *fr_official_recall, *fr_official_precision, *fr_f1;
    int64_t *fr_official_n_pred, *fr_official_n_hits;
    double *image_scores; /* n_images: max of each normalised map, in the order added */
    int *image_labels;
    double map_lo, map_hi; /* global min/max of the maps before normalisation (the normalisation range) */
    saa_curve pixel_roc;   /* pixel ROC (fpr, tpr) and PR (recall, precision) for display, thinned to */
    saa_curve pixel_pr;    /* steps of 1e-3 (see saa_score_stream_curves) */
} saa_metrics;
void saa_metrics_free(saa_metrics *m);

/* Streaming accumulator. lo/hi: the global min/max of the maps that will be added (NaN if any map value
 * is NaN). normalise = 1: maps are raw and are normalised here as (x - lo) / (hi - lo) (eval_utils.normalize);
 * normalise = 0: maps are already normalised and lo/hi are their min/max (the grid range). */
typedef struct saa_metric_acc saa_metric_acc;
saa_metric_acc *saa_metric_acc_new(const saa_eval_params *p, double lo, double hi, int normalise);
/* Adds one image: map[R*R] (normalised in place when normalise = 1), mask[R*R] (nonzero = defect),
 * label (0/1, from the dataset reader). */
int saa_metric_acc_add(saa_metric_acc *a, double *map, const uint8_t *mask, int label);
/* Computes every metric into out (zeroed first) and frees the accumulator (also on error). */
int saa_metric_acc_finish(saa_metric_acc *a, saa_metrics *out);
void saa_metric_acc_free(saa_metric_acc *a);

/* Min/max with NumPy semantics (NaN propagates): updates lo and hi with n values. Start from +inf/-inf. */
void saa_minmax_nan(const double *x, int64_t n, double *lo, double *hi);

/* Two passes over a set through a loader that gives image i's map and mask already at R x R (raw,
 * not normalised) and its label: pass 1 finds the global min/max, pass 2 normalises and accumulates. */
typedef int (*saa_eval_loader)(void *ctx, int64_t i, double *map, uint8_t *mask, int *label);
typedef void (*saa_eval_progress)(void *ctx, int pass, int64_t done, int64_t total);
int saa_metrics_compute(const saa_eval_params *p, int64_t n, saa_eval_loader load, void *ctx,
                        saa_eval_progress progress, void *progress_ctx, saa_metrics *out);

#ifdef __cplusplus
}
#endif
#endif
