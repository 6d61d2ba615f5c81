/* GEMM, linear, normalisation, activations, softmax and attention against brute-force double
 * references written here, plus hand-checked values. */
#include <string.h>

#include "core/vmath.h"
#include "saa/tensor.h"
#include "test.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float frand(void) /* uniform in [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}
static float *rand_buf(int64_t n, float scale, float offset)
{
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    for (int64_t i = 0; i < n; i++) p[i] = frand() * scale + offset;
    return p;
}

/* max |got - ref| / (1 + |ref|) over n values */
static double max_err(const float *got, const double *ref, int64_t n)
{
    double e = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(got[i] - ref[i]) / (1.0 + fabs(ref[i]));
        if (!(d <= e)) e = d; /* NaN propagates */
    }
    return e;
}

static void ref_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, double alpha, const float *A,
                     int64_t lda, const float *B, int64_t ldb, double beta, const float *C0, int64_t ldc,
                     double *out)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) {
                double a = ta ? A[k * lda + i] : A[i * lda + k];
                double b = tb ? B[j * ldb + k] : B[k * ldb + j];
                s += a * b;
            }
            out[i * N + j] = alpha * s + (beta != 0 ? beta * C0[i * ldc + j] : 0);
        }
}

static void test_gemm(void)
{
    /* hand-checked: [1 2; 3 4] [5 6; 7 8] = [19 22; 43 50] */
    float A[4] = {1, 2, 3, 4}, B[4] = {5, 6, 7, 8}, C[4] = {0};
    saa_gemm(0, 0, 2, 2, 2, 1.0f, A, 2, B, 2, 0.0f, C, 2);
    CHECK(C[0] == 19 && C[1] == 22 && C[2] == 43 && C[3] == 50);
    saa_gemm(1, 0, 2, 2, 2, 1.0f, A, 2, B, 2, 0.0f, C, 2); /* A^T B = [26 30; 38 44] */
    CHECK(C[0] == 26 && C[1] == 30 && C[2] == 38 && C[3] == 44);

    /* all transpose combinations, odd sizes, padded leading dims, alpha/beta */
    const int64_t M = 37, N = 29, K = 53;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
            float *a = rand_buf((ta ? K : M) * lda, 1, 0), *b = rand_buf((tb ? N : K) * ldb, 1, 0);
            float *c = rand_buf(M * ldc, 1, 0), *c0 = malloc(sizeof(float) * M * ldc);
            memcpy(c0, c, sizeof(float) * M * ldc);
            double *ref = malloc(sizeof(double) * M * N);
            ref_gemm(ta, tb, M, N, K, 0.75, a, lda, b, ldb, -0.5, c0, ldc, ref);
            saa_gemm(ta, tb, M, N, K, 0.75f, a, lda, b, ldb, -0.5f, c, ldc);
            double e = 0;
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) {
                    double d = fabs(c[i * ldc + j] - ref[i * N + j]);
                    if (d > e) e = d;
                }
            CHECK(e < 2e-5);
            for (int64_t i = 0; i < M; i++) /* padding columns untouched */
                CHECK(c[i * ldc + N] == c0[i * ldc + N] && c[i * ldc + N + 1] == c0[i * ldc + N + 1]);
            free(a), free(b), free(c), free(c0), free(ref);
        }

    /* batched with strides larger than a matrix */
    const int64_t cnt = 3, m = 5, n = 7, k = 4;
    float *a = rand_buf(cnt * 30, 1, 0), *b = rand_buf(cnt * 40, 1, 0), *c = calloc(cnt * 50, sizeof(float));
    saa_gemm_batched(cnt, 0, 1, m, n, k, 1.0f, a, k, 30, b, k, 40, 0.0f, c, n, 50);
    double ref[35];
    for (int64_t i = 0; i < cnt; i++) {
        ref_gemm(0, 1, m, n, k, 1, a + i * 30, k, b + i * 40, k, 0, NULL, n, ref);
        CHECK(max_err(c + i * 50, ref, m * n) < 1e-6);
        CHECK(c[i * 50 + 35] == 0.0f); /* gap between matrices untouched */
    }
    free(a), free(b), free(c);

    /* gemv: both orientations, padded lda, alpha/beta; the length-0 product leaves beta * y */
    for (int t = 0; t < 2; t++) {
        const int64_t gm = 41, gn = 23, glda = gn + 3;
        float *ga = rand_buf(gm * glda, 1, 0), *gx = rand_buf(t ? gm : gn, 1, 0), *gy = rand_buf(t ? gn : gm, 1, 0);
        int64_t ny = t ? gn : gm, nx = t ? gm : gn;
        double gref[41];
        for (int64_t i = 0; i < ny; i++) {
            double s = 0;
            for (int64_t j = 0; j < nx; j++) s += (double)(t ? ga[j * glda + i] : ga[i * glda + j]) * gx[j];
            gref[i] = 0.75 * s - 0.5 * gy[i];
        }
        saa_gemv(t, gm, gn, 0.75f, ga, glda, gx, -0.5f, gy);
        CHECK(max_err(gy, gref, ny) < 1e-6);
        free(ga), free(gx), free(gy);
    }
    float gy0[2] = {3, 4};
    saa_gemv(0, 2, 0, 1.0f, A, 1, B, 0.5f, gy0);
    CHECK(gy0[0] == 1.5f && gy0[1] == 2.0f);

    /* K = 0: C = beta * C */
    float z[2] = {3, 4};
    saa_gemm(0, 0, 1, 2, 0, 1.0f, A, 1, B, 2, 0.5f, z, 2);
    CHECK(z[0] == 1.5f && z[1] == 2.0f);
}

