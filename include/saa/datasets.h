/* Test-set readers for the layouts SAA+ evaluates on (the readers in datasets/ of SAA+), validated when opened:
 * a missing mask, an image/mask size mismatch or an empty folder is an error naming the path.
 *
 *   mvtec  ROOT/CATEGORY/test/DEFECT/NAME.png, ROOT/CATEGORY/ground_truth/DEFECT/NAME_mask.png,
 *          DEFECT "good" without masks (label 0), every other DEFECT label 1.
 *   visa   ROOT/split_csv/1cls.csv (columns object, split, label, image, mask; rows with split "test",
 *          label "normal"/"anomaly", paths relative to ROOT). Without the csv, the prepared
 *          VisA_pytorch/1cls layout (ROOT/CATEGORY/test/{good,bad}/NAME.JPG, ground_truth/bad/NAME.png).
 *   ksdd2  NNNNN.png + NNNNN_GT.png in one folder, label = any nonzero mask pixel. As the official
 *          datasets/ksdd2.py, ROOT/train is the test set when ROOT has a train/ folder.
 *   mtd    ROOT/MT_<class>/Imgs/NAME.jpg + NAME.png, label = any nonzero mask pixel.
 *   folder ROOT holds images (.png/.jpg/.jpeg); masks (optional) in mask_dir named by mask_pattern
 *          ("{stem}" and "{name}" are replaced by the image's stem / file name; default "{stem}.png");
 *          an image without a mask file is normal, label = any nonzero mask pixel.
 * Samples are listed in sorted order (defect type, then file name; VisA csv: csv order, normal rows
 * first), so runs and shards are deterministic (the official readers use os.listdir/glob order). */
#ifndef SAA_DATASETS_H
#define SAA_DATASETS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { SAA_DS_MVTEC = 0, SAA_DS_VISA, SAA_DS_KSDD2, SAA_DS_MTD, SAA_DS_FOLDER } saa_dataset_kind;

typedef struct {
    char *image; /* path of the image */
    char *mask;  /* path of the mask, NULL for a normal image without a mask file (empty mask) */
    int label;   /* 1 = anomalous */
    char *type;  /* defect type / source folder ("good", "crack", "MT_Blowhole", ...) */
    char *id;    /* "TYPE/STEM", unique within the category: names per-image outputs */
    int width, height; /* image size (from the file header) */
} saa_sample;

typedef struct {
    saa_dataset_kind kind;
    char *category; /* "bottle", "candle", "ksdd2", "mtd", or the folder's name */
    int64_t n;
    saa_sample *samples;
} saa_dataset;

typedef struct {
    const char *mask_dir;     /* folder kind: masks folder (NULL: no masks) */
    const char *mask_pattern; /* folder kind: mask file name, default "{stem}.png" */
} saa_dataset_options;

/* "mvtec", "visa", "ksdd2", "mtd", "folder". */
int saa_dataset_kind_parse(const char *text, saa_dataset_kind *kind);
const char *saa_dataset_kind_name(saa_dataset_kind kind);
/* Categories under root (sorted, malloc'd): mvtec = folders with a test/ folder, visa = objects of the
 * csv (or prepared folders), ksdd2/mtd = one fixed name, folder = the folder's base name. */
int saa_dataset_categories(saa_dataset_kind kind, const char *root, char ***names, int *n);
void saa_dataset_names_free(char **names, int n);
/* Lists and validates the test set of one category (opts may be NULL). */
int saa_dataset_open(saa_dataset_kind kind, const char *root, const char *category,
                     const saa_dataset_options *opts, saa_dataset *out);
void saa_dataset_free(saa_dataset *d);

/* Keeps shard `index` (1..count) of the samples, a deterministic 1/count: sample i (in listing order) goes
 * to shard i % count + 1, so shards are disjoint, cover the set and stay balanced (for saa eval --shard). */
int saa_dataset_shard(saa_dataset *d, int index, int count);

/* The sample's mask as 0/1 bytes at the image size (cv2.IMREAD_GRAYSCALE, then m > 0; zeros when the
 * sample has no mask file). *mask is malloc'd (width*height). */
int saa_sample_load_mask(const saa_sample *s, uint8_t **mask);

/* Width/height from a PNG or JPEG header without decoding. */
int saa_image_size(const char *path, int *w, int *h);

#ifdef __cplusplus
}
#endif
#endif
