/* conv2d, conv_transpose2d, max_pool2d and adaptive_avg_pool2d against brute-force double loops
 * written here (odd sizes, stride, padding, dilation, groups incl. depthwise, stride > kernel,
 * 1x1 images, batches, the im2col row tiling) plus hand-checked cases. */
#include <string.h>

#include "core/ops_internal.h"
#include "saa/tensor.h"
#include "test.h"

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static float frand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}
static float *rand_buf(int64_t n)
{
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    for (int64_t i = 0; i < n; i++) p[i] = frand();
    return p;
}

typedef struct {
    int64_t N, C, H, W, O, KH, KW;
    saa_conv_params p;
    int bias;
} conv_case;

static int run_conv_case(conv_case t)
{
    int64_t G = t.p.groups, Cg = t.C / G, Og = t.O / G;
    int64_t OH = (t.H + 2 * t.p.pad_h - t.p.dil_h * (t.KH - 1) - 1) / t.p.stride_h + 1;
    int64_t OW = (t.W + 2 * t.p.pad_w - t.p.dil_w * (t.KW - 1) - 1) / t.p.stride_w + 1;
    CHECK(saa_conv_out_size(t.H, (int)t.KH, t.p.stride_h, t.p.pad_h, t.p.dil_h) == OH);
    CHECK(saa_conv_out_size(t.W, (int)t.KW, t.p.stride_w, t.p.pad_w, t.p.dil_w) == OW);
    float *x = rand_buf(t.N * t.C * t.H * t.W), *w = rand_buf(t.O * Cg * t.KH * t.KW), *b = rand_buf(t.O);
    int64_t ny = t.N * t.O * OH * OW;
    float *y = rand_buf(ny + 1); /* garbage must be overwritten; one guard element */
    float guard = y[ny];
    saa_conv2d(x, t.N, t.C, t.H, t.W, w, t.O, t.KH, t.KW, t.bias ? b : NULL, t.p, y);
    double err = 0;
    for (int64_t n = 0; n < t.N; n++)
        for (int64_t o = 0; o < t.O; o++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    double s = t.bias ? b[o] : 0;
                    int64_t g = o / Og;
                    for (int64_t c = 0; c < Cg; c++)
                        for (int64_t kh = 0; kh < t.KH; kh++)
                            for (int64_t kw = 0; kw < t.KW; kw++) {
                                int64_t ih = oh * t.p.stride_h - t.p.pad_h + kh * t.p.dil_h;
                                int64_t iw = ow * t.p.stride_w - t.p.pad_w + kw * t.p.dil_w;
                                if (ih < 0 || ih >= t.H || iw < 0 || iw >= t.W) continue;
                                s += (double)x[((n * t.C + g * Cg + c) * t.H + ih) * t.W + iw] *
                                     w[((o * Cg + c) * t.KH + kh) * t.KW + kw];
                            }
                    double d = fabs(y[((n * t.O + o) * OH + oh) * OW + ow] - s);
                    if (!(d <= err)) err = d;
                }
    int ok = err < 2e-5 && y[ny] == guard;
    if (!ok)
        fprintf(stderr, "conv N%ld C%ld H%ld W%ld O%ld k%ldx%ld s%d,%d p%d,%d d%d,%d g%d: err %g\n", (long)t.N,
                (long)t.C, (long)t.H, (long)t.W, (long)t.O, (long)t.KH, (long)t.KW, t.p.stride_h, t.p.stride_w,
                t.p.pad_h, t.p.pad_w, t.p.dil_h, t.p.dil_w, t.p.groups, err);
    free(x), free(w), free(b), free(y);
    return ok;
}

#define P(sh, sw, ph, pw, dh, dw, g) ((saa_conv_params){sh, sw, ph, pw, dh, dw, g})