/* nn.Linear in double: ref[rows, out] = x W^T + b (b may be NULL) */
static void ref_linear(const float *x, int64_t rows, int64_t in, const float *W, const float *b, int64_t out,
                       double *ref)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t o = 0; o < out; o++) {
            double s = b ? b[o] : 0;
            for (int64_t i = 0; i < in; i++) s += (double)x[r * in + i] * W[o * in + i];
            ref[r * out + o] = s;
        }
}

static void test_linear(void)
{
    const int64_t rows = 13, in = 19, out = 11;
    float *x = rand_buf(rows * in, 1, 0), *W = rand_buf(out * in, 1, 0), *b = rand_buf(out, 1, 0);
    float *y = rand_buf(rows * out, 100, 0); /* garbage must be overwritten */
    double ref[13 * 11];
    for (int pass = 0; pass < 2; pass++) {
        const float *bias = pass ? b : NULL;
        ref_linear(x, rows, in, W, bias, out, ref);
        saa_linear(x, rows, in, W, bias, out, y);
        CHECK(max_err(y, ref, rows * out) < 1e-6);
    }
    /* large enough for the parallel bias fill */
    {
        const int64_t R = 301, I = 7, O = 263;
        float *xl = rand_buf(R * I, 1, 0), *Wl = rand_buf(O * I, 1, 0), *bl = rand_buf(O, 1, 0);
        float *yl = rand_buf(R * O, 100, 0);
        double *rl = malloc(sizeof(double) * R * O);
        ref_linear(xl, R, I, Wl, bl, O, rl);
        saa_linear(xl, R, I, Wl, bl, O, yl);
        CHECK(max_err(yl, rl, R * O) < 1e-6);
        free(xl), free(Wl), free(bl), free(yl), free(rl);
    }
    /* split by output columns over 1..3 threads (a partial last 16-column group, more threads than
     * groups), with and without bias */
    {
        const int64_t R = 9, I = 21, O = 37;
        float *xl = rand_buf(R * I, 1, 0), *Wl = rand_buf(O * I, 1, 0), *bl = rand_buf(O, 1, 0);
        float *yl = malloc(sizeof(float) * R * O);
        double *rl = malloc(sizeof(double) * R * O);
        for (int pass = 0; pass < 2; pass++) {
            const float *bias = pass ? bl : NULL;
            ref_linear(xl, R, I, Wl, bias, O, rl);
            for (int nt = 1; nt <= 4; nt++) {
                for (int64_t i = 0; i < R * O; i++) yl[i] = 1e6f; /* garbage must be overwritten */
                saa_linear_cols(xl, R, I, Wl, bias, O, yl, nt);
                CHECK(max_err(yl, rl, R * O) < 1e-6);
            }
        }
        free(xl), free(Wl), free(bl), free(yl), free(rl);
    }
    /* hand-checked: x = [1 2], W = [[1 0], [1 1], [0 -1]], b = [0.5 0 1] -> [1.5 3 -1] */
    float x1[2] = {1, 2}, W1[6] = {1, 0, 1, 1, 0, -1}, b1[3] = {0.5f, 0, 1}, y1[3];
    saa_linear(x1, 1, 2, W1, b1, 3, y1);
    CHECK(y1[0] == 1.5f && y1[1] == 3.0f && y1[2] == -1.0f);
    free(x), free(W), free(b), free(y);
}

