/* Evaluation of a dataset from anomaly maps on disk (saa eval --maps), and the metrics.json/.csv files. */
#ifndef SAA_EVAL_H
#define SAA_EVAL_H

#include "saa/datasets.h"
#include "saa/metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The map of a sample: the first that exists of MAPS/CATEGORY/ID{.npy,_map.npy,.png,_map.png}, then
 * MAPS/ID{...} (ID = sample id "TYPE/STEM"; STEM_map.* is what saa segment writes). *path is malloc'd;
 * SAA_EIO naming the candidates if none. */
int saa_eval_find_map(const char *maps_dir, const char *category, const char *id, char **path);
/* Loads an anomaly map as float64: .npy float32/float64 (H,W) or (1,H,W), or a gray PNG (8 or 16 bit, raw
 * values; the global min/max normalisation makes the scale irrelevant). *map is malloc'd. */
int saa_eval_load_map(const char *path, double **map, int *w, int *h);

/* How a map that is not R x R reaches the evaluation resolution. CUBIC: eval_utils.specify_resolution
 * (INTER_CUBIC). LINEAR: the official model's own final cv2.resize(anomaly_map, (R, R)) (default
 * INTER_LINEAR; eval_SAA.py builds Model(out_size=R)), after which specify_resolution is a copy: right for
 * maps at the original image size such as saa's STEM_map_full.npy. AUTO: LINEAR for saa's output files
 * (*_map.npy, *_map.png, *_map_full.npy), else CUBIC.
 * saa's STEM_map.{npy,png} is at --out-size: when that is not R x R and STEM_map_full.npy exists beside it,
 * the full-resolution map is evaluated instead (one resize to R, as officially). */
typedef enum { SAA_MAP_RESIZE_AUTO = 0, SAA_MAP_RESIZE_CUBIC, SAA_MAP_RESIZE_LINEAR } saa_map_resize;

/* Metrics of one category (dataset d) from its maps: each map is brought to p->resolution as
 * map_resize says, each mask with INTER_NEAREST, then the two-pass protocol of saa_metrics_compute. */
int saa_eval_maps(const saa_dataset *d, const char *maps_dir, const saa_eval_params *p, saa_map_resize map_resize,
                  saa_eval_progress progress, void *progress_ctx, saa_metrics *out);

/* Metric names in table order ("image_auroc", ... "f_r_official") and their values in m. */
#define SAA_N_METRICS 10
extern const char *const saa_metric_names[SAA_N_METRICS];
void saa_metrics_values(const saa_metrics *m, double v[SAA_N_METRICS]);

/* metrics.json of one category: dataset, category, counts, settings, metrics as fractions (null when
 * undefined), the max-F1 thresholds. */
int saa_metrics_write_json(const char *path, const char *dataset, const char *category, const saa_eval_params *p,
                           const saa_metrics *m);
/* metrics.csv: header "category,<names>", one row per entry (values x 100 with 2 decimals as the
 * official save_metric, empty when undefined). values[i] holds SAA_N_METRICS numbers of row i. */
int saa_metrics_write_csv(const char *path, int rows, const char *const *labels, const double *values);

#ifdef __cplusplus
}
#endif
#endif
