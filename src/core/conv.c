/* conv2d (im2col + sgemm per group, direct GEMM for 1x1 stride-1 convs, direct loops for depthwise)
 * and conv_transpose2d (sgemm + col2im), torch semantics (zero padding, cross-correlation). */
#include <stdlib.h>
#include <string.h>

#include "core/ops_internal.h"
#include "saa/tensor.h"

/* 16 MB keeps the buffer below glibc's largest mmap threshold (32 MB), so after the first call it
 * is recycled from the heap instead of being mapped and page-faulted again on every conv. */
size_t saa_conv_im2col_limit_bytes = (size_t)16 << 20;

int64_t saa_conv_out_size(int64_t in, int k, int stride, int pad, int dil)
{
    return (in + 2 * (int64_t)pad - (int64_t)dil * (k - 1) - 1) / stride + 1;
}

/* y[o, :] = b[o] for every output channel of one image (or 0 if b is NULL). */
static void fill_bias(float *y, int64_t O, int64_t plane, const float *b)
{
#pragma omp parallel for if (O * plane > 65536) schedule(static)
    for (int64_t o = 0; o < O; o++) {
        float v = b ? b[o] : 0.0f;
        float *yo = y + o * plane;
        for (int64_t i = 0; i < plane; i++) yo[i] = v;
    }
}