static void test_layer_norm(void)
{
    const int64_t rows = 9, dim = 77;
    float *x = rand_buf(rows * dim, 2, 3), *w = rand_buf(dim, 1, 1), *b = rand_buf(dim, 1, 0);
    float *y = malloc(sizeof(float) * rows * dim);
    double *ref = malloc(sizeof(double) * rows * dim);
    for (int variant = 0; variant < 3; variant++) {
        const float *wv = variant == 1 ? NULL : w, *bv = variant == 2 ? NULL : b;
        for (int64_t r = 0; r < rows; r++) {
            double m = 0, v = 0;
            for (int64_t j = 0; j < dim; j++) m += x[r * dim + j];
            m /= dim;
            for (int64_t j = 0; j < dim; j++) v += (x[r * dim + j] - m) * (x[r * dim + j] - m);
            v /= dim;
            for (int64_t j = 0; j < dim; j++)
                ref[r * dim + j] = (x[r * dim + j] - m) / sqrt(v + 1e-5) * (wv ? wv[j] : 1) + (bv ? bv[j] : 0);
        }
        saa_layer_norm(x, rows, dim, wv, bv, 1e-5f, y);
        CHECK(max_err(y, ref, rows * dim) < 5e-6);
    }
    /* in place */
    memcpy(y, x, sizeof(float) * rows * dim);
    saa_layer_norm(y, rows, dim, w, b, 1e-5f, y);
    float *y2 = malloc(sizeof(float) * rows * dim);
    saa_layer_norm(x, rows, dim, w, b, 1e-5f, y2);
    CHECK(memcmp(y, y2, sizeof(float) * rows * dim) == 0);
    /* hand-checked: [1 2 3] -> mean 2, var 2/3: [-1.22474 0 1.22474] (eps 0) */
    float h[3] = {1, 2, 3};
    saa_layer_norm(h, 1, 3, NULL, NULL, 0.0f, h);
    CHECK_NEAR(h[0], -1.224744871, 1e-6);
    CHECK_NEAR(h[1], 0.0, 1e-7);
    CHECK_NEAR(h[2], 1.224744871, 1e-6);
    free(x), free(w), free(b), free(y), free(y2), free(ref);
}

static void test_layer_norm2d(void)
{
    /* HW not a multiple of the internal pixel block (256) */
    const int64_t C = 7, HW = 301;
    float *x = rand_buf(C * HW, 2, -1), *w = rand_buf(C, 1, 1), *b = rand_buf(C, 1, 0);
    float *y = malloc(sizeof(float) * C * HW);
    double *ref = malloc(sizeof(double) * C * HW);
    for (int64_t p = 0; p < HW; p++) {
        double m = 0, v = 0;
        for (int64_t c = 0; c < C; c++) m += x[c * HW + p];
        m /= C;
        for (int64_t c = 0; c < C; c++) v += (x[c * HW + p] - m) * (x[c * HW + p] - m);
        v /= C;
        for (int64_t c = 0; c < C; c++) ref[c * HW + p] = w[c] * (x[c * HW + p] - m) / sqrt(v + 1e-6) + b[c];
    }
    saa_layer_norm2d(x, C, HW, w, b, 1e-6f, y);
    CHECK(max_err(y, ref, C * HW) < 5e-6);
    saa_layer_norm2d(x, C, HW, w, b, 1e-6f, x); /* in place */
    CHECK(memcmp(x, y, sizeof(float) * C * HW) == 0);
    /* 1 pixel, hand-checked: channels [0, 4] -> [-1, 1] * w + b */
    float one[2] = {0, 4}, w2[2] = {2, 3}, b2[2] = {1, -1};
    saa_layer_norm2d(one, 2, 1, w2, b2, 0.0f, one);
    CHECK(one[0] == -1.0f && one[1] == 2.0f);
    free(x), free(w), free(b), free(y), free(ref);
}

