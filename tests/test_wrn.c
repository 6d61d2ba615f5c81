/* WideResNet saliency tests against brute-force double-precision references written here:
 * a random small ResNet (identity and downsample residuals, odd non-square input) run with unfolded
 * BatchNorm and naive convolutions; fusion (nearest upsampling + L2 normalisation); the single-instance
 * heat (full sort of the full self-similarity); the multi-instance map (the official algorithm with
 * the whole similarity matrix, zeroed mask-i pixels); preprocessing padding; error cases. Then the
 * saa_e2e folder's checkpoint (no downsample in layer1.0) against its stored saliency maps. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "saa/image.h"
#include "saa/weights.h"
#include "saa/wrn.h"
#include "test.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double urand(void) /* [0, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* ---------- synthetic checkpoint ---------- */

static void add_rand(saa_weights *w, const char *name, int ndim, const int64_t *shape, double lo, double hi)
{
    saa_tensor *t = saa_tensor_new(SAA_F32, ndim, shape);
    float *d = t->data;
    for (int64_t i = 0; i < saa_tensor_numel(t); i++) d[i] = (float)(lo + (hi - lo) * urand());
    CHECK(saa_weights_add(w, name, t) == SAA_OK);
}

static void add_conv_bn(saa_weights *w, const char *conv, const char *bn, int64_t O, int64_t C, int64_t K)
{
    char n[128];
    double s = 1.0 / sqrt((double)(C * K * K));
    snprintf(n, sizeof n, "%s.weight", conv);
    add_rand(w, n, 4, (int64_t[]){O, C, K, K}, -1.7 * s, 1.7 * s);
    snprintf(n, sizeof n, "%s.weight", bn);
    add_rand(w, n, 1, &O, 0.5, 1.5);
    snprintf(n, sizeof n, "%s.bias", bn);
    add_rand(w, n, 1, &O, -0.3, 0.5);
    snprintf(n, sizeof n, "%s.running_mean", bn);
    add_rand(w, n, 1, &O, -0.3, 0.3);
    snprintf(n, sizeof n, "%s.running_var", bn);
    add_rand(w, n, 1, &O, 0.5, 1.5);
}

/* stem 8; layer1: 1 block 8->4->4->8 (identity); layer2: 1 block, stride 2, downsample -> 16;
 * layer3: 2 blocks, downsample then identity -> 24 */
static const int NB[3] = {1, 1, 2};
static const int64_t WIDTH[3] = {4, 6, 8}, OUT[3] = {8, 16, 24};

static saa_weights *make_weights(void)
{
    saa_weights *w = saa_weights_alloc("synthetic");
    add_conv_bn(w, "conv1", "bn1", 8, 3, 7);
    int64_t in = 8;
    char a[64], b[64];
    for (int l = 0; l < 3; l++)
        for (int i = 0; i < NB[l]; i++) {
            snprintf(a, sizeof a, "layer%d.%d.conv1", l + 1, i);
            snprintf(b, sizeof b, "layer%d.%d.bn1", l + 1, i);
            add_conv_bn(w, a, b, WIDTH[l], in, 1);
            snprintf(a, sizeof a, "layer%d.%d.conv2", l + 1, i);
            snprintf(b, sizeof b, "layer%d.%d.bn2", l + 1, i);
            add_conv_bn(w, a, b, WIDTH[l], WIDTH[l], 3);
            snprintf(a, sizeof a, "layer%d.%d.conv3", l + 1, i);
            snprintf(b, sizeof b, "layer%d.%d.bn3", l + 1, i);
            add_conv_bn(w, a, b, OUT[l], WIDTH[l], 1);
            if (i == 0 && (l > 0 || in != OUT[l])) {
                snprintf(a, sizeof a, "layer%d.%d.downsample.0", l + 1, i);
                snprintf(b, sizeof b, "layer%d.%d.downsample.1", l + 1, i);
                add_conv_bn(w, a, b, OUT[l], in, 1);
            }
            in = OUT[l];
        }
    /* unused by features_only: must be ignored */
    add_rand(w, "fc.weight", 2, (int64_t[]){5, 24}, -1, 1);
    return w;
}

