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

/* Vertical pass, one output row at a time so that every read is a contiguous source row (the
 * integer sums are the same as Resample.c's column loops). */
static int pil_vertical(const uint8_t *src, long row_len, uint8_t *dst, int oh, const int *bounds, const int32_t *kk,
                        int ksize)
{
    int failed = 0;
#pragma omp parallel if ((long)oh * row_len > 65536)
    {
        int32_t *acc = malloc((size_t)row_len * sizeof *acc);
        if (!acc) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int y = 0; y < oh; y++) {
            if (!acc) continue;
            const int32_t *k = kk + (size_t)y * ksize;
            int ymin = bounds[2 * y], yn = bounds[2 * y + 1];
            for (long x = 0; x < row_len; x++) acc[x] = 1 << (PIL_PRECISION_BITS - 1);
            for (int j = 0; j < yn; j++) {
                const uint8_t *row = src + (long)(ymin + j) * row_len;
                int32_t kj = k[j];
                for (long x = 0; x < row_len; x++) acc[x] += (int32_t)row[x] * kj;
            }
            uint8_t *out = dst + (long)y * row_len;
            for (long x = 0; x < row_len; x++) out[x] = pil_clip8(acc[x]);
        }
        free(acc);
    }
    return failed ? SAA_ENOMEM : SAA_OK;
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
    if (need_v && pil_vertical(vsrc, (long)ow * c, dst, oh, bv, kv, ksv) != SAA_OK) goto out;
    rc = SAA_OK;
out:
    free(tmp), free(bh), free(bv), free(kh), free(kv);
    if (rc != SAA_OK) saa_set_error(rc, "resize: out of memory (%dx%d -> %dx%d)", w, h, ow, oh);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * OpenCV cv2.resize
 *
 * mirrors modules/imgproc/src/resize.cpp (OpenCV 4.x, as built for x86-64 with the 128-bit SSE2
 * baseline: the generic templates plus the universal-intrinsic vector ops, whose arithmetic differs
 * from the scalar loops in two places that we reproduce exactly, see cv_vresize_* below):
 *  - dsize == ssize: plain copy.
 *  - INTER_NEAREST: sx = min(floor(dx * (1 / (dw / sw))), sw - 1) (resizeNN, not the _EXACT variant).
 *  - INTER_LINEAR with both scale factors exactly 2: switches to INTER_AREA's fast 2x2 average.
 *  - otherwise resizeGeneric_: fx = (float)((dx + 0.5) * scale - 0.5), sx = floor(fx), fx -= sx;
 *    linear taps (1 - fx, fx) with sx/fx clamped at the borders; cubic taps interpolateCubic (A =
 *    -0.75) with border replicate; uint8 uses 11-bit fixed-point taps (INTER_RESIZE_COEF_BITS),
 *    float uses the float taps. Horizontal pass into an int/float row buffer, then vertical pass.
 * ------------------------------------------------------------------------------------------- */

#define CV_COEF_BITS 11
#define CV_COEF_SCALE (1 << CV_COEF_BITS)
/* Vector widths of the 128-bit baseline: floats per register, int16 per register. */
#define CV_LANES_F32 4
#define CV_LANES_S16 8

static inline int cv_floor(double v)
{
    int i = (int)v;
    return i - (i > v);
}

/* saturate_cast<short>(float): round half to even, then clamp. */
static inline short cv_sat_short(float v)
{
    long r = lrintf(v);
    return (short)(r < -32768 ? -32768 : r > 32767 ? 32767 : r);
}