static void test_group_norm(void)
{
    const int64_t C = 12, HW = 23;
    for (int64_t G = 1; G <= C; G *= 2) { /* 1, 2, 4, 8 -> use C%G==0 only */
        if (C % G) continue;
        float *x = rand_buf(C * HW, 3, 1), *w = rand_buf(C, 1, 1), *b = rand_buf(C, 1, 0);
        float *y = malloc(sizeof(float) * C * HW);
        double *ref = malloc(sizeof(double) * C * HW);
        int64_t cpg = C / G;
        for (int64_t g = 0; g < G; g++) {
            double m = 0, v = 0;
            int64_t n = cpg * HW;
            for (int64_t i = 0; i < n; i++) m += x[g * n + i];
            m /= n;
            for (int64_t i = 0; i < n; i++) v += (x[g * n + i] - m) * (x[g * n + i] - m);
            v /= n;
            for (int64_t i = 0; i < n; i++) {
                int64_t c = g * cpg + i / HW;
                ref[g * n + i] = (x[g * n + i] - m) / sqrt(v + 1e-5) * w[c] + b[c];
            }
        }
        saa_group_norm(x, C, HW, G, w, b, 1e-5f, y);
        CHECK(max_err(y, ref, C * HW) < 5e-6);
        saa_group_norm(x, C, HW, G, w, b, 1e-5f, x);
        CHECK(memcmp(x, y, sizeof(float) * C * HW) == 0);
        /* no affine parameters: plain (x - mean) / sqrt(var + eps) */
        free(x);
        x = rand_buf(C * HW, 3, 1);
        saa_group_norm(x, C, HW, G, NULL, NULL, 1e-5f, y);
        double e = 0;
        for (int64_t g = 0; g < G; g++) {
            double m = 0, v = 0;
            int64_t n = cpg * HW;
            for (int64_t i = 0; i < n; i++) m += x[g * n + i];
            m /= n;
            for (int64_t i = 0; i < n; i++) v += (x[g * n + i] - m) * (x[g * n + i] - m);
            v /= n;
            for (int64_t i = 0; i < n; i++) e = fmax(e, fabs(y[g * n + i] - (x[g * n + i] - m) / sqrt(v + 1e-5)));
        }
        CHECK(e < 5e-6);
        free(x), free(w), free(b), free(y), free(ref);
    }
}

