/* WideResNet-50-2 visual saliency of SAA+ (SAA/modelinet.py ModelINet + SAA/model.py saliency):
 * timm wide_resnet50_2 features_only out_indices (1,2,3) -> nearest-upsampled to the layer1 grid,
 * concatenated, L2-normalised per pixel; then the single-instance self-similarity heat map or the
 * multi-instance cross-object similarity map. */
#ifndef SAA_WRN_H
#define SAA_WRN_H

#include <stdint.h>

#include "saa/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct saa_wrn saa_wrn;

/* Builds the backbone from a timm/torchvision ResNet state dict (names conv1.weight, bn1.*,
 * layerL.B.conv{1,2,3}.weight, bnN.*, downsample.{0,1}.*), with every width read from the weights and
 * BatchNorm folded into the convolutions. prefix is prepended to every name (NULL or "" for none).
 * layer4.* and fc.* are ignored; *.num_batches_tracked is not required. w may be closed afterwards. */
int saa_wrn_load(saa_weights *w, const char *prefix, saa_wrn **out);
void saa_wrn_free(saa_wrn *m);

/* Output of ModelINet.forward for one image, before fusion: layer1..3 in torch layout [C,H,W], plus
 * pixel-major copies and per-pixel norms of the fused vector (layer1 grid) used by the gathers. */
typedef struct {
    int64_t C[3], H[3], W[3];
    float *layer[3];     /* [C, H, W] */
    float *pixel_major[3]; /* [H*W, C] */
    float *norm;         /* [H0*W0]: max(||fused pixel||_2, 1e-12) */
    int64_t fused_C;     /* C[0] + C[1] + C[2] */
} saa_wrn_features;

/* ModelINet.preprocess: ResizeLongestSide(img_size) (PIL bilinear; a copy when the size is unchanged),
 * (x - mean) / std with the ImageNet statistics applied to the channels in the order given (SAA+ passes
 * BGR), zero padding right/bottom to img_size. x: [3, img_size, img_size]. ratio_hw (may be NULL):
 * resized h / img_size, w / img_size. */
int saa_wrn_preprocess(const uint8_t *img, int w, int h, int img_size, float *x, double ratio_hw[2]);

/* Backbone on x[3,H,W] (H, W as produced by preprocess). Fills f (free with saa_wrn_features_free). */
int saa_wrn_features_compute(const saa_wrn *m, const float *x, int H, int W, saa_wrn_features *f);
void saa_wrn_features_free(saa_wrn_features *f);

/* Fused, normalised feature vectors of layer1-grid pixels: out[i, :] for pixel index pix[i]
 * (row-major y * W0 + x); pix NULL means pixels first..first+n-1. out is [n, fused_C]. */
void saa_wrn_fused_gather(const saa_wrn_features *f, const int64_t *pix, int64_t first, int64_t n, float *out);

/* Rows [row0, row0+nrows) of the self-similarity S = 0.5 * (1 - F^T F) over all layer1 pixels:
 * out[nrows, H0*W0]. Exposed for checking; the heat map never holds more than a block of it. */
int saa_wrn_self_similarity_rows(const saa_wrn_features *f, int64_t row0, int64_t nrows, float *out);

/* single_object_similarity: per pixel, the mean of the top_n largest entries of its S row (all of them
 * if fewer). heat[H0*W0] (float32, as the official map). */
int saa_wrn_single_heat(const saa_wrn_features *f, int top_n, float *heat);

/* Multi-instance map on the layer1 grid (Model.visual_saliency_calculation, object_number > 1): masks
 * [n_masks, H0, W0] (nonzero inside, already resized to the feature grid). For each object i, every
 * pixel of mask i scores 0.5 * (1 - max over the pixels of the other masks of the cosine similarity),
 * where other-mask pixels lying inside mask i count as zero vectors; max_map = max over objects of those
 * per-object maps (0 outside every mask). object_scores [n_masks, H0*W0] may be NULL. The union of the
 * masks is swept once in blocks (each dot product serves both of its pixels), keeping only running maxima
 * (memory O(n_masks * pixels)). Needs n_masks >= 2 and no empty mask (the official code crashes). */
int saa_wrn_multi_map(const saa_wrn_features *f, const uint8_t *masks, int n_masks, double *object_scores,
                      double *max_map);

/* The whole of Model.visual_saliency_calculation on a BGR (as SAA+ passes it) uint8 image h x w x 3
 * and n_masks object masks [n_masks, h, w] (nonzero inside): object_number == 1 -> single-instance
 * (cv2.resize to 256, heat, cv2.resize back; float32 map, *is_f32 = 1); otherwise multi-instance
 * (cv2.resize to 1024, masks INTER_NEAREST to the feature grid, cv2.resize of the float64 map back;
 * *is_f32 = 0). out[h*w]. */
int saa_wrn_saliency(const saa_wrn *m, const uint8_t *bgr, int w, int h, const uint8_t *masks, int n_masks,
                     int object_number, double *out, int *is_f32);

#ifdef __cplusplus
}
#endif
#endif