static inline uint8_t cv_sat_u8(long v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

/* mirrors resize.cpp: interpolateCubic (float arithmetic, A = -0.75) */
static void cv_cubic_coeffs(float x, float *c)
{
    const float A = -0.75f;
    c[0] = ((A * (x + 1) - 5 * A) * (x + 1) + 8 * A) * (x + 1) - 4 * A;
    c[1] = ((A + 2) * x - (A + 3)) * x * x + 1;
    c[2] = ((A + 2) * (1 - x) - (A + 3)) * (1 - x) * (1 - x) + 1;
    c[3] = 1.f - c[0] - c[1] - c[2];
}

/* Interpolation tables of hal::resize (generic path). Offsets and taps are per output element
 * (pixel * cn + channel) horizontally, per output row vertically. */
typedef struct {
    int ksize, xmin, xmax; /* xmin/xmax in elements (already multiplied by cn) */
    int *xofs, *yofs;
    float *alpha, *beta;   /* float taps (float images) */
    short *ialpha, *ibeta; /* fixed-point taps (uint8 images) */
} cv_tables;

static void cv_tables_free(cv_tables *t)
{
    free(t->xofs), free(t->yofs), free(t->alpha), free(t->beta), free(t->ialpha), free(t->ibeta);
}

static int cv_tables_init(cv_tables *t, int w, int h, int cn, int ow, int oh, int cubic, int fixpt)
{
    memset(t, 0, sizeof *t);
    int ksize = cubic ? 4 : 2, ksize2 = ksize / 2, width = ow * cn;
    double inv_scale_x = (double)ow / w, inv_scale_y = (double)oh / h;
    double scale_x = 1. / inv_scale_x, scale_y = 1. / inv_scale_y;
    t->ksize = ksize;
    t->xofs = malloc((size_t)width * sizeof *t->xofs);
    t->yofs = malloc((size_t)oh * sizeof *t->yofs);
    if (fixpt) {
        t->ialpha = malloc((size_t)width * ksize * sizeof *t->ialpha);
        t->ibeta = malloc((size_t)oh * ksize * sizeof *t->ibeta);
    } else {
        t->alpha = malloc((size_t)width * ksize * sizeof *t->alpha);
        t->beta = malloc((size_t)oh * ksize * sizeof *t->beta);
    }
    if (!t->xofs || !t->yofs || (fixpt ? !t->ialpha || !t->ibeta : !t->alpha || !t->beta)) {
        cv_tables_free(t);
        return SAA_ENOMEM;
    }
    int xmin = 0, xmax = ow;
    float cbuf[4];
    for (int dx = 0; dx < ow; dx++) {
        float fx = (float)((dx + 0.5) * scale_x - 0.5);
        int sx = cv_floor(fx);
        fx -= sx;
        if (sx < ksize2 - 1) {
            xmin = dx + 1;
            if (sx < 0 && !cubic) fx = 0, sx = 0;
        }
        if (sx + ksize2 >= w) {
            if (dx < xmax) xmax = dx;
            if (sx >= w - 1 && !cubic) fx = 0, sx = w - 1;
        }
        for (int k = 0; k < cn; k++) t->xofs[dx * cn + k] = sx * cn + k;
        if (cubic) {
            cv_cubic_coeffs(fx, cbuf);
        } else {
            cbuf[0] = 1.f - fx;
            cbuf[1] = fx;
        }
        for (int k = 0; k < cn * ksize; k++) {
            if (fixpt)
                t->ialpha[dx * cn * ksize + k] = cv_sat_short(cbuf[k % ksize] * CV_COEF_SCALE);
            else
                t->alpha[dx * cn * ksize + k] = cbuf[k % ksize];
        }
    }
    for (int dy = 0; dy < oh; dy++) {
        float fy = (float)((dy + 0.5) * scale_y - 0.5);
        int sy = cv_floor(fy);
        fy -= sy;
        t->yofs[dy] = sy;
        if (cubic) {
            cv_cubic_coeffs(fy, cbuf);
        } else {
            cbuf[0] = 1.f - fy;
            cbuf[1] = fy;
        }
        for (int k = 0; k < ksize; k++) {
            if (fixpt)
                t->ibeta[dy * ksize + k] = cv_sat_short(cbuf[k] * CV_COEF_SCALE);
            else
                t->beta[dy * ksize + k] = cbuf[k];
        }
    }
    t->xmin = xmin * cn;
    t->xmax = xmax * cn;
    return SAA_OK;
}

/* mirrors HResizeLinear / HResizeCubic for one source row (float). */
static void cv_hresize_f32(const float *S, float *D, const cv_tables *t, int swidth, int dwidth, int cn)
{
    if (t->ksize == 2) {
        for (int dx = 0; dx < t->xmax; dx++) {
            int sx = t->xofs[dx];
            D[dx] = S[sx] * t->alpha[dx * 2] + S[sx + cn] * t->alpha[dx * 2 + 1];
        }
        for (int dx = t->xmax; dx < dwidth; dx++) D[dx] = S[t->xofs[dx]] * 1.f;
        return;
    }
    for (int dx = 0; dx < dwidth; dx++) {
        const float *a = t->alpha + dx * 4;
        int sx = t->xofs[dx];
        if (dx >= t->xmin && dx < t->xmax) {
            D[dx] = S[sx - cn] * a[0] + S[sx] * a[1] + S[sx + cn] * a[2] + S[sx + cn * 2] * a[3];
        } else {
            float v = 0;
            for (int j = 0; j < 4; j++) {
                int sxj = sx - cn + j * cn;
                while (sxj < 0) sxj += cn;
                while (sxj >= swidth) sxj -= cn;
                v += S[sxj] * a[j];
            }
            D[dx] = v;
        }
    }
}

/* Same for uint8 with fixed-point taps (exact integer sums). */
static void cv_hresize_u8(const uint8_t *S, int *D, const cv_tables *t, int swidth, int dwidth, int cn)
{
    if (t->ksize == 2) {
        for (int dx = 0; dx < t->xmax; dx++) {
            int sx = t->xofs[dx];
            D[dx] = S[sx] * t->ialpha[dx * 2] + S[sx + cn] * t->ialpha[dx * 2 + 1];
        }
        for (int dx = t->xmax; dx < dwidth; dx++) D[dx] = S[t->xofs[dx]] * CV_COEF_SCALE;
        return;
    }
    for (int dx = 0; dx < dwidth; dx++) {
        const short *a = t->ialpha + dx * 4;
        int sx = t->xofs[dx];
        if (dx >= t->xmin && dx < t->xmax) {
            D[dx] = S[sx - cn] * a[0] + S[sx] * a[1] + S[sx + cn] * a[2] + S[sx + cn * 2] * a[3];
        } else {
            int v = 0;
            for (int j = 0; j < 4; j++) {
                int sxj = sx - cn + j * cn;
                while (sxj < 0) sxj += cn;
                while (sxj >= swidth) sxj -= cn;
                v += S[sxj] * a[j];
            }
            D[dx] = v;
        }
    }
}

/* mirrors VResizeLinear / VResizeCubic (float). The vector op (VResizeCubicVec_32f) handles the
 * first floor(width/4)*4 elements and sums S0*b0 + (S1*b1 + (S2*b2 + S3*b3)); the scalar tail
 * sums left to right. */
static void cv_vresize_f32(const float *const *S, const float *b, float *dst, int width, int ksize)
{
    if (ksize == 2) {
        for (int x = 0; x < width; x++) dst[x] = S[0][x] * b[0] + S[1][x] * b[1];
        return;
    }
    int x = 0, vec_end = width / CV_LANES_F32 * CV_LANES_F32;
    for (; x < vec_end; x++) dst[x] = S[0][x] * b[0] + (S[1][x] * b[1] + (S[2][x] * b[2] + S[3][x] * b[3]));
    for (; x < width; x++) dst[x] = S[0][x] * b[0] + S[1][x] * b[1] + S[2][x] * b[2] + S[3][x] * b[3];
}

/* uint8: linear uses the specialised VResizeLinear<uchar, int, short> formula (identical in its
 * vector op); cubic's vector op (VResizeCubicVec_32s8u, first floor(width/8)*8 elements) works in
 * float and rounds half to even, the scalar tail uses FixedPtCast<int, uchar, 22>. */
static void cv_vresize_u8(const int *const *S, const short *b, uint8_t *dst, int width, int ksize)
{
    if (ksize == 2) {
        for (int x = 0; x < width; x++)
            dst[x] = (uint8_t)((((b[0] * (S[0][x] >> 4)) >> 16) + ((b[1] * (S[1][x] >> 4)) >> 16) + 2) >> 2);
        return;
    }
    const float scale = 1.f / (CV_COEF_SCALE * CV_COEF_SCALE);
    float fb0 = b[0] * scale, fb1 = b[1] * scale, fb2 = b[2] * scale, fb3 = b[3] * scale;
    int x = 0, vec_end = width / CV_LANES_S16 * CV_LANES_S16;
    for (; x < vec_end; x++) {
        float s = (float)S[0][x] * fb0 + ((float)S[1][x] * fb1 + ((float)S[2][x] * fb2 + (float)S[3][x] * fb3));
        dst[x] = cv_sat_u8(lrintf(s));
    }
    for (; x < width; x++) {
        int s = S[0][x] * b[0] + S[1][x] * b[1] + S[2][x] * b[2] + S[3][x] * b[3];
        dst[x] = cv_sat_u8((s + (1 << 21)) >> 22);
    }
}

static inline int cv_clip(int x, int a, int b) { return x >= a ? (x < b ? x : b - 1) : a; }

/* Float64 variants (HResizeLinear/Cubic<double, double, float> with float taps widened to double,
 * VResizeLinear/Cubic<double, ...> with VResizeNoVec: plain left-to-right sums). */
static void cv_hresize_f64(const double *S, double *D, const cv_tables *t, int swidth, int dwidth, int cn)
{
    if (t->ksize == 2) {
        for (int dx = 0; dx < t->xmax; dx++) {
            int sx = t->xofs[dx];
            D[dx] = S[sx] * (double)t->alpha[dx * 2] + S[sx + cn] * (double)t->alpha[dx * 2 + 1];
        }
        for (int dx = t->xmax; dx < dwidth; dx++) D[dx] = S[t->xofs[dx]] * 1.0;
        return;
    }
    for (int dx = 0; dx < dwidth; dx++) {
        const float *a = t->alpha + dx * 4;
        int sx = t->xofs[dx];
        if (dx >= t->xmin && dx < t->xmax) {
            D[dx] = S[sx - cn] * (double)a[0] + S[sx] * (double)a[1] + S[sx + cn] * (double)a[2] +
                    S[sx + cn * 2] * (double)a[3];
        } else {
            double v = 0;
            for (int j = 0; j < 4; j++) {
                int sxj = sx - cn + j * cn;
                while (sxj < 0) sxj += cn;
                while (sxj >= swidth) sxj -= cn;
                v += S[sxj] * (double)a[j];
            }
            D[dx] = v;
        }
    }
}

static void cv_vresize_f64(const double *const *S, const float *beta, double *dst, int width, int ksize)
{
    double b0 = beta[0], b1 = beta[1];
    if (ksize == 2) {
        for (int x = 0; x < width; x++) dst[x] = S[0][x] * b0 + S[1][x] * b1;
        return;
    }
    double b2 = beta[2], b3 = beta[3];
    for (int x = 0; x < width; x++) dst[x] = S[0][x] * b0 + S[1][x] * b1 + S[2][x] * b2 + S[3][x] * b3;
}

typedef enum { CV_U8, CV_F32, CV_F64 } cv_depth;

/* resizeGeneric_: every source row is resampled horizontally once, then each output row mixes
 * ksize of them (rows clipped to the image: border replicate). */
static int cv_resize_generic(const void *src, int w, int h, int cn, void *dst, int ow, int oh, int cubic,
                             cv_depth depth)
{
    cv_tables t;
    if (cv_tables_init(&t, w, h, cn, ow, oh, cubic, depth == CV_U8) != SAA_OK) return SAA_ENOMEM;
    int swidth = w * cn, dwidth = ow * cn, ksize = t.ksize;
    size_t elem = depth == CV_U8 ? sizeof(int) : depth == CV_F32 ? sizeof(float) : sizeof(double);
    char *rows = malloc((size_t)h * dwidth * elem);
    if (!rows) {
        cv_tables_free(&t);
        return SAA_ENOMEM;
    }
#pragma omp parallel for schedule(static) if ((long)h * dwidth > 65536)
    for (int y = 0; y < h; y++) {
        void *row = rows + (size_t)y * dwidth * elem;
        if (depth == CV_U8)
            cv_hresize_u8((const uint8_t *)src + (size_t)y * swidth, row, &t, swidth, dwidth, cn);
        else if (depth == CV_F32)
            cv_hresize_f32((const float *)src + (size_t)y * swidth, row, &t, swidth, dwidth, cn);
        else
            cv_hresize_f64((const double *)src + (size_t)y * swidth, row, &t, swidth, dwidth, cn);
    }
#pragma omp parallel for schedule(static) if ((long)oh * dwidth > 65536)
    for (int dy = 0; dy < oh; dy++) {
        const void *S[4];
        for (int k = 0; k < ksize; k++) {
            int sy = cv_clip(t.yofs[dy] - ksize / 2 + 1 + k, 0, h);
            S[k] = rows + (size_t)sy * dwidth * elem;
        }
        size_t o = (size_t)dy * dwidth;
        if (depth == CV_U8)
            cv_vresize_u8((const int *const *)S, t.ibeta + dy * ksize, (uint8_t *)dst + o, dwidth, ksize);
        else if (depth == CV_F32)
            cv_vresize_f32((const float *const *)S, t.beta + dy * ksize, (float *)dst + o, dwidth, ksize);
        else
            cv_vresize_f64((const double *const *)S, t.beta + dy * ksize, (double *)dst + o, dwidth, ksize);
    }
    free(rows);
    cv_tables_free(&t);
    return SAA_OK;
}

/* resizeNN */
static int cv_resize_nearest(const void *src, int w, int h, size_t pix, void *dst, int ow, int oh)
{
    double ifx = 1. / ((double)ow / w), ify = 1. / ((double)oh / h);
    int *xofs = malloc((size_t)ow * sizeof *xofs);
    if (!xofs) return SAA_ENOMEM;
    for (int x = 0; x < ow; x++) {
        int sx = cv_floor(x * ifx);
        xofs[x] = sx < w - 1 ? sx : w - 1;
    }
    for (int y = 0; y < oh; y++) {
        int sy = cv_floor(y * ify);
        if (sy > h - 1) sy = h - 1;
        const char *S = (const char *)src + (size_t)sy * w * pix;
        char *D = (char *)dst + (size_t)y * ow * pix;
        for (int x = 0; x < ow; x++) memcpy(D + (size_t)x * pix, S + (size_t)xofs[x] * pix, pix);
    }
    free(xofs);
    return SAA_OK;
}

/* resizeAreaFast_ for exact 2x2 decimation (what INTER_LINEAR becomes for scale 2 x 2). */
static void cv_area2_f32(const float *src, int w, int cn, float *dst, int ow, int oh)
{
    (void)w;
    int width = ow * cn, swidth = w * cn;
    /* ResizeAreaFastVec_SIMD_32f covers the first floor(width/4)*4 elements for cn 1 and 4. */
    int vec_end = (cn == 1 || cn == 4) ? width / CV_LANES_F32 * CV_LANES_F32 : 0;
    for (int dy = 0; dy < oh; dy++) {
        const float *S0 = src + (size_t)2 * dy * swidth, *S1 = S0 + swidth;
        float *D = dst + (size_t)dy * width;
        for (int dx = 0; dx < width; dx++) {
            int i = (dx / cn) * 2 * cn + dx % cn;
            float a = S0[i], b = S0[i + cn], c = S1[i], d = S1[i + cn];
            D[dx] = dx < vec_end ? ((a + b) + (c + d)) * 0.25f : (((a + b) + c) + d) * 0.25f;
        }
    }
}

static void cv_area2_u8(const uint8_t *src, int w, int cn, uint8_t *dst, int ow, int oh)
{
    int width = ow * cn, swidth = w * cn;
    for (int dy = 0; dy < oh; dy++) {
        const uint8_t *S0 = src + (size_t)2 * dy * swidth, *S1 = S0 + swidth;
        uint8_t *D = dst + (size_t)dy * width;
        for (int dx = 0; dx < width; dx++) {
            int i = (dx / cn) * 2 * cn + dx % cn;
            int sum = S0[i] + S0[i + cn] + S1[i] + S1[i + cn];
            /* ResizeAreaFastVec (cn 1, 3, 4): (sum + 2) >> 2; other cn: saturate_cast(sum * 0.25f) */
            D[dx] = (cn == 1 || cn == 3 || cn == 4) ? (uint8_t)((sum + 2) >> 2) : cv_sat_u8(lrintf(sum * 0.25f));
        }
    }
}

/* resizeAreaFast_<double, double, ResizeAreaFastNoVec>: scalar sum, times the float 0.25f. */
static void cv_area2_f64(const double *src, int w, int cn, double *dst, int ow, int oh)
{
    int width = ow * cn, swidth = w * cn;
    for (int dy = 0; dy < oh; dy++) {
        const double *S0 = src + (size_t)2 * dy * swidth, *S1 = S0 + swidth;
        double *D = dst + (size_t)dy * width;
        for (int dx = 0; dx < width; dx++) {
            int i = (dx / cn) * 2 * cn + dx % cn;
            D[dx] = (((S0[i] + S0[i + cn]) + S1[i]) + S1[i + cn]) * (double)0.25f;
        }
    }
}

static int cv_resize(const void *src, int w, int h, int c, void *dst, int ow, int oh, saa_cv_interp m,
                     cv_depth depth)
{
    if (w <= 0 || h <= 0 || c <= 0 || ow <= 0 || oh <= 0)
        return saa_set_error(SAA_EINVAL, "cv resize: bad sizes %dx%dx%d -> %dx%d", w, h, c, ow, oh);
    size_t elem = depth == CV_U8 ? 1 : depth == CV_F32 ? sizeof(float) : sizeof(double);
    if (ow == w && oh == h) {
        memcpy(dst, src, (size_t)w * h * c * elem);
        return SAA_OK;
    }
    int rc;
    if (m == SAA_CV_INTER_NEAREST) {
        rc = cv_resize_nearest(src, w, h, (size_t)c * elem, dst, ow, oh);
    } else if (m == SAA_CV_INTER_LINEAR || m == SAA_CV_INTER_CUBIC) {
        double scale_x = 1. / ((double)ow / w), scale_y = 1. / ((double)oh / h);
        int is_area_fast = fabs(scale_x - lrint(scale_x)) < 2.220446049250313e-16 &&
                           fabs(scale_y - lrint(scale_y)) < 2.220446049250313e-16;
        if (m == SAA_CV_INTER_LINEAR && is_area_fast && lrint(scale_x) == 2 && lrint(scale_y) == 2) {
            if (depth == CV_U8)
                cv_area2_u8(src, w, c, dst, ow, oh);
            else if (depth == CV_F32)
                cv_area2_f32(src, w, c, dst, ow, oh);
            else
                cv_area2_f64(src, w, c, dst, ow, oh);
            rc = SAA_OK;
        } else {
            rc = cv_resize_generic(src, w, h, c, dst, ow, oh, m == SAA_CV_INTER_CUBIC, depth);
        }
    } else {
        return saa_set_error(SAA_EINVAL, "cv resize: unknown interpolation %d", (int)m);
    }
    if (rc != SAA_OK) saa_set_error(rc, "cv resize: out of memory (%dx%d -> %dx%d)", w, h, ow, oh);
    return rc;
}

int saa_resize_cv_f32(const float *src, int w, int h, int c, float *dst, int ow, int oh, saa_cv_interp m)
{
    return cv_resize(src, w, h, c, dst, ow, oh, m, CV_F32);
}

int saa_resize_cv_f64(const double *src, int w, int h, int c, double *dst, int ow, int oh, saa_cv_interp m)
{
    return cv_resize(src, w, h, c, dst, ow, oh, m, CV_F64);
}

int saa_resize_cv_u8(const uint8_t *src, int w, int h, int c, uint8_t *dst, int ow, int oh, saa_cv_interp m)
{
    return cv_resize(src, w, h, c, dst, ow, oh, m, CV_U8);
}

int saa_resize_cv_nearest(const void *src, int w, int h, size_t pixel_bytes, void *dst, int ow, int oh)
{
    if (w <= 0 || h <= 0 || ow <= 0 || oh <= 0 || pixel_bytes == 0)
        return saa_set_error(SAA_EINVAL, "cv resize: bad sizes %dx%d -> %dx%d", w, h, ow, oh);
    if (ow == w && oh == h) {
        memcpy(dst, src, (size_t)w * h * pixel_bytes);
        return SAA_OK;
    }
    if (cv_resize_nearest(src, w, h, pixel_bytes, dst, ow, oh) != SAA_OK)
        return saa_set_error(SAA_ENOMEM, "cv resize: out of memory (%dx%d -> %dx%d)", w, h, ow, oh);
    return SAA_OK;
}
