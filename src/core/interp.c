/* F.interpolate (bilinear, linear, nearest) and grid_sample, reproducing PyTorch 1.13's CPU
 * kernels operation by operation (see golden/sam_tiny README quirks M2 and E6). */
#include <math.h>
#include <stdlib.h>

#include "core/vmath.h"
#include "saa/tensor.h"

typedef struct {
    int64_t i0, i1;
    float l0, l1;
} lin_coef;

/* mirrors aten/src/ATen/native/UpSample.h area_pixel_compute_scale + compute_source_index_and_lambda:
 * scale in float32 ((in-1)/(out-1) with align_corners), source index in double, lambdas in float. */
static lin_coef linear_coef(int64_t in, int64_t out, int align_corners, float scale, int64_t d)
{
    lin_coef c;
    if (in == out) { /* torch copies: scale factor 1 */
        c.i0 = c.i1 = d;
        c.l0 = 1.0f;
        c.l1 = 0.0f;
        return c;
    }
    double src = align_corners ? (double)scale * (double)d : (double)scale * ((double)d + 0.5) - 0.5;
    if (!align_corners && src < 0.0) src = 0.0;
    c.i0 = (int64_t)src;
    if (c.i0 > in - 1) c.i0 = in - 1; /* only reachable through rounding of scale */
    c.i1 = c.i0 + (c.i0 < in - 1 ? 1 : 0);
    double l = src - (double)c.i0;
    l = l < 0.0 ? 0.0 : (l > 1.0 ? 1.0 : l);
    c.l1 = (float)l;
    c.l0 = 1.0f - c.l1;
    return c;
}

static float linear_scale(int64_t in, int64_t out, int align_corners)
{
    if (align_corners) return out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
    return (float)in / (float)out;
}

/* One output row from input rows r0, r1 (cloned so that fmaf is an instruction, not a libm call). */
SAA_SIMD_CLONES static void bilinear_row(const float *r0, const float *r1, const lin_coef *cw, lin_coef ch,
                                         int64_t out_w, float *yr)
{
    for (int64_t ow = 0; ow < out_w; ow++) {
        const lin_coef *k = &cw[ow];
        float t0 = fmaf(r0[k->i0], k->l0, r0[k->i1] * k->l1);
        float t1 = fmaf(r1[k->i0], k->l0, r1[k->i1] * k->l1);
        yr[ow] = fmaf(t0, ch.l0, t1 * ch.l1);
    }
}

/* Width first, then height, each as fmaf(a, l0, b * l1) (the FMA contraction of torch's build). */
void saa_interp_bilinear_window(const float *x, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                int align_corners, int64_t out_h, int64_t out_w, float *y)
{
    if (C <= 0 || out_h <= 0 || out_w <= 0) return;
    lin_coef *cw = malloc((size_t)(out_w + out_h) * sizeof *cw);
    float sw = linear_scale(W, OW, align_corners), sh = linear_scale(H, OH, align_corners);
    if (!cw) { /* low memory: compute per element (same values, slower) */
        for (int64_t r = 0; r < C * out_h; r++) {
            lin_coef ch = linear_coef(H, OH, align_corners, sh, r % out_h);
            const float *r0 = x + (r / out_h) * H * W + ch.i0 * W, *r1 = x + (r / out_h) * H * W + ch.i1 * W;
            for (int64_t ow = 0; ow < out_w; ow++) {
                lin_coef c = linear_coef(W, OW, align_corners, sw, ow);
                float t0 = fmaf(r0[c.i0], c.l0, r0[c.i1] * c.l1), t1 = fmaf(r1[c.i0], c.l0, r1[c.i1] * c.l1);
                y[r * out_w + ow] = fmaf(t0, ch.l0, t1 * ch.l1);
            }
        }
        return;
    }
    lin_coef *chs = cw + out_w;
    for (int64_t d = 0; d < out_w; d++) cw[d] = linear_coef(W, OW, align_corners, sw, d);
    for (int64_t d = 0; d < out_h; d++) chs[d] = linear_coef(H, OH, align_corners, sh, d);
#pragma omp parallel for if (C * out_h * out_w > 65536) schedule(static)
    for (int64_t r = 0; r < C * out_h; r++) {
        int64_t c = r / out_h;
        lin_coef ch = chs[r % out_h];
        bilinear_row(x + c * H * W + ch.i0 * W, x + c * H * W + ch.i1 * W, cw, ch, out_w, y + r * out_w);
    }
    free(cw);
}

void saa_interp_bilinear(const float *x, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                         int align_corners, float *y)
{
    saa_interp_bilinear_window(x, C, H, W, OH, OW, align_corners, OH, OW, y);
}

/* mirrors aten/src/ATen/native/cpu/UpSampleKernel.cpp cpu_upsample_linear_channels_last, the kernel
 * PyTorch 1.13 takes when the input is channels-last contiguous (e.g. any contiguous [N,1,H,W]):
 * same indices and lambdas, weights w00 = l0h * l0w in float, then the four products summed in
 * double (acc_type<float> on CPU) and rounded once. */