/* ---------- double reference ---------- */

typedef struct {
    int64_t C, H, W;
    double *d;
} dmap;

static dmap dmap_new(int64_t C, int64_t H, int64_t W)
{
    dmap m = {C, H, W, calloc((size_t)(C * H * W), sizeof(double))};
    return m;
}

static const float *wget(saa_weights *w, const char *fmt, const char *base)
{
    char n[128];
    snprintf(n, sizeof n, fmt, base);
    const saa_tensor *t = saa_weights_find(w, n);
    return t ? t->data : NULL;
}

/* conv (no bias) + eval BatchNorm, unfolded, in double; relu optional */
static dmap ref_conv_bn(saa_weights *w, const char *conv, const char *bn, const dmap *x, int64_t O, int64_t K,
                        int stride, int pad, int relu)
{
    int64_t OH = (x->H + 2 * pad - K) / stride + 1, OW = (x->W + 2 * pad - K) / stride + 1;
    dmap y = dmap_new(O, OH, OW);
    const float *cw = wget(w, "%s.weight", conv), *g = wget(w, "%s.weight", bn), *b = wget(w, "%s.bias", bn),
                *mu = wget(w, "%s.running_mean", bn), *var = wget(w, "%s.running_var", bn);
    for (int64_t o = 0; o < O; o++)
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox = 0; ox < OW; ox++) {
                double s = 0;
                for (int64_t c = 0; c < x->C; c++)
                    for (int64_t ky = 0; ky < K; ky++)
                        for (int64_t kx = 0; kx < K; kx++) {
                            int64_t iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                            if (iy < 0 || iy >= x->H || ix < 0 || ix >= x->W) continue;
                            s += (double)cw[((o * x->C + c) * K + ky) * K + kx] * x->d[(c * x->H + iy) * x->W + ix];
                        }
                double v = (s - mu[o]) / sqrt((double)var[o] + 1e-5) * g[o] + b[o];
                y.d[(o * OH + oy) * OW + ox] = relu && v < 0 ? 0 : v;
            }
    return y;
}