static void test_batch_norm(void)
{
    const int64_t C = 5, HW = 17;
    float *x = rand_buf(C * HW, 2, 0), *mean = rand_buf(C, 1, 0), *var = rand_buf(C, 0.5f, 1);
    float *w = rand_buf(C, 1, 1), *b = rand_buf(C, 1, 0);
    double ref[5 * 17];
    for (int64_t c = 0; c < C; c++)
        for (int64_t p = 0; p < HW; p++)
            ref[c * HW + p] = (x[c * HW + p] - mean[c]) / sqrt(var[c] + 1e-5) * w[c] + b[c];
    float *y = malloc(sizeof(float) * C * HW);
    memcpy(y, x, sizeof(float) * C * HW);
    saa_batch_norm(y, C, HW, mean, var, w, b, 1e-5f);
    CHECK(max_err(y, ref, C * HW) < 2e-6);

    /* folding into a 1x1 conv (w_conv[O=C, per_out=3]): conv then BN == folded conv */
    const int64_t per = 3;
    float *wc = rand_buf(C * per, 1, 0), *bf = rand_buf(C, 100, 0), in[3] = {0.3f, -1.2f, 0.7f};
    double expect[5];
    for (int64_t o = 0; o < C; o++) {
        double s = 0;
        for (int64_t i = 0; i < per; i++) s += (double)wc[o * per + i] * in[i];
        expect[o] = (s - mean[o]) / sqrt(var[o] + 1e-5) * w[o] + b[o];
    }
    saa_fold_batch_norm(wc, bf, C, per, mean, var, w, b, 1e-5f);
    for (int64_t o = 0; o < C; o++) {
        double s = bf[o];
        for (int64_t i = 0; i < per; i++) s += (double)wc[o * per + i] * in[i];
        CHECK_NEAR(s, expect[o], 1e-5);
    }
    free(x), free(mean), free(var), free(w), free(b), free(y), free(wc), free(bf);
}

/* the vectorisable exp behind softmax/GELU/sigmoid: <= 1 ulp from the correctly rounded value */
static void test_expf(void)
{
    int64_t worst = 0;
    for (float x = -103.0f; x < 88.7f; x += 0.0137f) {
        float y = saa_expf(x), ref = (float)exp((double)x);
        int32_t a, b;
        memcpy(&a, &y, 4);
        memcpy(&b, &ref, 4);
        int64_t d = (int64_t)a - b;
        if (d < 0) d = -d;
        if (d > worst) worst = d;
    }
    CHECK(worst <= 1);
    CHECK(saa_expf(0.0f) == 1.0f);
    CHECK(saa_expf(-INFINITY) == 0.0f);
    CHECK(isinf(saa_expf(INFINITY)) && isinf(saa_expf(100.0f)));
    CHECK(isnan(saa_expf(NAN)));
    CHECK(saa_expf(-200.0f) == 0.0f);
    CHECK(saa_expf(-100.0f) > 0.0f); /* denormal range kept, as Sleef */
    CHECK_NEAR(saa_expf(1.0f), 2.718281828459045, 3e-7);
}

static void test_activations(void)
{
    /* hand-checked values (erf/tanh tables); torch's CPU GELU uses the Abramowitz-Stegun erf
     * (|error| <= 1.5e-7), so GELU is within ~2e-7 |x| of the exact value */
    float g[4] = {1.0f, -1.0f, 0.0f, 3.0f};
    saa_gelu_erf(g, 4);
    CHECK_NEAR(g[0], 0.8413447460685429, 1e-7);
    CHECK_NEAR(g[1], -0.15865525393145707, 1e-7);
    CHECK(g[2] == 0.0f);
    CHECK_NEAR(g[3], 2.9959502, 1e-6);
    float t[2] = {1.0f, -2.0f};
    saa_gelu_tanh(t, 2);
    CHECK_NEAR(t[0], 0.8411919906082768, 1e-7);
    CHECK_NEAR(t[1], -0.04540230591222008, 1e-7);
    float s[3] = {0.0f, 2.0f, -100.0f};
    saa_sigmoid(s, 3);
    CHECK(s[0] == 0.5f);
    CHECK_NEAR(s[1], 0.8807970779778823, 1e-7);
    CHECK(s[2] >= 0.0f && s[2] < 1e-40f);
    float r[4] = {-1.0f, 0.0f, 2.5f, NAN};
    saa_relu(r, 4);
    CHECK(r[0] == 0.0f && r[1] == 0.0f && r[2] == 2.5f && isnan(r[3]));

    /* large arrays (parallel path) vs double formulas */
    const int64_t n = 200003;
    float *x = rand_buf(n, 6, 0), *y = malloc(sizeof(float) * n);
    double e_erf = 0, e_tanh = 0, e_sig = 0;
    memcpy(y, x, sizeof(float) * n);
    saa_gelu_erf(y, n);
    for (int64_t i = 0; i < n; i++) {
        double v = x[i], ref = 0.5 * v * (1 + erf(v / sqrt(2.0)));
        /* error in units of the bound 0.5 |x| (1.5e-7 approximation + ~2.5e-7 float rounding of
         * t, r(t) and exp in 1 - t r e) + 2 ulp of the result */
        double d = fabs(y[i] - ref) / (2e-7 * fabs(v) + 2.4e-7 * fabs(ref) + 1e-30);
        if (d > e_erf) e_erf = d;
    }
    memcpy(y, x, sizeof(float) * n);
    saa_gelu_tanh(y, n);
    for (int64_t i = 0; i < n; i++) {
        double v = x[i], ref = 0.5 * v * (1 + tanh(sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
        double d = fabs(y[i] - ref);
        if (d > e_tanh) e_tanh = d;
    }
    memcpy(y, x, sizeof(float) * n);
    saa_sigmoid(y, n);
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(y[i] - 1 / (1 + exp(-(double)x[i])));
        if (d > e_sig) e_sig = d;
    }
    CHECK(e_erf <= 1.0);
    CHECK(e_tanh < 2e-6);
    CHECK(e_sig < 2e-7);
    free(x), free(y);
}

/* softmax in double of n values x[0], x[st], ... into ref[0], ref[st], ... */
static void ref_softmax(const float *x, int64_t n, int64_t st, double *ref)
{
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < n; j++) m = fmax(m, x[j * st]);
    for (int64_t j = 0; j < n; j++) s += exp(x[j * st] - m);
    for (int64_t j = 0; j < n; j++) ref[j * st] = exp(x[j * st] - m) / s;
}

