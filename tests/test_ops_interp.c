/* interpolate (bilinear, linear, nearest), grid_sample, topk/argsort/argmax: brute-force double
 * references written here, hand-checked values, and PyTorch's own outputs stored in the sam_tiny
 * golden folder (post-processing interpolations and get_rel_pos table resampling). */
#include <string.h>

#include "saa/tensor.h"
#include "saa/weights.h"
#include "test.h"

static uint64_t rng_state = 0x13198a2e03707344ull;
static float frand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* textbook linear resampling weights in double (torch's pixel-centre convention, float32 scale) */
static void ref_coef(int64_t in, int64_t out, int align, int64_t d, int64_t *i0, int64_t *i1, double *l1)
{
    /* the scale is rounded to float32 first, as PyTorch does (exact rational otherwise) */
    double scale = align ? (out > 1 ? (double)(float)((double)(in - 1) / (out - 1)) : 0.0) : (double)(float)((double)in / out);
    double src = align ? (double)d * scale : ((double)d + 0.5) * scale - 0.5;
    if (src < 0) src = 0;
    *i0 = (int64_t)src;
    if (*i0 > in - 1) *i0 = in - 1;
    *i1 = *i0 < in - 1 ? *i0 + 1 : *i0;
    *l1 = src - *i0;
}

/* max error of saa_interp_bilinear and of saa_interp_bilinear_cl (the larger) */
static double bilinear_err(int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW, int align)
{
    float *x = malloc(sizeof(float) * C * H * W), *y = malloc(sizeof(float) * C * OH * OW);
    for (int64_t i = 0; i < C * H * W; i++) x[i] = frand() * 4;
    double err = 0;
    for (int variant = 0; variant < 2; variant++) {
        (variant ? saa_interp_bilinear_cl : saa_interp_bilinear)(x, C, H, W, OH, OW, align, y);
        for (int64_t c = 0; c < C; c++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    int64_t h0, h1, w0, w1;
                    double lh, lw;
                    ref_coef(H, OH, align, oh, &h0, &h1, &lh);
                    ref_coef(W, OW, align, ow, &w0, &w1, &lw);
                    const float *p = x + c * H * W;
                    double t0 = p[h0 * W + w0] * (1 - lw) + p[h0 * W + w1] * lw;
                    double t1 = p[h1 * W + w0] * (1 - lw) + p[h1 * W + w1] * lw;
                    double ref = t0 * (1 - lh) + t1 * lh;
                    err = fmax(err, fabs(y[(c * OH + oh) * OW + ow] - ref));
                }
    }
    free(x), free(y);
    return err;
}

static void test_bilinear(void)
{
    /* hand-checked torch outputs: [[1,2],[3,4]] -> 4x4 (align_corners False) and 3x3 (True) */
    float x[4] = {1, 2, 3, 4}, y[16];
    const float e4[16] = {1, 1.25f, 1.75f, 2, 1.5f, 1.75f, 2.25f, 2.5f, 2.5f, 2.75f, 3.25f, 3.5f, 3, 3.25f, 3.75f, 4};
    saa_interp_bilinear(x, 1, 2, 2, 4, 4, 0, y);
    CHECK(memcmp(y, e4, sizeof e4) == 0);
    const float e3[9] = {1, 1.5f, 2, 2, 2.5f, 3, 3, 3.5f, 4};
    saa_interp_bilinear(x, 1, 2, 2, 3, 3, 1, y);
    CHECK(memcmp(y, e3, sizeof e3) == 0);
    saa_interp_bilinear(x, 1, 2, 2, 2, 2, 0, y); /* same size: copy */
    CHECK(memcmp(y, x, sizeof x) == 0);
    saa_interp_bilinear(x, 1, 2, 2, 1, 1, 0, y); /* 1x1 output, src = 0.5: mean */
    CHECK(y[0] == 2.5f);
    saa_interp_bilinear(x, 1, 2, 2, 1, 1, 1, y); /* align_corners, 1 output: first pixel */
    CHECK(y[0] == 1.0f);

    /* a window is exactly the top-left part of the whole resampling */
    {
        const int64_t C = 2, H = 9, W = 11, OH = 40, OW = 37, wh = 23, ww = 30;
        float *xs = malloc(sizeof(float) * C * H * W), *full = malloc(sizeof(float) * C * OH * OW);
        float *win = malloc(sizeof(float) * C * wh * ww);
        for (int64_t i = 0; i < C * H * W; i++) xs[i] = frand() * 4;
        for (int align = 0; align < 2; align++) {
            saa_interp_bilinear(xs, C, H, W, OH, OW, align, full);
            saa_interp_bilinear_window(xs, C, H, W, OH, OW, align, wh, ww, win);
            int same = 1;
            for (int64_t c = 0; c < C; c++)
                for (int64_t i = 0; i < wh; i++)
                    same &= memcmp(win + (c * wh + i) * ww, full + (c * OH + i) * OW, sizeof(float) * ww) == 0;
            CHECK(same);
        }
        free(xs), free(full), free(win);
    }
    CHECK(bilinear_err(3, 10, 10, 40, 40, 0) < 2e-6);  /* SAM 40 -> 160 style upsampling */
    CHECK(bilinear_err(2, 118, 160, 97, 131, 0) < 2e-6); /* shrink, no antialias */
    CHECK(bilinear_err(2, 7, 13, 19, 5, 0) < 2e-6);
    CHECK(bilinear_err(2, 7, 13, 19, 5, 1) < 2e-6);
    CHECK(bilinear_err(1, 1, 1, 3, 4, 0) < 1e-7); /* 1x1 input: constant */
    CHECK(bilinear_err(2, 5, 1, 9, 3, 1) < 2e-6);
    CHECK(bilinear_err(1, 300, 300, 256, 256, 0) < 2e-6); /* parallel path */
}

static void test_linear1d(void)
{
    /* hand-checked: [0 1 2] -> 5 (scale 0.6): src = 0, 0.4, 1, 1.6, 2 (clamped) */
    float x[3] = {0, 1, 2}, y[5];
    saa_interp_linear1d(x, 1, 3, 5, y);
    CHECK(y[0] == 0.0f && y[2] == 1.0f && y[4] == 2.0f);
    CHECK_NEAR(y[1], 0.4, 1e-7);
    CHECK_NEAR(y[3], 1.6, 3e-7); /* float32 scale 0.6 rounds up: 1.60000014 in torch */
    const int64_t C = 3, L = 13, OL = 19;
    float *a = malloc(sizeof(float) * C * L), *b = malloc(sizeof(float) * C * OL);
    for (int64_t i = 0; i < C * L; i++) a[i] = frand();
    for (int t = 0; t < 2; t++) {
        int64_t ol = t ? 7 : OL; /* up and down */
        saa_interp_linear1d(a, C, L, ol, b);
        double err = 0;
        for (int64_t c = 0; c < C; c++)
            for (int64_t d = 0; d < ol; d++) {
                int64_t i0, i1;
                double l1;
                ref_coef(L, ol, 0, d, &i0, &i1, &l1);
                err = fmax(err, fabs(b[c * ol + d] - (a[c * L + i0] * (1 - l1) + a[c * L + i1] * l1)));
            }
        CHECK(err < 1e-6);
    }
    free(a), free(b);
}

static void test_nearest(void)
{
    float x[26], y[46];
    for (int i = 0; i < 26; i++) x[i] = (float)i;
    saa_interp_nearest(x, 1, 1, 3, 1, 5, y); /* scale 0.6: 0 0 1 1 2 */
    CHECK(y[0] == 0 && y[1] == 0 && y[2] == 1 && y[3] == 1 && y[4] == 2);
    saa_interp_nearest(x, 1, 1, 5, 1, 3, y); /* scale 5/3: 0 1 3 */
    CHECK(y[0] == 0 && y[1] == 1 && y[2] == 3);
    /* float32 scale rounding, as PyTorch: 26 -> 22, output 11: 11 * float(26/22) = 12.9999..
     * -> 12 (the exact rational 13 would give 13); 14 -> 46, output 23 -> 6 (not 7) */
    saa_interp_nearest(x, 1, 1, 26, 1, 22, y);
    CHECK(y[11] == 12.0f && y[10] == 11.0f && y[21] == 24.0f);
    saa_interp_nearest(x, 1, 1, 14, 1, 46, y);
    CHECK(y[23] == 6.0f && y[45] == 13.0f);
    /* 2-D, x2 upsampling and shrinking, against the exact rational rule (same except at float
     * rounding cases, which these sizes do not hit) */
    float img[12], out[48];
    for (int i = 0; i < 12; i++) img[i] = (float)i;
    saa_interp_nearest(img, 1, 3, 4, 6, 8, out);
    int ok = 1;
    for (int oh = 0; oh < 6; oh++)
        for (int ow = 0; ow < 8; ow++) ok &= out[oh * 8 + ow] == img[(oh / 2) * 4 + ow / 2];
    CHECK(ok);
    saa_interp_nearest(img, 1, 3, 4, 2, 3, out);
    ok = 1;
    for (int oh = 0; oh < 2; oh++)
        for (int ow = 0; ow < 3; ow++) ok &= out[oh * 3 + ow] == img[(oh * 3 / 2) * 4 + ow * 4 / 3];
    CHECK(ok);
    /* WRN feature alignment: x2 and x4 nearest upsampling of several channels (parallel path) */
    {
        const int64_t C = 3, H = 64, W = 48;
        float *a = malloc(sizeof(float) * C * H * W), *b = malloc(sizeof(float) * C * H * W * 16);
        for (int64_t i = 0; i < C * H * W; i++) a[i] = frand();
        for (int f = 2; f <= 4; f += 2) {
            saa_interp_nearest(a, C, H, W, H * f, W * f, b);
            ok = 1;
            for (int64_t c = 0; c < C; c++)
                for (int64_t oh = 0; oh < H * f; oh++)
                    for (int64_t ow = 0; ow < W * f; ow++)
                        ok &= b[(c * H * f + oh) * W * f + ow] == a[(c * H + oh / f) * W + ow / f];
            CHECK(ok);
        }
        free(a), free(b);
    }
}

/* reference grid_sample (bilinear, zeros, align_corners False) in double */
static void ref_grid(const float *v, int64_t H, int64_t W, int64_t C, double gx, double gy, double *out)
{
    double x = ((gx + 1) * W - 1) / 2, y = ((gy + 1) * H - 1) / 2;
    int64_t x0 = (int64_t)floor(x), y0 = (int64_t)floor(y);
    for (int64_t c = 0; c < C; c++) {
        double s = 0;
        for (int dy = 0; dy < 2; dy++)
            for (int dx = 0; dx < 2; dx++) {
                int64_t xi = x0 + dx, yi = y0 + dy;
                if (xi < 0 || xi >= W || yi < 0 || yi >= H) continue;
                double wx = dx ? x - x0 : 1 - (x - x0), wy = dy ? y - y0 : 1 - (y - y0);
                s += wx * wy * v[(yi * W + xi) * C + c];
            }
        out[c] = s;
    }
}

static void test_grid_sample(void)
{
    /* hand-checked on [[1,2],[3,4]] (C = 1): centre -> 2.5; pixel centres exact; a corner outside */
    float v[4] = {1, 2, 3, 4}, o[1];
    o[0] = 10;
    saa_grid_sample_accum(v, 2, 2, 1, 0, 0, 2.0f, o);
    CHECK(o[0] == 15.0f); /* 10 + 2 * 2.5 */
    o[0] = 0;
    saa_grid_sample_accum(v, 2, 2, 1, 0.5f, -0.5f, 1.0f, o); /* centre of pixel (0, 1) */
    CHECK(o[0] == 2.0f);
    o[0] = 0;
    saa_grid_sample_accum(v, 2, 2, 1, -1, -1, 1.0f, o); /* image corner: 1/4 of pixel 0 */
    CHECK(o[0] == 0.25f);
    o[0] = 7;
    saa_grid_sample_accum(v, 2, 2, 1, 3, 0, 1.0f, o); /* far outside: unchanged */
    saa_grid_sample_accum(v, 2, 2, 1, 0, -1.5f, 1.0f, o);
    CHECK(o[0] == 7.0f);

    const int64_t H = 5, W = 7, C = 6;
    float *val = malloc(sizeof(float) * H * W * C);
    for (int64_t i = 0; i < H * W * C; i++) val[i] = frand();
    double err = 0;
    for (int t = 0; t < 500; t++) {
        float gx = frand() * 1.3f, gy = frand() * 1.3f, wt = frand();
        float acc[6];
        double ref[6];
        for (int c = 0; c < C; c++) acc[c] = 0.5f;
        saa_grid_sample_accum(val, H, W, C, gx, gy, wt, acc);
        ref_grid(val, H, W, C, gx, gy, ref);
        for (int c = 0; c < C; c++) err = fmax(err, fabs(acc[c] - (0.5 + wt * ref[c])));
    }
    CHECK(err < 2e-6);
    free(val);
}

static void test_sorting(void)
{
    float x[10] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3}, t_one[1] = {42.0f};
    int64_t idx[10];
    float vals[10];
    /* exactly equal values come out in torch 1.13's CPU order (std::nth_element + std::sort), values
     * below from torch.topk(torch.tensor(x), k).indices */
    saa_topk(x, 10, 4, idx, vals);
    CHECK(idx[0] == 5 && idx[1] == 7 && idx[2] == 8 && idx[3] == 4); /* tie 5,5: index 8 first */
    CHECK(vals[0] == 9 && vals[1] == 6 && vals[2] == 5 && vals[3] == 5);
    saa_topk(x, 10, 10, idx, NULL);
    const int64_t torch_full[10] = {5, 7, 8, 4, 2, 9, 0, 6, 3, 1};
    CHECK(memcmp(idx, torch_full, sizeof torch_full) == 0);
    const int64_t full[10] = {5, 7, 4, 8, 2, 0, 9, 6, 1, 3}; /* stable descending argsort */
    saa_argsort(x, 10, 0, idx);
    const int64_t asc[10] = {1, 3, 6, 0, 9, 2, 4, 8, 7, 5};
    CHECK(memcmp(idx, asc, sizeof asc) == 0);
    saa_argsort(x, 10, 1, idx);
    CHECK(memcmp(idx, full, sizeof full) == 0);
    CHECK(saa_argmax(x, 10) == 5);
    saa_topk(x, 10, 0, idx, vals); /* k = 0: nothing written */
    saa_topk(t_one, 1, 5, idx, vals); /* k > n clamps to n */
    CHECK(idx[0] == 0 && vals[0] == 42.0f);
    saa_argsort(t_one, 1, 0, idx);
    CHECK(idx[0] == 0);
    CHECK(saa_argmax(t_one, 0) == -1);
    float t[4] = {2, 7, 7, 1};
    CHECK(saa_argmax(t, 4) == 1);
    float nn[5] = {1, NAN, 3, NAN, -INFINITY};
    CHECK(saa_argmax(nn, 5) == 1);
    saa_topk(nn, 5, 3, idx, NULL); /* NaN ranks first, as torch.topk */
    CHECK(idx[0] == 1 && idx[1] == 3 && idx[2] == 2);
    saa_argsort(nn, 5, 0, idx); /* ascending: NaN last, as numpy */
    CHECK(idx[0] == 4 && idx[1] == 0 && idx[2] == 2 && idx[3] == 1 && idx[4] == 3);

    /* random with many ties, odd length: stability and order against a brute-force rank */
    const int64_t n = 1001;
    float *r = malloc(sizeof(float) * n);
    int64_t *ia = malloc(sizeof(int64_t) * n), *id = malloc(sizeof(int64_t) * n), *tk = malloc(sizeof(int64_t) * 37);
    for (int64_t i = 0; i < n; i++) r[i] = (float)(int)(frand() * 20);
    saa_argsort(r, n, 0, ia);
    saa_argsort(r, n, 1, id);
    int ok = 1;
    for (int64_t i = 0; i < n; i++) {
        /* rank of element i in a stable ascending sort = #smaller + #equal before it */
        int64_t ra = 0, rd = 0;
        for (int64_t j = 0; j < n; j++) {
            ra += r[j] < r[i] || (r[j] == r[i] && j < i);
            rd += r[j] > r[i] || (r[j] == r[i] && j < i);
        }
        ok &= ia[ra] == i && id[rd] == i;
    }
    CHECK(ok);
    /* topk: the values of the stable descending sort, each index once */
    saa_topk(r, n, 37, tk, NULL);
    ok = 1;
    for (int64_t i = 0; i < 37; i++) {
        ok &= r[tk[i]] == r[id[i]];
        for (int64_t j = 0; j < i; j++) ok &= tk[j] != tk[i];
    }
    CHECK(ok);
    /* torch's tie order on both of its paths: std::partial_sort (k * 64 <= n) and std::nth_element +
     * std::sort of the first k - 1; x[i] = (i * 37) % 11 (minus 2.5 for i % 7 == 0), n = 200,
     * expectations from torch.topk */
    float w[200];
    int64_t wk[30];
    for (int i = 0; i < 200; i++) w[i] = (float)((i * 37) % 11);
    saa_topk(w, 200, 3, wk, NULL);
    CHECK(wk[0] == 30 && wk[1] == 19 && wk[2] == 8);
    saa_topk(w, 200, 20, wk, NULL);
    const int64_t want20[20] = {30, 74, 151, 195, 8, 63, 162, 52, 118, 96, 19, 140, 184, 41, 85, 107, 173, 129, 38, 71};
    CHECK(memcmp(wk, want20, sizeof want20) == 0);
    for (int i = 0; i < 200; i += 7) w[i] -= 2.5f;
    saa_topk(w, 200, 30, wk, NULL);
    const int64_t want30[30] = {118, 184, 19, 52, 162, 107, 74, 30, 85, 8, 129, 195, 173, 41, 151,
                                96, 170, 93, 60, 192, 5, 71, 148, 115, 181, 38, 104, 27, 137, 16};
    CHECK(memcmp(wk, want30, sizeof want30) == 0);
    free(r), free(ia), free(id), free(tk);
}