static void test_conv2d(void)
{
    /* hand-checked: 3x3 image 1..9, 2x2 kernel of ones, bias 1 -> [[13, 17], [25, 29]] */
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[4] = {1, 1, 1, 1}, b[1] = {1}, y[4];
    saa_conv2d(x, 1, 1, 3, 3, w, 1, 2, 2, b, P(1, 1, 0, 0, 1, 1, 1), y);
    CHECK(y[0] == 13 && y[1] == 17 && y[2] == 25 && y[3] == 29);
    /* padding 1, stride 2, no bias: windows {1}, {2,3}, {4,7}, {5,6,8,9} */
    saa_conv2d(x, 1, 1, 3, 3, w, 1, 2, 2, NULL, P(2, 2, 1, 1, 1, 1, 1), y);
    CHECK(y[0] == 1 && y[1] == 5 && y[2] == 11 && y[3] == 28);

    conv_case cases[] = {
        {1, 8, 7, 9, 6, 1, 1, P(1, 1, 0, 0, 1, 1, 1), 1},    /* 1x1 direct GEMM */
        {2, 8, 5, 6, 4, 1, 1, P(1, 1, 0, 0, 1, 1, 2), 0},    /* 1x1 direct, groups, batch */
        {1, 6, 7, 5, 4, 1, 1, P(2, 2, 0, 0, 1, 1, 1), 1},    /* 1x1 stride 2 (im2col) */
        {1, 3, 11, 13, 5, 3, 3, P(1, 1, 1, 1, 1, 1, 1), 1},  /* 3x3 same */
        {2, 4, 13, 10, 6, 3, 3, P(2, 2, 1, 1, 1, 1, 1), 1},  /* stride 2, odd sizes */
        {1, 3, 12, 11, 4, 3, 3, P(1, 1, 2, 2, 2, 2, 1), 1},  /* dilation 2 */
        {1, 2, 14, 15, 3, 3, 3, P(2, 1, 3, 1, 3, 2, 1), 0},  /* mixed stride/pad/dilation */
        {1, 6, 9, 8, 9, 3, 3, P(1, 1, 1, 1, 1, 1, 3), 1},    /* groups 3 */
        {2, 5, 9, 7, 5, 3, 3, P(1, 1, 1, 1, 1, 1, 5), 1},    /* depthwise */
        {1, 4, 8, 9, 4, 5, 5, P(2, 2, 2, 2, 1, 1, 4), 0},    /* depthwise 5x5 stride 2 */
        {1, 3, 7, 8, 6, 3, 3, P(1, 1, 1, 1, 1, 1, 3), 1},    /* depth multiplier 2 */
        {1, 3, 10, 11, 4, 2, 2, P(3, 3, 0, 0, 1, 1, 1), 1},  /* stride > kernel */
        {1, 3, 16, 16, 8, 4, 4, P(4, 4, 0, 0, 1, 1, 1), 1},  /* patch embedding */
        {1, 5, 1, 1, 3, 3, 3, P(1, 1, 1, 1, 1, 1, 1), 1},    /* 1x1 image, 3x3 pad 1 */
        {1, 5, 1, 1, 3, 1, 1, P(1, 1, 0, 0, 1, 1, 1), 1},    /* 1x1 image, 1x1 conv */
        {1, 3, 9, 10, 2, 3, 2, P(1, 2, 1, 0, 1, 1, 1), 1},   /* non-square kernel */
        {1, 2, 6, 6, 3, 7, 7, P(2, 2, 3, 3, 1, 1, 1), 1},    /* kernel larger than image */
        {3, 4, 5, 5, 2, 3, 3, P(1, 1, 0, 0, 1, 1, 2), 1},    /* batch 3, groups, valid */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) CHECK(run_conv_case(cases[i]));

    /* row tiling of the im2col buffer: limit so a tile holds 1, 2 and 3 output rows */
    size_t saved = saa_conv_im2col_limit_bytes;
    conv_case big = {2, 3, 13, 11, 5, 3, 3, P(1, 1, 1, 1, 1, 1, 1), 1};
    size_t row_bytes = (size_t)(3 * 3 * 3) * 11 * sizeof(float);
    for (size_t rows = 1; rows <= 3; rows++) {
        saa_conv_im2col_limit_bytes = row_bytes * rows + 7;
        CHECK(run_conv_case(big));
    }
    saa_conv_im2col_limit_bytes = 1; /* less than one row: still one row at a time */
    conv_case grouped = {1, 4, 9, 7, 4, 3, 3, P(2, 1, 1, 1, 1, 1, 2), 1};
    CHECK(run_conv_case(grouped));
    /* the unbuffered direct loops (low-memory fallback) on every case */
    saa_conv_im2col_limit_bytes = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) CHECK(run_conv_case(cases[i]));
    saa_conv_im2col_limit_bytes = saved;
}