/* Output columns ow with 0 <= ow*stride + off < W, as [*lo, *hi) within [0, OW). */
static void valid_cols(int64_t off, int64_t stride, int64_t W, int64_t OW, int64_t *lo, int64_t *hi)
{
    int64_t l = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int64_t h = W - off <= 0 ? 0 : (W - off + stride - 1) / stride;
    if (h > OW) h = OW;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* Columns for output rows [oh0, oh0 + nrows) of one group: col[(c*KH + kh)*KW + kw][r*OW + ow]
 * = x[c, oh*sh - ph + kh*dh, ow*sw - pw + kw*dw] (0 outside the image). The valid ow range of each
 * (kw) is computed once, so the inner loop is a plain copy (memcpy for stride 1). */
static void im2col(const float *x, int64_t Cg, int64_t H, int64_t W, int64_t KH, int64_t KW, saa_conv_params p,
                   int64_t OW, int64_t oh0, int64_t nrows, float *col)
{
    int64_t Kc = Cg * KH * KW, ncols = nrows * OW;
#pragma omp parallel for if (Kc * ncols > 65536) schedule(static)
    for (int64_t row = 0; row < Kc; row++) {
        int64_t c = row / (KH * KW), kh = (row / KW) % KH, kw = row % KW;
        const float *xc = x + c * H * W;
        float *dst = col + row * ncols;
        int64_t off = kw * p.dil_w - p.pad_w, sw = p.stride_w, ow_lo, ow_hi;
        valid_cols(off, sw, W, OW, &ow_lo, &ow_hi);
        for (int64_t r = 0; r < nrows; r++) {
            int64_t ih = (oh0 + r) * p.stride_h - p.pad_h + kh * p.dil_h;
            float *d = dst + r * OW;
            if (ih < 0 || ih >= H) {
                memset(d, 0, (size_t)OW * sizeof *d);
                continue;
            }
            int64_t base = ih * W + off; /* element ow is xc[base + ow * sw] */
            if (ow_lo > 0) memset(d, 0, (size_t)ow_lo * sizeof *d);
            if (sw == 1) {
                if (ow_hi > ow_lo) memcpy(d + ow_lo, xc + base + ow_lo, (size_t)(ow_hi - ow_lo) * sizeof *d);
            } else {
                for (int64_t ow = ow_lo; ow < ow_hi; ow++) d[ow] = xc[base + ow * sw];
            }
            if (ow_hi < OW) memset(d + ow_hi, 0, (size_t)(OW - ow_hi) * sizeof *d);
        }
    }
}

/* Plain loops without a buffer: used for depthwise convs (one KHxKW filter per channel, where
 * im2col would only add copies) and as the low-memory fallback. Adds into y (bias pre-filled), one
 * filter tap at a time over the valid part of each output row (vectorisable for stride 1). */
static void conv_direct(const float *x, int64_t C, int64_t H, int64_t W, const float *w, int64_t O,
                        int64_t KH, int64_t KW, saa_conv_params p, int64_t OH, int64_t OW, float *y)
{
    int64_t Cg = C / p.groups, Og = O / p.groups, sw = p.stride_w;
#pragma omp parallel for if (O * OH * OW * Cg * KH * KW > 65536) schedule(static)
    for (int64_t o = 0; o < O; o++) {
        const float *xg = x + (o / Og) * Cg * H * W, *wo = w + o * Cg * KH * KW;
        float *yo = y + o * OH * OW;
        for (int64_t c = 0; c < Cg; c++)
            for (int64_t kh = 0; kh < KH; kh++)
                for (int64_t kw = 0; kw < KW; kw++) {
                    float wv = wo[(c * KH + kh) * KW + kw];
                    int64_t off = kw * p.dil_w - p.pad_w, lo, hi;
                    valid_cols(off, sw, W, OW, &lo, &hi);
                    for (int64_t oh = 0; oh < OH; oh++) {
                        int64_t ih = oh * p.stride_h - p.pad_h + kh * p.dil_h;
                        if (ih < 0 || ih >= H) continue;
                        const float *xr = xg + c * H * W + ih * W;
                        float *yr = yo + oh * OW;
                        if (hi <= lo) break;
                        if (sw == 1) {
                            /* xr[ow + off] for ow in [lo, hi) lies inside the row */
                            const float *src = xr + (lo + off);
                            float *dst = yr + lo;
                            for (int64_t i = 0; i < hi - lo; i++) dst[i] += wv * src[i];
                        } else {
                            for (int64_t ow = lo; ow < hi; ow++) yr[ow] += wv * xr[ow * sw + off];
                        }
                    }
                }
    }
}

void saa_conv2d(const float *x, int64_t N, int64_t C, int64_t H, int64_t W, const float *w, int64_t O,
                int64_t KH, int64_t KW, const float *b, saa_conv_params p, float *y)
{
    if (p.groups < 1) p.groups = 1;
    if (p.dil_h < 1) p.dil_h = 1;
    if (p.dil_w < 1) p.dil_w = 1;
    int64_t OH = saa_conv_out_size(H, (int)KH, p.stride_h, p.pad_h, p.dil_h);
    int64_t OW = saa_conv_out_size(W, (int)KW, p.stride_w, p.pad_w, p.dil_w);
    if (N <= 0 || O <= 0 || OH <= 0 || OW <= 0) return;
    int64_t G = p.groups, Cg = C / G, Og = O / G, Kc = Cg * KH * KW, plane = OH * OW;
    int direct = KH == 1 && KW == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_h == 0 && p.pad_w == 0;
    int depthwise = Cg == 1 && Og == 1;
    int no_buffer = saa_conv_im2col_limit_bytes == 0; /* test knob: direct loops only */

    float *col = NULL;
    int64_t tile_rows = OH;
    if (!direct && !depthwise && !no_buffer) {
        size_t row_bytes = (size_t)Kc * (size_t)OW * sizeof(float);
        if (row_bytes * (size_t)OH > saa_conv_im2col_limit_bytes) {
            tile_rows = (int64_t)(saa_conv_im2col_limit_bytes / row_bytes);
            if (tile_rows < 1) tile_rows = 1;
        }
        col = malloc(row_bytes * (size_t)tile_rows);
        if (!col) { /* low memory: one output row at a time, else the unbuffered loops */
            tile_rows = 1;
            col = malloc(row_bytes);
        }
    }

    for (int64_t n = 0; n < N; n++) {
        const float *xn = x + n * C * H * W;
        float *yn = y + n * O * plane;
        fill_bias(yn, O, plane, b);
        if (depthwise || (!direct && !col)) { /* also the low-memory / no_buffer path */
            conv_direct(xn, C, H, W, w, O, KH, KW, p, OH, OW, yn);
            continue;
        }
        for (int64_t g = 0; g < G; g++) {
            const float *xg = xn + g * Cg * H * W, *wg = w + g * Og * Kc;
            float *yg = yn + g * Og * plane;
            if (direct) {
                saa_gemm(0, 0, Og, plane, Cg, 1.0f, wg, Kc, xg, plane, 1.0f, yg, plane);
                continue;
            }
            for (int64_t oh0 = 0; oh0 < OH; oh0 += tile_rows) {
                int64_t nrows = OH - oh0 < tile_rows ? OH - oh0 : tile_rows;
                im2col(xg, Cg, H, W, KH, KW, p, OW, oh0, nrows, col);
                saa_gemm(0, 0, Og, nrows * OW, Kc, 1.0f, wg, Kc, col, nrows * OW, 1.0f, yg + oh0 * OW, plane);
            }
        }
    }
    free(col);
}

/* mirrors torch slow_conv_transpose2d: columns = W^T x (W viewed as [C, O*KH*KW]), col2im into a
 * zeroed output, then + bias. If the column buffer cannot be allocated, the same sums are
 * scattered directly from x (slower, no buffer). */
void saa_conv_transpose2d(const float *x, int64_t N, int64_t C, int64_t H, int64_t W, const float *w,
                          int64_t O, int64_t KH, int64_t KW, const float *b, int stride, int pad, float *y)
{
    int64_t OH = (H - 1) * stride - 2 * (int64_t)pad + KH, OW = (W - 1) * stride - 2 * (int64_t)pad + KW;
    if (N <= 0 || O <= 0 || OH <= 0 || OW <= 0) return;
    int64_t HW = H * W, Kc = O * KH * KW;
    float *col = malloc((size_t)Kc * (size_t)HW * sizeof *col);
    for (int64_t n = 0; n < N; n++) {
        const float *xn = x + n * C * HW;
        float *yn = y + n * O * OH * OW;
        if (col) saa_gemm(1, 0, Kc, HW, C, 1.0f, w, Kc, xn, HW, 0.0f, col, HW);
#pragma omp parallel for if (Kc * HW > 65536) schedule(static)
        for (int64_t o = 0; o < O; o++) {
            float *yo = yn + o * OH * OW;
            memset(yo, 0, (size_t)(OH * OW) * sizeof *yo);
            for (int64_t kh = 0; kh < KH; kh++)
                for (int64_t kw = 0; kw < KW; kw++) {
                    const float *src = col ? col + ((o * KH + kh) * KW + kw) * HW : NULL;
                    for (int64_t ih = 0; ih < H; ih++) {
                        int64_t oh = ih * stride - pad + kh;
                        if (oh < 0 || oh >= OH) continue;
                        for (int64_t iw = 0; iw < W; iw++) {
                            int64_t ow = iw * stride - pad + kw;
                            if (ow < 0 || ow >= OW) continue;
                            float v;
                            if (src) {
                                v = src[ih * W + iw];
                            } else {
                                v = 0.0f;
                                for (int64_t c = 0; c < C; c++)
                                    v += w[c * Kc + (o * KH + kh) * KW + kw] * xn[c * HW + ih * W + iw];
                            }
                            yo[oh * OW + ow] += v;
                        }
                    }
                }
            if (b)
                for (int64_t i = 0; i < OH * OW; i++) yo[i] += b[o];
        }
    }
    free(col);
}