/* PyTorch's own results stored in the sam_tiny golden folder. */
static int golden_tests(void)
{
    const char *path = SAA_SHARED_DIR "/golden/sam_tiny/golden.safetensors";
    if (!test_exists(path)) {
        printf("skipping golden interpolation checks: %s not found\n", path);
        return 0;
    }
    saa_weights *g = NULL;
    CHECK(saa_weights_open(path, &g) == SAA_OK);
    if (!g) return 0;

    /* Sam.postprocess_masks: 40x40 -> 160x160 -> crop 118x160 -> 97x131, bilinear, align_corners False */
    const char *cases = "abcd";
    for (int ci = 0; ci < 4; ci++) {
        char name[64];
        snprintf(name, sizeof name, "decoder.%c.low_res_logits", cases[ci]);
        const saa_tensor *lr = saa_weights_find(g, name);
        snprintf(name, sizeof name, "post.%c.masks_logits", cases[ci]);
        const saa_tensor *ref = saa_weights_find(g, name);
        CHECK(lr && ref && lr->dtype == SAA_F32 && ref->dtype == SAA_F32);
        if (!lr || !ref) continue;
        int64_t planes = lr->shape[0] * lr->shape[1];
        float *up = malloc(sizeof(float) * planes * 160 * 160), *out = malloc(sizeof(float) * planes * 97 * 131);
        /* torch's input is channels-last contiguous only for case d ([1,1,40,40] = masks[:, 0:1] of
         * one prompt): it then takes the channels-last kernel for both interpolations */
        int cl = lr->shape[0] == 1 && lr->shape[1] == 1;
        void (*interp)(const float *, int64_t, int64_t, int64_t, int64_t, int64_t, int, float *) =
            cl ? saa_interp_bilinear_cl : saa_interp_bilinear;
        interp(lr->data, planes, 40, 40, 160, 160, 0, up);
        /* crop [:118, :160] is a prefix of each 160x160 plane */
        for (int64_t p = 0; p < planes; p++) interp(up + p * 160 * 160, 1, 118, 160, 97, 131, 0, out + p * 97 * 131);
        const float *rf = ref->data;
        double err = 0;
        int64_t diff = 0;
        for (int64_t i = 0; i < planes * 97 * 131; i++) {
            err = fmax(err, fabs(out[i] - rf[i]));
            diff += out[i] != rf[i];
        }
        printf("post.%c.masks_logits: %ld of %ld values differ from torch, max abs %.3g\n", cases[ci], (long)diff,
               (long)(planes * 97 * 131), err);
        CHECK(diff == 0); /* M2: bit-exact */
        free(up), free(out);
    }

    /* get_rel_pos (E5/E6): table [L, C] resampled to 2*max(q,k)-1 rows by linear interpolation */
    for (int ci = 0; ci < 8; ci++) {
        char name[64];
        snprintf(name, sizeof name, "relpos.case%d.table", ci);
        const saa_tensor *tab = saa_weights_find(g, name);
        if (!tab) break;
        snprintf(name, sizeof name, "relpos.case%d.sizes", ci);
        const saa_tensor *sz = saa_weights_find(g, name);
        snprintf(name, sizeof name, "relpos.case%d.out", ci);
        const saa_tensor *ref = saa_weights_find(g, name);
        CHECK(sz && ref);
        if (!sz || !ref) continue;
        int64_t q = (int64_t)saa_tensor_get(sz, 0), k = (int64_t)saa_tensor_get(sz, 1);
        int64_t L = tab->shape[0], C = tab->shape[1], R = 2 * (q > k ? q : k) - 1;
        float *tt = malloc(sizeof(float) * C * L), *rs = malloc(sizeof(float) * C * R);
        const float *tv = tab->data;
        for (int64_t i = 0; i < L; i++)
            for (int64_t c = 0; c < C; c++) tt[c * L + i] = tv[i * C + c];
        if (L != R) saa_interp_linear1d(tt, C, L, R, rs);
        else memcpy(rs, tt, sizeof(float) * C * L);
        /* E5 index in float32 */
        float rq = (float)fmax((double)k / q, 1.0), rk = (float)fmax((double)q / k, 1.0);
        float off = (float)((double)(k - 1) * (double)rk);
        int64_t diff = 0;
        const float *rf = ref->data;
        for (int64_t i = 0; i < q; i++)
            for (int64_t j = 0; j < k; j++) {
                int64_t r = q == k ? i - j + k - 1 : (int64_t)(((float)i * rq - (float)j * rk) + off);
                for (int64_t c = 0; c < C; c++) diff += rs[c * R + r] != rf[(i * k + j) * C + c];
            }
        printf("relpos.case%d (q %ld, k %ld, table %ld -> %ld): %ld values differ\n", ci, (long)q, (long)k, (long)L,
               (long)R, (long)diff);
        CHECK(diff == 0);
        free(tt), free(rs);
    }
    saa_weights_close(g);
    return 1;
}

int main(void)
{
    saa_threads_init();
    test_bilinear();
    test_linear1d();
    test_nearest();
    test_grid_sample();
    test_sorting();
    golden_tests();
    TEST_MAIN_END();
}