static void test_softmax(void)
{
    /* hand-checked: [0, ln 3] -> [0.25, 0.75]; -inf -> 0; large values do not overflow */
    float a[8] = {0.0f, logf(3.0f), 1000.0f, 1000.0f, -INFINITY, 0.0f, -INFINITY, -INFINITY};
    saa_softmax_rows(a, 4, 2);
    CHECK_NEAR(a[0], 0.25, 1e-7);
    CHECK_NEAR(a[1], 0.75, 1e-7);
    CHECK(a[2] == 0.5f && a[3] == 0.5f);
    CHECK(a[4] == 0.0f && a[5] == 1.0f);
    CHECK(isnan(a[6]) && isnan(a[7])); /* all -inf: NaN, as torch.softmax */

    const int64_t rows = 300, cols = 301; /* > parallel threshold */
    float *x = rand_buf(rows * cols, 10, 0);
    double *ref = malloc(sizeof(double) * rows * cols);
    for (int64_t r = 0; r < rows; r++) ref_softmax(x + r * cols, cols, 1, ref + r * cols);
    saa_softmax_rows(x, rows, cols);
    CHECK(max_err(x, ref, rows * cols) < 1e-7);
    free(x), free(ref);

    /* down the columns: few rows (the attention-over-tokens shape), a partial column block, above and
     * below the parallel threshold; the rows version on the transpose agrees to rounding */
    const int64_t shapes[3][2] = {{7, 300}, {3, 70001}, {1, 5}};
    for (int s = 0; s < 3; s++) {
        int64_t R = shapes[s][0], C = shapes[s][1];
        float *m = rand_buf(R * C, 10, 0), *t = malloc(sizeof(float) * R * C);
        double *cref = malloc(sizeof(double) * R * C);
        for (int64_t j = 0; j < C; j++) {
            ref_softmax(m + j, R, C, cref + j);
            for (int64_t r = 0; r < R; r++) t[j * R + r] = m[r * C + j];
        }
        saa_softmax_cols(m, R, C);
        saa_softmax_rows(t, C, R);
        CHECK(max_err(m, cref, R * C) < 1e-7);
        double d = 0;
        for (int64_t j = 0; j < C; j++)
            for (int64_t r = 0; r < R; r++) d = fmax(d, fabs(m[r * C + j] - t[j * R + r]));
        CHECK(d < 5e-7);
        free(m), free(t), free(cref);
    }
    /* -inf, NaN and overflow columns behave as in the rows version */
    float b[3 * 4] = {0.0f, 1000.0f, -INFINITY, 1.0f, logf(3.0f), 1000.0f, -INFINITY, NAN, -INFINITY, 0.0f, -INFINITY, 2.0f};
    saa_softmax_cols(b, 3, 4);
    CHECK_NEAR(b[0], 0.25, 1e-7);
    CHECK_NEAR(b[4], 0.75, 1e-7);
    CHECK(b[8] == 0.0f && b[1] == 0.5f && b[5] == 0.5f && b[9] == 0.0f);
    CHECK(isnan(b[2]) && isnan(b[6]) && isnan(b[10]));
    CHECK(isnan(b[3]) && isnan(b[7]) && isnan(b[11]));
}