static void ref_backbone(saa_weights *w, const float *x, int H, int W, dmap out[3])
{
    dmap in = dmap_new(3, H, W);
    for (int64_t i = 0; i < 3 * (int64_t)H * W; i++) in.d[i] = x[i];
    dmap s = ref_conv_bn(w, "conv1", "bn1", &in, 8, 7, 2, 3, 1);
    free(in.d);
    int64_t PH = (s.H + 2 - 3) / 2 + 1, PW = (s.W + 2 - 3) / 2 + 1;
    dmap cur = dmap_new(8, PH, PW);
    for (int64_t c = 0; c < 8; c++)
        for (int64_t y = 0; y < PH; y++)
            for (int64_t xx = 0; xx < PW; xx++) {
                double m = -INFINITY;
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++) {
                        int64_t iy = y * 2 - 1 + ky, ix = xx * 2 - 1 + kx;
                        if (iy >= 0 && iy < s.H && ix >= 0 && ix < s.W && s.d[(c * s.H + iy) * s.W + ix] > m)
                            m = s.d[(c * s.H + iy) * s.W + ix];
                    }
                cur.d[(c * PH + y) * PW + xx] = m;
            }
    free(s.d);
    char a[64], b[64];
    for (int l = 0; l < 3; l++) {
        for (int i = 0; i < NB[l]; i++) {
            int stride = (l > 0 && i == 0) ? 2 : 1;
            snprintf(a, sizeof a, "layer%d.%d.conv1", l + 1, i);
            snprintf(b, sizeof b, "layer%d.%d.bn1", l + 1, i);
            dmap t1 = ref_conv_bn(w, a, b, &cur, WIDTH[l], 1, 1, 0, 1);
            snprintf(a, sizeof a, "layer%d.%d.conv2", l + 1, i);
            snprintf(b, sizeof b, "layer%d.%d.bn2", l + 1, i);
            dmap t2 = ref_conv_bn(w, a, b, &t1, WIDTH[l], 3, stride, 1, 1);
            snprintf(a, sizeof a, "layer%d.%d.conv3", l + 1, i);
            snprintf(b, sizeof b, "layer%d.%d.bn3", l + 1, i);
            dmap t3 = ref_conv_bn(w, a, b, &t2, OUT[l], 1, 1, 0, 0);
            snprintf(a, sizeof a, "layer%d.%d.downsample.0.weight", l + 1, i);
            dmap idn = cur;
            int has_down = saa_weights_find(w, a) != NULL;
            if (has_down) {
                snprintf(a, sizeof a, "layer%d.%d.downsample.0", l + 1, i);
                snprintf(b, sizeof b, "layer%d.%d.downsample.1", l + 1, i);
                idn = ref_conv_bn(w, a, b, &cur, OUT[l], 1, stride, 0, 0);
            }
            for (int64_t k = 0; k < t3.C * t3.H * t3.W; k++) {
                double v = t3.d[k] + idn.d[k];
                t3.d[k] = v > 0 ? v : 0;
            }
            if (has_down) free(idn.d);
            free(t1.d);
            free(t2.d);
            free(cur.d);
            cur = t3;
        }
        out[l] = dmap_new(cur.C, cur.H, cur.W);
        memcpy(out[l].d, cur.d, sizeof(double) * (size_t)(cur.C * cur.H * cur.W));
    }
    free(cur.d);
}

/* fused[p][c] in double from the library's float layer outputs: nearest (exact integer form; the sizes
 * here have no float-rounding boundary), concatenation, L2 normalisation */
