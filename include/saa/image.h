/* Images: PNG/JPEG in and out, and resize kernels that reproduce PIL and OpenCV exactly. */
#ifndef SAA_IMAGE_H
#define SAA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An 8-bit interleaved image, HxWxC, C in {1, 3}. */
typedef struct {
    int w, h, c;
    uint8_t *data;
} saa_image;

/* Loads PNG (1..16-bit, gray, gray+alpha, RGB, RGBA, palette, interlaced) or JPEG (gray/colour) into
 * RGB uint8 (c = 3), exactly as cv2.imread(path, IMREAD_COLOR) (what SAA+ uses), channels in RGB
 * order: alpha is dropped (not composited), 16-bit samples become v >> 8. For 8-bit files and for
 * 16-bit RGB/RGBA/gray+alpha this equals PIL's Image.open(path).convert("RGB") too; the one difference
 * is 16-bit GRAY PNGs, which PIL opens as mode "I" and clamps to 255 instead of shifting.
 * JPEG: libjpeg defaults (islow DCT, fancy upsampling); CMYK JPEGs are refused; the EXIF orientation
 * tag is applied as cv2.imread applies it (PIL would not). Returns SAA_OK or an error naming the file. */
int saa_image_load(const char *path, saa_image *out);
/* Loads as single-channel 8-bit, exactly as cv2.imread(path, IMREAD_GRAYSCALE) (how SAA+ reads
 * ground-truth masks): gray PNGs as stored (16-bit: v >> 8); colour PNGs through libpng's
 * rgb_to_gray(0.299, 0.587) as OpenCV's PNG decoder does; JPEGs decoded straight to their Y channel. */
int saa_image_load_gray(const char *path, saa_image *out);
/* Loads a gray image keeping its full range (cv2.IMREAD_ANYDEPTH | IMREAD_GRAYSCALE): values[h*w],
 * 16-bit PNG samples as stored, 8-bit files widened (0..255). */
int saa_image_load_gray16(const char *path, int *w, int *h, uint16_t **values);
void saa_image_free(saa_image *img);
/* Swaps channels 0 and 2 in place (RGB <-> BGR, as cv2.imread hands SAA+ its images). */
void saa_image_swap_rb(saa_image *img);

int saa_png_save_u8(const char *path, const uint8_t *data, int w, int h, int c); /* c = 1, 3 or 4 */
int saa_png_save_gray16(const char *path, const uint16_t *data, int w, int h);
/* Encodes 8-bit HxWxC (c = 1, 3 or 4) as a PNG in memory: *png gets a malloc'd buffer of *len bytes
 * (free() it). Used for images embedded in self-contained HTML reports. */
int saa_png_encode_u8(const uint8_t *data, int w, int h, int c, uint8_t **png, size_t *len);

/* PIL Image.resize((ow, oh), BILINEAR) on uint8 HxWxC (Pillow 9.x fixed-point, antialiased when
 * shrinking, horizontal pass first into a uint8 intermediate). dst is oh*ow*c.
 * Every channel is resampled independently (PIL's "L"/"RGB" behaviour; PIL would premultiply alpha for
 * "RGBA"/"LA", which this does not do). Returns SAA_OK, or SAA_EINVAL / SAA_ENOMEM (dst untouched). */
int saa_resize_pil_bilinear_u8(const uint8_t *src, int w, int h, int c, uint8_t *dst, int ow, int oh);

/* OpenCV cv2.resize(src, (ow, oh), interpolation=...) exactly (OpenCV 4.x on x86-64), on float32
 * HxWxC and uint8 HxWxC: INTER_NEAREST = floor(dst * src/dst) (not NEAREST_EXACT); INTER_LINEAR =
 * half-pixel centres, 11-bit fixed-point taps for uint8 (and OpenCV's 2x2-average shortcut when both
 * axes shrink by exactly 2); INTER_CUBIC = A -0.75, replicated border. Both axes are always resampled
 * (unless the size is unchanged: copy). Returns SAA_OK or SAA_EINVAL / SAA_ENOMEM. */
typedef enum { SAA_CV_INTER_NEAREST = 0, SAA_CV_INTER_LINEAR = 1, SAA_CV_INTER_CUBIC = 2 } saa_cv_interp;
int saa_resize_cv_f32(const float *src, int w, int h, int c, float *dst, int ow, int oh, saa_cv_interp m);
int saa_resize_cv_u8(const uint8_t *src, int w, int h, int c, uint8_t *dst, int ow, int oh, saa_cv_interp m);
/* float64 (SAA+ resizes its float64 anomaly maps: SAA/model.py anomaly_map / multi-instance saliency,
 * and utils/eval_utils.py INTER_CUBIC on the scores). */
int saa_resize_cv_f64(const double *src, int w, int h, int c, double *dst, int ow, int oh, saa_cv_interp m);
/* INTER_NEAREST for any pixel type (pixel_bytes per pixel, e.g. int32 masks): a pure gather. */
int saa_resize_cv_nearest(const void *src, int w, int h, size_t pixel_bytes, void *dst, int ow, int oh);

#ifdef __cplusplus
}
#endif
#endif
