/* max_pool2d and adaptive_avg_pool2d on one image x[C,H,W], torch CPU semantics. */
#include <math.h>

#include "saa/tensor.h"

/* torch max_pool2d (dilation 1, floor mode): padding acts as -inf; NaN propagates. */
void saa_max_pool2d(const float *x, int64_t C, int64_t H, int64_t W, int k, int stride, int pad, float *y)
{
    int64_t OH = (H + 2 * (int64_t)pad - k) / stride + 1, OW = (W + 2 * (int64_t)pad - k) / stride + 1;
    if (OH <= 0 || OW <= 0) return;
#pragma omp parallel for if (C * OH * OW * k * k > 65536) schedule(static)
    for (int64_t c = 0; c < C; c++) {
        const float *xc = x + c * H * W;
        float *yc = y + c * OH * OW;
        for (int64_t oh = 0; oh < OH; oh++) {
            int64_t h0 = oh * stride - pad, h1 = h0 + k;
            if (h0 < 0) h0 = 0;
            if (h1 > H) h1 = H;
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = ow * stride - pad, w1 = w0 + k;
                if (w0 < 0) w0 = 0;
                if (w1 > W) w1 = W;
                float m = -INFINITY;
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) {
                        float v = xc[ih * W + iw];
                        if (v > m || isnan(v)) m = v;
                    }
                yc[oh * OW + ow] = m;
            }
        }
    }
}

/* mirrors aten/src/ATen/native/cpu/AdaptiveAvgPoolKernel.cpp: window [floor(o*in/out),
 * ceil((o+1)*in/out)), float sum in row-major order, then sum / kh / kw. */
void saa_adaptive_avg_pool2d(const float *x, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW, float *y)
{
#pragma omp parallel for if (C * H * W > 65536) schedule(static)
    for (int64_t c = 0; c < C; c++) {
        const float *xc = x + c * H * W;
        float *yc = y + c * OH * OW;
        for (int64_t oh = 0; oh < OH; oh++) {
            int64_t h0 = (oh * H) / OH, h1 = ((oh + 1) * H + OH - 1) / OH;
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = (ow * W) / OW, w1 = ((ow + 1) * W + OW - 1) / OW;
                float s = 0.0f;
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) s += xc[ih * W + iw];
                yc[oh * OW + ow] = s / (float)(h1 - h0) / (float)(w1 - w0);
            }
        }
    }
}