static double *ref_fused(const saa_wrn_features *f)
{
    int64_t H0 = f->H[0], W0 = f->W[0], C = f->fused_C;
    double *F = calloc((size_t)(H0 * W0 * C), sizeof(double));
    for (int64_t y = 0; y < H0; y++)
        for (int64_t x = 0; x < W0; x++) {
            double *o = F + (y * W0 + x) * C, ss = 0;
            int64_t k = 0;
            for (int l = 0; l < 3; l++) {
                int64_t sy = y * f->H[l] / H0, sx = x * f->W[l] / W0;
                for (int64_t c = 0; c < f->C[l]; c++, k++)
                    o[k] = f->layer[l][(c * f->H[l] + sy) * f->W[l] + sx];
            }
            for (k = 0; k < C; k++) ss += o[k] * o[k];
            double n = sqrt(ss) > 1e-12 ? sqrt(ss) : 1e-12;
            for (k = 0; k < C; k++) o[k] /= n;
        }
    return F;
}

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static double dot(const double *a, const double *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* saa_wrn_multi_map against the official loops of region_feature_extraction in double (F: fused, [hw, C]). */
static void check_multi_map(const saa_wrn_features *f, const double *F, const uint8_t *masks, int nm)
{
    int64_t hw = f->H[0] * f->W[0], C = f->fused_C;
    double *scores = malloc(sizeof(double) * (size_t)(nm * hw)), *map = malloc(sizeof(double) * (size_t)hw);
    CHECK(saa_wrn_multi_map(f, masks, nm, scores, map) == SAA_OK);
    double *ref_obj = calloc((size_t)(nm * hw), sizeof(double)), *zero = calloc((size_t)C, sizeof(double));
    for (int i = 0; i < nm; i++)
        for (int64_t p = 0; p < hw; p++) {
            if (!masks[i * hw + p]) continue;
            double best = -INFINITY;
            for (int j = 0; j < nm; j++)
                for (int64_t q = 0; j != i && q < hw; q++) {
                    if (!masks[j * hw + q]) continue;
                    const double *v = masks[i * hw + q] ? zero : F + q * C; /* features_clone zeroes mask i */
                    double s = dot(F + p * C, v, C);
                    if (s > best) best = s;
                }
            ref_obj[i * hw + p] = 0.5 * (1 - best);
        }
    double err = 0, err_map = 0;
    for (int64_t p = 0; p < hw; p++) {
        double mx = -INFINITY;
        for (int i = 0; i < nm; i++) {
            err = fmax(err, fabs(scores[i * hw + p] - ref_obj[i * hw + p]));
            mx = fmax(mx, ref_obj[i * hw + p]);
        }
        err_map = fmax(err_map, fabs(map[p] - mx));
    }
    if (!(err < 1e-6 && err_map < 1e-6)) fprintf(stderr, "multi map, %d masks: max err %g / %g\n", nm, err, err_map);
    CHECK(err < 1e-6 && err_map < 1e-6);
    free(scores), free(map), free(ref_obj), free(zero);
}

static void synthetic_tests(void)
{
    saa_weights *w = make_weights();
    saa_wrn *m = NULL;
    CHECK(saa_wrn_load(w, "", &m) == SAA_OK);
    if (!m) {
        fprintf(stderr, "load: %s\n", saa_last_error());
        saa_weights_close(w);
        return;
    }
    const int H = 37, W = 45;
    float *x = malloc(sizeof(float) * 3 * H * W);
    for (int i = 0; i < 3 * H * W; i++) x[i] = (float)(urand() * 4 - 2);
    saa_wrn_features f;
    CHECK(saa_wrn_features_compute(m, x, H, W, &f) == SAA_OK);
    dmap ref[3];
    ref_backbone(w, x, H, W, ref);
    for (int l = 0; l < 3; l++) {
        CHECK(f.C[l] == ref[l].C && f.H[l] == ref[l].H && f.W[l] == ref[l].W);
        double err = 0, mag = 0;
        for (int64_t k = 0; k < ref[l].C * ref[l].H * ref[l].W; k++) {
            err = fmax(err, fabs(f.layer[l][k] - ref[l].d[k]));
            mag = fmax(mag, fabs(ref[l].d[k]));
        }
        if (!(err <= 1e-5 * fmax(mag, 1))) fprintf(stderr, "layer%d: max err %g (max %g)\n", l + 1, err, mag);
        CHECK(err <= 1e-5 * fmax(mag, 1) && mag > 0.1);
        free(ref[l].d);
    }
    CHECK(f.H[0] == 10 && f.W[0] == 12 && f.H[2] == 3 && f.W[2] == 3); /* 3 -> 10 and 3 -> 12: non-integer ratios */
    int64_t hw = f.H[0] * f.W[0], C = f.fused_C;
    double *F = ref_fused(&f);
    float *g = malloc(sizeof(float) * (size_t)(hw * C));
    saa_wrn_fused_gather(&f, NULL, 0, hw, g);
    double err = 0;
    for (int64_t k = 0; k < hw * C; k++) err = fmax(err, fabs(g[k] - F[k]));
    CHECK(err < 1e-6);
    int64_t pix[3] = {hw - 1, 0, 37};
    saa_wrn_fused_gather(&f, pix, 0, 3, g);
    err = 0;
    for (int i = 0; i < 3; i++)
        for (int64_t c = 0; c < C; c++) err = fmax(err, fabs(g[i * C + c] - F[pix[i] * C + c]));
    CHECK(err < 1e-6);

    /* single-instance heat, two top_n: a partial and more than the pixel count */
    double *row = malloc(sizeof(double) * (size_t)hw);
    float *heat = malloc(sizeof(float) * (size_t)hw), *S = malloc(sizeof(float) * (size_t)(5 * hw));
    int tops[2] = {7, 1000};
    for (int t = 0; t < 2; t++) {
        CHECK(saa_wrn_single_heat(&f, tops[t], heat) == SAA_OK);
        err = 0;
        for (int64_t p = 0; p < hw; p++) {
            for (int64_t q = 0; q < hw; q++) row[q] = 0.5 * (1 - dot(F + p * C, F + q * C, C));
            qsort(row, (size_t)hw, sizeof *row, cmp_desc);
            int64_t k = tops[t] < hw ? tops[t] : hw;
            double s = 0;
            for (int64_t i = 0; i < k; i++) s += row[i];
            err = fmax(err, fabs(heat[p] - s / (double)k));
        }
        if (!(err < 2e-6)) fprintf(stderr, "heat top %d: max err %g\n", tops[t], err);
        CHECK(err < 2e-6);
    }
    CHECK(saa_wrn_self_similarity_rows(&f, 3, 5, S) == SAA_OK);
    err = 0;
    for (int64_t r = 0; r < 5; r++)
        for (int64_t q = 0; q < hw; q++) err = fmax(err, fabs(S[r * hw + q] - 0.5 * (1 - dot(F + (3 + r) * C, F + q * C, C))));
    CHECK(err < 1e-6);

    /* multi-instance: three overlapping rectangles on the 10x12 grid */
    const int nm = 3;
    uint8_t *masks = calloc((size_t)(nm * hw), 1);
    int rect[3][4] = {{0, 0, 5, 6}, {3, 4, 9, 11}, {6, 0, 10, 3}}; /* y0, x0, y1, x1 (exclusive) */
    for (int i = 0; i < nm; i++)
        for (int y = rect[i][0]; y < rect[i][2]; y++)
            for (int xx = rect[i][1]; xx < rect[i][3]; xx++) masks[i * hw + y * f.W[0] + xx] = 1;
    double *map = malloc(sizeof(double) * (size_t)hw);
    check_multi_map(&f, F, masks, nm);
    /* more objects than one 64-bit word of mask bits: 70 random masks of ~6 pixels each, overlapping */
    const int nm70 = 70;
    uint8_t *masks70 = calloc((size_t)(nm70 * hw), 1);
    for (int i = 0; i < nm70; i++) {
        masks70[i * hw + (i * 17) % hw] = 1;
        for (int64_t p = 0; p < hw; p++)
            if (urand() < 0.05) masks70[i * hw + p] = 1;
    }
    check_multi_map(&f, F, masks70, nm70);
    free(masks70);
    /* official crash cases are errors here */
    CHECK(saa_wrn_multi_map(&f, masks, 1, NULL, map) != SAA_OK);
    memset(masks + hw, 0, (size_t)hw);
    CHECK(saa_wrn_multi_map(&f, masks, nm, NULL, map) != SAA_OK && strstr(saa_last_error(), "mask 1 is empty"));

    /* preprocess: ResizeLongestSide to 64 of a 30x20 image pads rows 43..63 with zeros */
    uint8_t img[20 * 30 * 3];
    for (int i = 0; i < 20 * 30 * 3; i++) img[i] = (uint8_t)(urand() * 256);
    float *px = malloc(sizeof(float) * 3 * 64 * 64);
    uint8_t *rs = malloc(43 * 64 * 3);
    double ratio[2];
    CHECK(saa_wrn_preprocess(img, 30, 20, 64, px, ratio) == SAA_OK);
    CHECK(ratio[0] == 43.0 / 64 && ratio[1] == 1.0);
    CHECK(saa_resize_pil_bilinear_u8(img, 30, 20, 3, rs, 64, 43) == SAA_OK);
    const double mean[3] = {0.485 * 255, 0.456 * 255, 0.406 * 255}, sd[3] = {0.229 * 255, 0.224 * 255, 0.225 * 255};
    err = 0;
    int pad_ok = 1;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 64; y++)
            for (int xx = 0; xx < 64; xx++) {
                float v = px[(c * 64 + y) * 64 + xx];
                if (y >= 43) pad_ok &= v == 0.0f;
                else err = fmax(err, fabs(v - (rs[(y * 64 + xx) * 3 + c] - mean[c]) / sd[c]));
            }
    CHECK(pad_ok && err < 1e-5);

    /* a checkpoint missing a BatchNorm tensor is refused with the name */
    saa_weights *broken = saa_weights_alloc("broken");
    add_conv_bn(broken, "conv1", "bn1", 8, 3, 7);
    saa_wrn *bm = NULL;
    CHECK(saa_wrn_load(broken, "", &bm) != SAA_OK && bm == NULL && strstr(saa_last_error(), "layer1.0"));
    saa_weights_close(broken);

    free(px);
    free(rs);
    free(map);
    free(masks);
    free(row);
    free(heat);
    free(S);
    free(g);
    free(F);
    free(x);
    saa_wrn_features_free(&f);
    saa_wrn_free(m);
    saa_weights_close(w);
}