static int run_convt_case(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t K, int stride, int pad,
                          int bias)
{
    int64_t OH = (H - 1) * stride - 2 * pad + K, OW = (W - 1) * stride - 2 * pad + K;
    float *x = rand_buf(N * C * H * W), *w = rand_buf(C * O * K * K), *b = rand_buf(O);
    int64_t ny = N * O * OH * OW;
    float *y = rand_buf(ny + 1);
    float guard = y[ny];
    double *ref = calloc((size_t)ny, sizeof *ref);
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < O; o++) {
            for (int64_t i = 0; i < OH * OW; i++) ref[(n * O + o) * OH * OW + i] = bias ? b[o] : 0;
            for (int64_t c = 0; c < C; c++)
                for (int64_t ih = 0; ih < H; ih++)
                    for (int64_t iw = 0; iw < W; iw++)
                        for (int64_t kh = 0; kh < K; kh++)
                            for (int64_t kw = 0; kw < K; kw++) {
                                int64_t oh = ih * stride - pad + kh, ow = iw * stride - pad + kw;
                                if (oh < 0 || oh >= OH || ow < 0 || ow >= OW) continue;
                                ref[((n * O + o) * OH + oh) * OW + ow] +=
                                    (double)x[((n * C + c) * H + ih) * W + iw] * w[((c * O + o) * K + kh) * K + kw];
                            }
        }
    saa_conv_transpose2d(x, N, C, H, W, w, O, K, K, bias ? b : NULL, stride, pad, y);
    double err = 0;
    for (int64_t i = 0; i < ny; i++) {
        double d = fabs(y[i] - ref[i]);
        if (!(d <= err)) err = d;
    }
    int ok = err < 2e-5 && y[ny] == guard;
    if (!ok) fprintf(stderr, "conv_transpose C%ld H%ld W%ld O%ld k%ld s%d p%d: err %g\n", (long)C, (long)H, (long)W,
                     (long)O, (long)K, stride, pad, err);
    free(x), free(w), free(b), free(y), free(ref);
    return ok;
}

static void test_conv_transpose2d(void)
{
    /* hand-checked: 1 channel 2x2 input [1 2; 3 4], kernel 2x2 ones, stride 2 -> each value becomes
     * a 2x2 block; stride 1 -> overlapping sums */
    float x[4] = {1, 2, 3, 4}, w[4] = {1, 1, 1, 1}, y[16];
    saa_conv_transpose2d(x, 1, 1, 2, 2, w, 1, 2, 2, NULL, 2, 0, y);
    const float e2[16] = {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4};
    CHECK(memcmp(y, e2, sizeof e2) == 0);
    saa_conv_transpose2d(x, 1, 1, 2, 2, w, 1, 2, 2, NULL, 1, 0, y);
    const float e1[9] = {1, 3, 2, 4, 10, 6, 3, 7, 4};
    CHECK(memcmp(y, e1, sizeof e1) == 0);

    CHECK(run_convt_case(1, 8, 5, 7, 4, 2, 2, 0, 1)); /* SAM output upscaling */
    CHECK(run_convt_case(2, 3, 4, 5, 2, 3, 2, 1, 1));
    CHECK(run_convt_case(1, 4, 6, 3, 3, 4, 2, 1, 0));
    CHECK(run_convt_case(1, 2, 5, 5, 3, 3, 1, 0, 1));
    CHECK(run_convt_case(1, 3, 3, 4, 2, 2, 3, 0, 1)); /* stride > kernel: gaps stay bias */
    CHECK(run_convt_case(1, 5, 1, 1, 2, 3, 2, 1, 1)); /* 1x1 input */
}

