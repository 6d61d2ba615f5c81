/* Resize kernels that reproduce Pillow and OpenCV bit for bit.
 *
 * PIL: Image.resize(..., BILINEAR) of Pillow 9.4 (libImaging/Resample.c): separable, antialiased
 * (the triangle filter is stretched by the scale factor when shrinking), 22-bit fixed-point weights,
 * horizontal pass first into a uint8 intermediate, an axis is resampled only if its size changes.
 *
 * OpenCV: cv2.resize of OpenCV 4.x (modules/imgproc/src/resize.cpp), generic C++ paths (the SIMD
 * paths of OpenCV compute the same values): see the section further down. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "saa/image.h"
#include "saa/tensor.h"

/* ---------------------------------------------------------------------------------------------
 * Pillow bilinear
 * ------------------------------------------------------------------------------------------- */

#define PIL_PRECISION_BITS (32 - 8 - 2)

/* mirrors Resample.c: bilinear_filter */
static double pil_triangle(double x)
{
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* mirrors Resample.c: precompute_coeffs + normalize_coeffs_8bpc for in0 = 0, in1 = in_size.
 * Fills bounds[2*out] = (first source index, tap count) and returns ksize with kk[out*ksize]
 * fixed-point taps; NULL kk on allocation failure. */
static int pil_coeffs(int in_size, int out_size, int **bounds_out, int32_t **kk_out)
{
    double scale = (double)(float)in_size / out_size, filterscale = scale;
    if (filterscale < 1.0) filterscale = 1.0;
    double support = 1.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;

    double *w = malloc((size_t)ksize * sizeof *w);
    int32_t *kk = calloc((size_t)out_size * ksize, sizeof *kk);
    int *bounds = malloc((size_t)out_size * 2 * sizeof *bounds);
    if (!w || !kk || !bounds) {
        free(w), free(kk), free(bounds);
        *kk_out = NULL, *bounds_out = NULL;
        return 0;
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = 0.0 + (xx + 0.5) * scale;
        double ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            w[x] = pil_triangle((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        for (int x = 0; x < xmax; x++) {
            double k = ww != 0.0 ? w[x] / ww : w[x];
            kk[xx * ksize + x] = k < 0 ? (int32_t)(-0.5 + k * (1 << PIL_PRECISION_BITS))
                                       : (int32_t)(0.5 + k * (1 << PIL_PRECISION_BITS));
        }
        bounds[2 * xx] = xmin;
        bounds[2 * xx + 1] = xmax;
    }
    free(w);
    *bounds_out = bounds;
    *kk_out = kk;
    return ksize;
}

/* clip8 of Resample.c: arithmetic shift, then clamp to 0..255. */
static inline uint8_t pil_clip8(int32_t v)
{
    int32_t s = v >> PIL_PRECISION_BITS;
    return (uint8_t)(s < 0 ? 0 : s > 255 ? 255 : s);
}

/* One pass along an axis. The source is seen as `lines` lines of `n_in` samples (stride
 * `in_step` between samples, `in_line` between lines); same for the destination. */
static void pil_pass(const uint8_t *src, long lines, long in_line, long in_step, uint8_t *dst, long out_line,
                     long out_step, int c, int n_out, const int *bounds, const int32_t *kk, int ksize)
{
#pragma omp parallel for schedule(static) if (lines * n_out > 65536)
    for (long l = 0; l < lines; l++) {
        for (int o = 0; o < n_out; o++) {
            const int32_t *k = kk + (size_t)o * ksize;
            int xmin = bounds[2 * o], xn = bounds[2 * o + 1];
            for (int ch = 0; ch < c; ch++) {
                const uint8_t *s = src + l * in_line + (long)xmin * in_step + ch;
                int32_t acc = 1 << (PIL_PRECISION_BITS - 1);
                for (int x = 0; x < xn; x++) acc += (int32_t)s[x * in_step] * k[x];
                dst[l * out_line + (long)o * out_step + ch] = pil_clip8(acc);
            }
        }
    }
}

int saa_resize_pil_bilinear_u8(const uint8_t *src, int w, int h, int c, uint8_t *dst, int ow, int oh)
{
    if (w <= 0 || h <= 0 || ow <= 0 || oh <= 0 || c <= 0)
        return saa_set_error(SAA_EINVAL, "resize: bad sizes %dx%dx%d -> %dx%d", w, h, c, ow, oh);
    int need_h = ow != w, need_v = oh != h;
    if (!need_h && !need_v) {
        memcpy(dst, src, (size_t)w * h * c);
        return SAA_OK;
    }
    int *bh = NULL, *bv = NULL;
    int32_t *kh = NULL, *kv = NULL;
    int ksh = 0, ksv = 0, rc = SAA_ENOMEM;
    uint8_t *tmp = NULL;
    if (need_h && !(ksh = pil_coeffs(w, ow, &bh, &kh))) goto out;
    if (need_v && !(ksv = pil_coeffs(h, oh, &bv, &kv))) goto out;

    const uint8_t *vsrc = src; /* input of the vertical pass */
    if (need_h) {
        uint8_t *hdst = dst;
        if (need_v) {
            if (!(tmp = malloc((size_t)ow * h * c))) goto out;
            hdst = tmp;
        }
        pil_pass(src, h, (long)w * c, c, hdst, (long)ow * c, c, c, ow, bh, kh, ksh);
        vsrc = hdst;
    }
    if (need_v) {
        /* columns are the lines: one line per (x, channel) handled as c-channel samples */
        pil_pass(vsrc, ow, c, (long)ow * c, dst, c, (long)ow * c, c, oh, bv, kv, ksv);
    }
    rc = SAA_OK;
out:
    free(tmp), free(bh), free(bv), free(kh), free(kv);
    if (rc != SAA_OK) saa_set_error(rc, "resize: out of memory (%dx%d -> %dx%d)", w, h, ow, oh);
    return rc;
}