/* ---------- saa_e2e checkpoint vs its stored saliency maps ---------- */

static void e2e_tests(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/wrn.pth", dir);
    saa_weights *w;
    CHECK(saa_weights_open(path, &w) == SAA_OK);
    saa_wrn *m = NULL;
    CHECK(saa_wrn_load(w, "", &m) == SAA_OK);
    saa_weights_close(w);
    snprintf(path, sizeof path, "%s/golden.safetensors", dir);
    saa_weights *gold = NULL;
    CHECK(saa_weights_open(path, &gold) == SAA_OK);
    if (!m || !gold) {
        saa_wrn_free(m);
        saa_weights_close(gold);
        return;
    }
    /* img0: object_number 1 (single-instance); img1: object_number 4 (multi-instance), 5 masks */
    const int object_number[2] = {1, 4};
    for (int k = 0; k < 2; k++) {
        char name[64];
        snprintf(path, sizeof path, "%s/image%d.png", dir, k);
        saa_image img;
        CHECK(saa_image_load(path, &img) == SAA_OK);
        saa_image_swap_rb(&img);
        snprintf(name, sizeof name, "img%d.obj.masks", k);
        const saa_tensor *mk = saa_weights_find(gold, name);
        snprintf(name, sizeof name, "img%d.saliency.map", k);
        const saa_tensor *ref = saa_weights_find(gold, name);
        CHECK(mk && ref && mk->shape[1] == img.h && mk->shape[2] == img.w);
        if (mk && ref) {
            int n = (int)mk->shape[0], is_f32 = -1;
            double *out = malloc(sizeof(double) * (size_t)img.w * img.h);
            CHECK(saa_wrn_saliency(m, img.data, img.w, img.h, mk->data, n, object_number[k], out, &is_f32) == SAA_OK);
            CHECK(is_f32 == (object_number[k] == 1));
            double err = 0;
            for (int64_t p = 0; p < (int64_t)img.w * img.h; p++) err = fmax(err, fabs(out[p] - saa_tensor_get(ref, p)));
            printf("saa_e2e img%d saliency: max_abs %.3g\n", k, err);
            CHECK(err <= 5e-6);
            free(out);
        }
        saa_image_free(&img);
    }
    saa_weights_close(gold);
    saa_wrn_free(m);
}

int main(void)
{
    synthetic_tests();
    const char *dir = SAA_SHARED_DIR "/golden/saa_e2e";
    char probe[512];
    snprintf(probe, sizeof probe, "%s/wrn.pth", dir);
    if (!test_exists(probe)) {
        printf("%s not found: saa_e2e part skipped\n", probe);
        if (test_failed) TEST_MAIN_END();
        return 77;
    }
    e2e_tests(dir);
    TEST_MAIN_END();
}
