/* The two OpenCV resizes of the SAA+ evaluation protocol (eval_utils.specify_resolution), bit-exact:
 * cv2.INTER_CUBIC on float64 maps and cv2.INTER_NEAREST on uint8 masks (recipes verified against
 * cv2 4.6 in shared/golden/metrics/README.md). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "saa/metrics.h"

/* mirrors OpenCV imgproc/resize.cpp: interpolateCubic (float arithmetic, A = -0.75) */
static void cubic_coeffs(float x, float *c)
{
    const float A = -0.75f;
    c[0] = ((A * (x + 1) - 5 * A) * (x + 1) + 8 * A) * (x + 1) - 4 * A;
    c[1] = ((A + 2) * x - (A + 3)) * x * x + 1;
    c[2] = ((A + 2) * (1 - x) - (A + 3)) * (1 - x) * (1 - x) + 1;
    c[3] = 1.f - c[0] - c[1] - c[2];
}

/* Source taps (clamped) and float32 weights for each output index along one axis. */
static void cubic_axis(int src, int dst, int *idx, float *wt)
{
    double scale = 1.0 / ((double)dst / src);
    for (int d = 0; d < dst; d++) {
        float f = (float)((d + 0.5) * scale - 0.5);
        int s = (int)floorf(f);
        f -= (float)s;
        cubic_coeffs(f, wt + 4 * d);
        for (int k = 0; k < 4; k++) {
            int j = s - 1 + k;
            idx[4 * d + k] = j < 0 ? 0 : j >= src ? src - 1 : j;
        }
    }
}

void saa_eval_resize_cubic_f64(const double *src, int w, int h, double *dst, int ow, int oh)
{
    if (w == ow && h == oh) { /* cv2.resize copies when the size is unchanged */
        memcpy(dst, src, (size_t)w * h * sizeof *dst);
        return;
    }
    int *xi = malloc((size_t)ow * 4 * sizeof *xi), *yi = malloc((size_t)oh * 4 * sizeof *yi);
    float *xw = malloc((size_t)ow * 4 * sizeof *xw), *yw = malloc((size_t)oh * 4 * sizeof *yw);
    double *rows = malloc((size_t)h * ow * sizeof *rows); /* horizontal pass of every source row */
    if (!xi || !yi || !xw || !yw || !rows) {
        /* no error channel here: fill with NaN so the failure is visible downstream */
        for (size_t i = 0; i < (size_t)ow * oh; i++) dst[i] = NAN;
        free(xi), free(yi), free(xw), free(yw), free(rows);
        return;
    }
    cubic_axis(w, ow, xi, xw);
    cubic_axis(h, oh, yi, yw);
    for (int y = 0; y < h; y++) {
        const double *s = src + (size_t)y * w;
        double *r = rows + (size_t)y * ow;
        for (int x = 0; x < ow; x++) {
            const int *i = xi + 4 * x;
            const float *a = xw + 4 * x;
            r[x] = s[i[0]] * a[0] + s[i[1]] * a[1] + s[i[2]] * a[2] + s[i[3]] * a[3];
        }
    }
    for (int y = 0; y < oh; y++) {
        const int *i = yi + 4 * y;
        const float *b = yw + 4 * y;
        const double *r0 = rows + (size_t)i[0] * ow, *r1 = rows + (size_t)i[1] * ow;
        const double *r2 = rows + (size_t)i[2] * ow, *r3 = rows + (size_t)i[3] * ow;
        double *d = dst + (size_t)y * ow;
        for (int x = 0; x < ow; x++) d[x] = r0[x] * b[0] + r1[x] * b[1] + r2[x] * b[2] + r3[x] * b[3];
    }
    free(xi), free(yi), free(xw), free(yw), free(rows);
}

/* mirrors OpenCV resizeNN: sx = min(floor(dx * (1 / inv_scale)), src - 1) */
void saa_eval_resize_nearest_u8(const uint8_t *src, int w, int h, uint8_t *dst, int ow, int oh)
{
    double fx = 1.0 / ((double)ow / w), fy = 1.0 / ((double)oh / h);
    for (int y = 0; y < oh; y++) {
        int sy = (int)floor(y * fy);
        if (sy > h - 1) sy = h - 1;
        for (int x = 0; x < ow; x++) {
            int sx = (int)floor(x * fx);
            if (sx > w - 1) sx = w - 1;
            dst[(size_t)y * ow + x] = src[(size_t)sy * w + sx];
        }
    }
}