static void test_attention(void)
{
    /* strided q/k/v/out (as slices of a packed qkv buffer), additive mask with -inf, Lq != Lk */
    const int64_t Lq = 7, Lk = 11, d = 5, dv = 6, ldq = 9, ldk = 13, ldv = 8, ldo = 10;
    float *q = rand_buf(Lq * ldq, 1, 0), *k = rand_buf(Lk * ldk, 1, 0), *v = rand_buf(Lk * ldv, 1, 0);
    float *mask = rand_buf(Lq * Lk, 1, 0), *out = rand_buf(Lq * ldo, 1, 0), *scores = malloc(sizeof(float) * Lq * Lk);
    for (int64_t i = 0; i < Lq; i++) mask[i * Lk + (i % Lk)] = -INFINITY;
    float *out0 = malloc(sizeof(float) * Lq * ldo);
    memcpy(out0, out, sizeof(float) * Lq * ldo);
    const float scale = 0.37f;
    for (int with_mask = 0; with_mask < 2; with_mask++) {
        double ref[7 * 6];
        for (int64_t i = 0; i < Lq; i++) {
            double s[11], m = -INFINITY, sum = 0;
            for (int64_t j = 0; j < Lk; j++) {
                double dot = 0;
                for (int64_t c = 0; c < d; c++) dot += (double)q[i * ldq + c] * k[j * ldk + c];
                s[j] = scale * dot + (with_mask ? mask[i * Lk + j] : 0);
                m = fmax(m, s[j]);
            }
            for (int64_t j = 0; j < Lk; j++) sum += (s[j] = exp(s[j] - m));
            for (int64_t c = 0; c < dv; c++) {
                double o = 0;
                for (int64_t j = 0; j < Lk; j++) o += s[j] / sum * v[j * ldv + c];
                ref[i * dv + c] = o;
            }
        }
        saa_attention_head(q, ldq, k, ldk, v, ldv, Lq, Lk, d, dv, scale, with_mask ? mask : NULL, out, ldo,
                           scores);
        double e = 0;
        for (int64_t i = 0; i < Lq; i++)
            for (int64_t c = 0; c < ldo; c++) {
                if (c < dv) e = fmax(e, fabs(out[i * ldo + c] - ref[i * dv + c]));
                else CHECK(out[i * ldo + c] == out0[i * ldo + c]);
            }
        CHECK(e < 1e-6);
    }
    /* one key: output = v row */
    float q1[2] = {1, 2}, k1[2] = {3, 4}, v1[3] = {5, 6, 7}, o1[3], s1[1];
    saa_attention_head(q1, 2, k1, 2, v1, 3, 1, 1, 2, 3, 1.0f, NULL, o1, 3, s1);
    CHECK(o1[0] == 5.0f && o1[1] == 6.0f && o1[2] == 7.0f);
    free(q), free(k), free(v), free(mask), free(out), free(out0), free(scores);
}

int main(void)
{
    saa_threads_init();
    test_gemm();
    test_linear();
    test_layer_norm();
    test_layer_norm2d();
    test_group_norm();
    test_batch_norm();
    test_expf();
    test_activations();
    test_softmax();
    test_attention();
    TEST_MAIN_END();
}