static void test_max_pool(void)
{
    /* hand-checked: 4x4 0..15, k2 s2 -> [5 7 13 15]; then negated, k3 s2 p1 */
    float x[16], y[4];
    for (int i = 0; i < 16; i++) x[i] = (float)i;
    saa_max_pool2d(x, 1, 4, 4, 2, 2, 0, y);
    CHECK(y[0] == 5 && y[1] == 7 && y[2] == 13 && y[3] == 15);
    for (int i = 0; i < 16; i++) x[i] = -(float)i; /* all negative: padding must not win */
    saa_max_pool2d(x, 1, 4, 4, 3, 2, 1, y);
    CHECK(y[0] == 0 && y[1] == -1 && y[2] == -4 && y[3] == -5);
    x[5] = NAN;
    saa_max_pool2d(x, 1, 4, 4, 3, 2, 1, y);
    CHECK(isnan(y[0]) && isnan(y[1]) && isnan(y[2]) && isnan(y[3]));

    const int64_t C = 3, H = 13, W = 10;
    int ks[] = {3, 2, 3, 1}, ss[] = {2, 2, 1, 3}, ps[] = {1, 0, 1, 0};
    float *in = rand_buf(C * H * W), *out = malloc(sizeof(float) * C * H * W);
    for (int t = 0; t < 4; t++) {
        int k = ks[t], s = ss[t], p = ps[t];
        int64_t OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
        saa_max_pool2d(in, C, H, W, k, s, p, out);
        int ok = 1;
        for (int64_t c = 0; c < C; c++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    float m = -INFINITY;
                    for (int64_t ih = oh * s - p; ih < oh * s - p + k; ih++)
                        for (int64_t iw = ow * s - p; iw < ow * s - p + k; iw++)
                            if (ih >= 0 && ih < H && iw >= 0 && iw < W && in[(c * H + ih) * W + iw] > m)
                                m = in[(c * H + ih) * W + iw];
                    ok &= out[(c * OH + oh) * OW + ow] == m;
                }
        CHECK(ok);
    }
    free(in), free(out);
}

static void test_adaptive_avg_pool(void)
{
    /* hand-checked: 1x5 row [1 2 3 4 5] -> 3 outputs: windows [0,2) [1,4) [3,5) -> 1.5 3 4.5 */
    float x[5] = {1, 2, 3, 4, 5}, y[3];
    saa_adaptive_avg_pool2d(x, 1, 1, 5, 1, 3, y);
    CHECK(y[0] == 1.5f && y[1] == 3.0f && y[2] == 4.5f);
    saa_adaptive_avg_pool2d(x, 1, 1, 5, 1, 1, y); /* global average */
    CHECK(y[0] == 3.0f);

    const int64_t C = 2, H = 11, W = 7;
    int64_t outs[][2] = {{1, 1}, {3, 2}, {11, 7}, {4, 5}, {13, 9}};
    float *in = rand_buf(C * H * W), *out = malloc(sizeof(float) * C * 13 * 9);
    for (int t = 0; t < 5; t++) {
        int64_t OH = outs[t][0], OW = outs[t][1];
        saa_adaptive_avg_pool2d(in, C, H, W, OH, OW, out);
        double err = 0;
        for (int64_t c = 0; c < C; c++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    int64_t h0 = (int64_t)floor((double)oh * H / OH), h1 = (int64_t)ceil((double)(oh + 1) * H / OH);
                    int64_t w0 = (int64_t)floor((double)ow * W / OW), w1 = (int64_t)ceil((double)(ow + 1) * W / OW);
                    double s = 0;
                    for (int64_t ih = h0; ih < h1; ih++)
                        for (int64_t iw = w0; iw < w1; iw++) s += in[(c * H + ih) * W + iw];
                    s /= (double)((h1 - h0) * (w1 - w0));
                    err = fmax(err, fabs(out[(c * OH + oh) * OW + ow] - s));
                }
        CHECK(err < 1e-6);
    }
    free(in), free(out);
}

int main(void)
{
    saa_threads_init();
    test_conv2d();
    test_conv_transpose2d();
    test_max_pool();
    test_adaptive_avg_pool();
    TEST_MAIN_END();
}