void saa_interp_bilinear_cl(const float *x, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                            int align_corners, float *y)
{
    if (C <= 0 || OH <= 0 || OW <= 0) return;
    float sw = linear_scale(W, OW, align_corners), sh = linear_scale(H, OH, align_corners);
#pragma omp parallel for if (C * OH * OW > 65536) schedule(static)
    for (int64_t r = 0; r < C * OH; r++) {
        lin_coef ch = linear_coef(H, OH, align_corners, sh, r % OH);
        const float *r0 = x + (r / OH) * H * W + ch.i0 * W, *r1 = x + (r / OH) * H * W + ch.i1 * W;
        float *yr = y + r * OW;
        for (int64_t ow = 0; ow < OW; ow++) {
            lin_coef k = linear_coef(W, OW, align_corners, sw, ow);
            float w00 = ch.l0 * k.l0, w01 = ch.l0 * k.l1, w10 = ch.l1 * k.l0, w11 = ch.l1 * k.l1;
            double v = (double)r0[k.i0] * w00 + (double)r0[k.i1] * w01 + (double)r1[k.i0] * w10 +
                       (double)r1[k.i1] * w11;
            yr[ow] = (float)v;
        }
    }
}

void saa_interp_linear1d(const float *x, int64_t C, int64_t L, int64_t OL, float *y)
{
    if (C <= 0 || OL <= 0) return;
    float scale = linear_scale(L, OL, 0);
#pragma omp parallel for if (C * OL > 65536) schedule(static)
    for (int64_t c = 0; c < C; c++) {
        const float *xc = x + c * L;
        for (int64_t d = 0; d < OL; d++) {
            lin_coef k = linear_coef(L, OL, 0, scale, d);
            y[c * OL + d] = fmaf(xc[k.i0], k.l0, xc[k.i1] * k.l1);
        }
    }
}

/* mirrors aten/src/ATen/native/UpSample.h nearest_idx: scale = (float)in / out in float32,
 * src = min(floorf(dst * scale), in - 1) (identity when in == out). */
static int64_t nearest_idx(int64_t d, int64_t in, int64_t out)
{
    if (in == out) return d;
    float scale = (float)in / (float)out;
    int64_t s = (int64_t)floorf((float)d * scale);
    return s < in - 1 ? s : in - 1;
}

void saa_interp_nearest(const float *x, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW, float *y)
{
    if (C <= 0 || OH <= 0 || OW <= 0) return;
#pragma omp parallel for if (C * OH * OW > 65536) schedule(static)
    for (int64_t r = 0; r < C * OH; r++) {
        const float *xr = x + (r / OH) * H * W + nearest_idx(r % OH, H, OH) * W;
        float *yr = y + r * OW;
        for (int64_t ow = 0; ow < OW; ow++) yr[ow] = xr[nearest_idx(ow, W, OW)];
    }
}

/* mirrors aten/src/ATen/native/cpu/GridSamplerKernel.cpp (bilinear, zeros, align_corners=False),
 * the vectorised CPU path: x = (gx + 1) * (W / 2) - 0.5 in float (the same point as
 * ((gx + 1) * W - 1) / 2), corner weights from the distances to the four sides, out-of-image corners
 * contribute 0, sample = nw*v_nw + ne*v_ne + sw*v_sw + se*v_se summed in that order. */
void saa_grid_sample_accum(const float *value, int64_t H, int64_t W, int64_t C, float gx, float gy,
                           float weight, float *out)
{
    float x = (gx + 1.0f) * ((float)W / 2.0f) - 0.5f;
    float y = (gy + 1.0f) * ((float)H / 2.0f) - 0.5f;
    if (!(x > -2.0f && x < (float)W + 1.0f && y > -2.0f && y < (float)H + 1.0f)) {
        /* every corner is outside: torch adds 0 * weight-of-corner, i.e. 0 (NaN for a NaN grid) */
        if (isnan(x) || isnan(y))
            for (int64_t c = 0; c < C; c++) out[c] += weight * NAN;
        return;
    }
    float xw = floorf(x), yn = floorf(y);
    float w = x - xw, e = 1.0f - w, n = y - yn, s = 1.0f - n;
    float nw = s * e, ne = s * w, sw = n * e, se = n * w;
    int64_t ix = (int64_t)xw, iy = (int64_t)yn;
    int in_w = ix >= 0 && ix < W, in_e = ix + 1 >= 0 && ix + 1 < W;
    int in_n = iy >= 0 && iy < H, in_s = iy + 1 >= 0 && iy + 1 < H;
    int64_t onw = (iy * W + ix) * C, one = onw + C, osw = onw + W * C, ose = osw + C;
    for (int64_t c = 0; c < C; c++) {
        float vnw = in_n && in_w ? value[onw + c] : 0.0f, vne = in_n && in_e ? value[one + c] : 0.0f;
        float vsw = in_s && in_w ? value[osw + c] : 0.0f, vse = in_s && in_e ? value[ose + c] : 0.0f;
        float sample = vnw * nw + vne * ne + vsw * sw + vse * se;
        out[c] += weight * sample;
    }
}
