/* Image I/O and resize kernels: golden PIL resizes (sam_tiny, gdino_tiny), committed PIL/OpenCV
 * reference outputs (tests/data/resize, made by scripts/make-resize-refs.py), PNG/JPEG round trips
 * and corrupt-file handling. */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "saa/image.h"
#include "saa/tensor.h"
#include "saa/weights.h"
#include "test.h"

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int slot;
    slot = (slot + 1) % 4;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", tmpdir, name);
    return buf[slot];
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot create %s\n", path);
        exit(1);
    }
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(len > 0 ? (size_t)len : 1);
    *n = fread(buf, 1, (size_t)len, f);
    fclose(f);
    return buf;
}

/* Counts differing bytes. */
static long count_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    long d = 0;
    for (size_t i = 0; i < n; i++) d += a[i] != b[i];
    return d;
}

/* ---------- golden PIL resizes ---------- */

static int test_golden_sam(void)
{
    const char *dir = SAA_SHARED_DIR "/golden/sam_tiny";
    char path[512];
    snprintf(path, sizeof path, "%s/golden.safetensors", dir);
    if (!test_exists(path)) return 0;
    saa_weights *g = NULL;
    CHECK(saa_weights_open(path, &g) == SAA_OK);
    if (!g) return 1;
    const saa_tensor *img = saa_weights_find(g, "preprocess.image_u8");
    const saa_tensor *r1 = saa_weights_find(g, "preprocess.resized_u8");
    const saa_tensor *r2 = saa_weights_find(g, "preprocess.resized_alt_u8");
    CHECK(img && r1 && r2);
    if (img && r1 && r2) {
        int h = (int)img->shape[0], w = (int)img->shape[1];
        CHECK(h == 97 && w == 131 && img->shape[2] == 3);
        /* image.png decodes to the stored pixels */
        snprintf(path, sizeof path, "%s/image.png", dir);
        saa_image im;
        CHECK(saa_image_load(path, &im) == SAA_OK);
        CHECK(im.w == w && im.h == h && im.c == 3);
        if (im.data && im.w == w && im.h == h) CHECK(count_diff(im.data, img->data, (size_t)w * h * 3) == 0);
        saa_image_free(&im);

        const saa_tensor *refs[2] = {r1, r2};
        for (int k = 0; k < 2; k++) {
            int oh = (int)refs[k]->shape[0], ow = (int)refs[k]->shape[1];
            uint8_t *out = malloc((size_t)ow * oh * 3);
            CHECK(saa_resize_pil_bilinear_u8(img->data, w, h, 3, out, ow, oh) == SAA_OK);
            long d = count_diff(out, refs[k]->data, (size_t)ow * oh * 3);
            if (d) fprintf(stderr, "sam_tiny resize %dx%d: %ld bytes differ\n", oh, ow, d);
            CHECK(d == 0);
            free(out);
        }
    }
    saa_weights_close(g);
    return 1;
}

static int test_golden_gdino(void)
{
    const char *dir = SAA_SHARED_DIR "/golden/gdino_tiny";
    char path[512];
    snprintf(path, sizeof path, "%s/golden.safetensors", dir);
    if (!test_exists(path)) return 0;
    saa_weights *g = NULL;
    CHECK(saa_weights_open(path, &g) == SAA_OK);
    if (!g) return 1;
    const saa_tensor *ref = saa_weights_find(g, "image.resized_u8");
    CHECK(ref != NULL);
    snprintf(path, sizeof path, "%s/image.png", dir);
    saa_image im;
    CHECK(saa_image_load(path, &im) == SAA_OK);
    if (ref && im.data) {
        /* README: 150x203 image, RandomResize([96], max_size=160) -> 96x129 */
        CHECK(im.h == 150 && im.w == 203);
        int oh = (int)ref->shape[0], ow = (int)ref->shape[1];
        CHECK(oh == 96 && ow == 129);
        uint8_t *out = malloc((size_t)ow * oh * 3);
        CHECK(saa_resize_pil_bilinear_u8(im.data, im.w, im.h, 3, out, ow, oh) == SAA_OK);
        long d = count_diff(out, ref->data, (size_t)ow * oh * 3);
        if (d) fprintf(stderr, "gdino_tiny resize: %ld bytes differ\n", d);
        CHECK(d == 0);
        free(out);
    }
    saa_image_free(&im);
    saa_weights_close(g);
    return 1;
}

/* ---------- PIL resize against a brute-force transcription of the README P2 formula ---------- */

static void pil_axis_weights(int in, int out, int o, int *xmin, int *n, int32_t *k)
{
    double scale = (double)in / out, fs = scale > 1 ? scale : 1, center = (o + 0.5) * scale;
    int lo = (int)(center - fs + 0.5), hi = (int)(center + fs + 0.5);
    if (lo < 0) lo = 0;
    if (hi > in) hi = in;
    double w[512], sum = 0;
    for (int j = lo; j < hi; j++) {
        double t = fabs((j - center + 0.5) * (1.0 / fs));
        w[j - lo] = t < 1 ? 1 - t : 0;
        sum += w[j - lo];
    }
    for (int j = 0; j < hi - lo; j++) k[j] = (int32_t)(w[j] / sum * (1 << 22) + 0.5);
    *xmin = lo, *n = hi - lo;
}

static void pil_brute(const uint8_t *src, int w, int h, int c, uint8_t *dst, int ow, int oh)
{
    uint8_t *tmp = malloc((size_t)ow * h * c);
    int32_t k[512];
    for (int x = 0; x < ow; x++) {
        int lo, n;
        pil_axis_weights(w, ow, x, &lo, &n, k);
        for (int y = 0; y < h; y++)
            for (int ch = 0; ch < c; ch++) {
                int64_t acc = 1 << 21;
                for (int j = 0; j < n; j++) acc += (int64_t)k[j] * src[((size_t)y * w + lo + j) * c + ch];
                acc >>= 22;
                tmp[((size_t)y * ow + x) * c + ch] = (uint8_t)(ow == w ? src[((size_t)y * w + x) * c + ch]
                                                               : acc < 0 ? 0 : acc > 255 ? 255 : acc);
            }
    }
    for (int y = 0; y < oh; y++) {
        int lo, n;
        pil_axis_weights(h, oh, y, &lo, &n, k);
        for (int x = 0; x < ow; x++)
            for (int ch = 0; ch < c; ch++) {
                int64_t acc = 1 << 21;
                for (int j = 0; j < n; j++) acc += (int64_t)k[j] * tmp[((size_t)(lo + j) * ow + x) * c + ch];
                acc >>= 22;
                dst[((size_t)y * ow + x) * c + ch] = (uint8_t)(oh == h ? tmp[((size_t)y * ow + x) * c + ch]
                                                               : acc < 0 ? 0 : acc > 255 ? 255 : acc);
            }
    }
    free(tmp);
}

static void test_pil_brute(void)
{
    static const int sizes[][4] = {{1, 1, 5, 3}, {7, 5, 3, 2}, {97, 13, 7, 13}, {13, 97, 13, 7},
                                   {10, 10, 25, 17}, {31, 17, 1, 1}, {1, 9, 4, 30}, {64, 48, 63, 47}};
    uint32_t seed = 12345;
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        int w = sizes[t][0], h = sizes[t][1], ow = sizes[t][2], oh = sizes[t][3];
        for (int c = 1; c <= 3; c += 2) {
            uint8_t *src = malloc((size_t)w * h * c), *a = malloc((size_t)ow * oh * c), *b = malloc((size_t)ow * oh * c);
            for (int i = 0; i < w * h * c; i++) {
                seed = seed * 1664525u + 1013904223u;
                src[i] = (uint8_t)(seed >> 24);
            }
            CHECK(saa_resize_pil_bilinear_u8(src, w, h, c, a, ow, oh) == SAA_OK);
            pil_brute(src, w, h, c, b, ow, oh);
            long d = count_diff(a, b, (size_t)ow * oh * c);
            if (d) fprintf(stderr, "pil brute %dx%d -> %dx%d c%d: %ld differ\n", w, h, ow, oh, c, d);
            CHECK(d == 0);
            free(src), free(a), free(b);
        }
    }
}

/* ---------- committed PIL / OpenCV references (scripts/make-resize-refs.py) ---------- */

static uint32_t lcg_next(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s;
}

static unsigned rd16(const unsigned char *p) { return p[0] | p[1] << 8; }
static uint32_t rd32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

static void test_resize_refs(void)
{
    size_t n = 0;
    unsigned char *buf = read_bytes(SAA_TEST_DATA "/resize/refs.bin", &n);
    CHECK(buf != NULL && n > 12 && memcmp(buf, "SAARSZ01", 8) == 0);
    if (!buf || n < 12) {
        free(buf);
        return;
    }
    uint32_t count = rd32(buf + 8);
    size_t pos = 12;
    /* per (lib, dtype, interp): cases, exact cases, worst abs / relative error */
    int cases[2][4][3] = {{{0}}}, exact[2][4][3] = {{{0}}};
    double worst_abs[2][4][3] = {{{0}}}, worst_rel[2][4][3] = {{{0}}};
    uint32_t k;
    for (k = 0; k < count && pos + 18 <= n; k++) {
        const unsigned char *hd = buf + pos;
        int lib = hd[0], dt = hd[1], interp = hd[2], vrange = hd[3];
        int w = (int)rd16(hd + 4), h = (int)rd16(hd + 6), c = (int)rd16(hd + 8), ow = (int)rd16(hd + 10),
            oh = (int)rd16(hd + 12);
        uint32_t seed = rd32(hd + 14);
        size_t nin = (size_t)w * h * c, nout = (size_t)ow * oh * c, esz = dt == 0 ? 1 : dt == 2 ? 8 : 4;
        pos += 18;
        if (lib > 1 || dt > 3 || interp > 2 || pos + nout * esz > n) break;
        const unsigned char *ref = buf + pos;
        pos += nout * esz;
        int ci = lib == 0 ? 1 : interp;
        cases[lib][dt][ci]++;
        if (dt == 0) {
            uint8_t *in = malloc(nin), *out = malloc(nout);
            for (size_t i = 0; i < nin; i++) in[i] = (uint8_t)(lcg_next(&seed) >> 24);
            int rc = lib == 0 ? saa_resize_pil_bilinear_u8(in, w, h, c, out, ow, oh)
                              : saa_resize_cv_u8(in, w, h, c, out, ow, oh, (saa_cv_interp)interp);
            CHECK(rc == SAA_OK);
            long d = 0;
            int maxd = 0;
            for (size_t i = 0; i < nout; i++) {
                int e = abs((int)out[i] - (int)ref[i]);
                d += e != 0;
                if (e > maxd) maxd = e;
            }
            if (d)
                fprintf(stderr, "%s u8 interp %d %dx%dx%d -> %dx%d: %ld of %zu differ (max %d)\n",
                        lib ? "cv2" : "PIL", interp, w, h, c, ow, oh, d, nout, maxd);
            CHECK(d == 0);
            exact[lib][dt][ci] += d == 0;
            if (maxd > worst_abs[lib][dt][ci]) worst_abs[lib][dt][ci] = maxd;
            free(in), free(out);
        } else if (dt == 3) { /* int32 masks, INTER_NEAREST through the any-pixel-size gather */
            int32_t *in = malloc(nin * 4), *out = malloc(nout * 4);
            for (size_t i = 0; i < nin; i++) in[i] = (int32_t)lcg_next(&seed);
            CHECK(saa_resize_cv_nearest(in, w, h, (size_t)c * 4, out, ow, oh) == SAA_OK);
            int same = memcmp(out, ref, nout * 4) == 0;
            if (!same) fprintf(stderr, "cv2 i32 nearest %dx%d -> %dx%d differs\n", w, h, ow, oh);
            CHECK(same);
            exact[lib][dt][ci] += same;
            free(in), free(out);
        } else if (dt == 2) {
            double *in = malloc(nin * sizeof *in), *out = malloc(nout * sizeof *out);
            for (size_t i = 0; i < nin; i++) {
                uint32_t hi = lcg_next(&seed), lo = lcg_next(&seed);
                double top = vrange == 0 ? (double)(int32_t)hi : (double)hi;
                in[i] = (top + (double)lo / 4294967296.0) / (vrange == 0 ? 268435456.0 : 4294967296.0);
            }
            CHECK(saa_resize_cv_f64(in, w, h, c, out, ow, oh, (saa_cv_interp)interp) == SAA_OK);
            double max_abs = 0;
            long d = 0;
            for (size_t i = 0; i < nout; i++) {
                double r;
                memcpy(&r, ref + 8 * i, 8);
                d += out[i] != r;
                if (fabs(out[i] - r) > max_abs) max_abs = fabs(out[i] - r);
            }
            if (d)
                fprintf(stderr, "cv2 f64 interp %d %dx%d -> %dx%d: %ld of %zu differ, max abs %g\n", interp, w, h, ow,
                        oh, d, nout, max_abs);
            CHECK(d == 0);
            exact[lib][dt][ci] += d == 0;
            if (max_abs > worst_abs[lib][dt][ci]) worst_abs[lib][dt][ci] = max_abs;
            free(in), free(out);
        } else {
            float *in = malloc(nin * sizeof *in), *out = malloc(nout * sizeof *out);
            for (size_t i = 0; i < nin; i++) {
                uint32_t v = lcg_next(&seed);
                in[i] = vrange == 0 ? (float)(int32_t)v / 268435456.0f : (float)v / 4294967296.0f;
            }
            CHECK(saa_resize_cv_f32(in, w, h, c, out, ow, oh, (saa_cv_interp)interp) == SAA_OK);
            double max_abs = 0, max_ref = 0;
            long d = 0;
            for (size_t i = 0; i < nout; i++) {
                float r;
                memcpy(&r, ref + 4 * i, 4);
                double e = fabs((double)out[i] - (double)r);
                d += out[i] != r;
                if (e > max_abs) max_abs = e;
                if (fabs(r) > max_ref) max_ref = fabs(r);
            }
            double rel = max_abs / (max_ref > 0 ? max_ref : 1);
            /* float32 contract: within 1e-6 of the reference's scale (we aim for, and report, bit-exactness) */
            if (rel > 1e-6)
                fprintf(stderr, "cv2 f32 interp %d %dx%dx%d -> %dx%d: %ld of %zu differ, max abs %g (rel %g)\n",
                        interp, w, h, c, ow, oh, d, nout, max_abs, rel);
            CHECK(rel <= 1e-6);
            CHECK(d == 0); /* and in practice bit-exact: same operations in the same order */
            exact[lib][dt][ci] += d == 0;
            if (max_abs > worst_abs[lib][dt][ci]) worst_abs[lib][dt][ci] = max_abs;
            if (rel > worst_rel[lib][dt][ci]) worst_rel[lib][dt][ci] = rel;
            free(in), free(out);
        }
    }
    CHECK(k == count && pos == n);
    static const char *names[3] = {"nearest", "linear", "cubic"}, *dtypes[4] = {"u8", "f32", "f64", "i32"};
    for (int lib = 0; lib < 2; lib++)
        for (int dt = 0; dt < 4; dt++)
            for (int ci = 0; ci < 3; ci++)
                if (cases[lib][dt][ci])
                    printf("resize refs %s %s %s: %d cases, %d bit-exact, worst abs %g, worst rel %g\n",
                           lib ? "cv2" : "PIL", dtypes[dt], lib ? names[ci] : "bilinear", cases[lib][dt][ci],
                           exact[lib][dt][ci], worst_abs[lib][dt][ci], worst_rel[lib][dt][ci]);
    free(buf);
}

/* ---------- decoding vs cv2.imread (scripts/make-image-refs.py) ---------- */

static uint64_t fnv1a64(const uint8_t *p, size_t n)
{
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001B3ull;
    return h;
}

static void test_decode_refs(void)
{
    FILE *f = fopen(SAA_TEST_DATA "/image/refs.txt", "r");
    CHECK(f != NULL);
    if (!f) return;
    char where[16], rel[256], mode[16], line[512];
    int total = 0, shared_skipped = 0, matched = 0;
    int have_shared = test_exists(SAA_SHARED_DIR "/data/mtd-mini");
    while (fgets(line, sizeof line, f)) {
        int w, h, c;
        unsigned long long want;
        if (sscanf(line, "%15s %255s %15s %d %d %d %llx", where, rel, mode, &w, &h, &c, &want) != 7) continue;
        total++;
        char path[600];
        if (!strcmp(where, "shared")) {
            if (!have_shared) {
                shared_skipped++;
                continue;
            }
            snprintf(path, sizeof path, "%s/%s", SAA_SHARED_DIR, rel);
        } else {
            snprintf(path, sizeof path, "%s/image/%s", SAA_TEST_DATA, rel);
        }
        uint64_t got = 0;
        int gw = -1, gh = -1, gc = -1, rc;
        if (!strcmp(mode, "gray16")) {
            uint16_t *v = NULL;
            rc = saa_image_load_gray16(path, &gw, &gh, &v);
            if (rc == SAA_OK) {
                gc = 1;
                uint8_t *le = malloc((size_t)gw * gh * 2);
                for (size_t i = 0; i < (size_t)gw * gh; i++) le[2 * i] = (uint8_t)v[i], le[2 * i + 1] = (uint8_t)(v[i] >> 8);
                got = fnv1a64(le, (size_t)gw * gh * 2);
                free(le);
            }
            free(v);
        } else {
            saa_image im;
            rc = !strcmp(mode, "rgb") ? saa_image_load(path, &im) : saa_image_load_gray(path, &im);
            if (rc == SAA_OK) {
                gw = im.w, gh = im.h, gc = im.c;
                got = fnv1a64(im.data, (size_t)im.w * im.h * im.c);
            }
            saa_image_free(&im);
        }
        int ok = rc == SAA_OK && gw == w && gh == h && gc == c && got == want;
        if (!ok)
            fprintf(stderr, "%s (%s): rc %d %s, %dx%dx%d hash %016llx, cv2 gives %dx%dx%d hash %016llx\n", rel, mode,
                    rc, rc ? saa_last_error() : "", gw, gh, gc, (unsigned long long)got, w, h, c, want);
        CHECK(ok);
        matched += ok;
    }
    fclose(f);
    CHECK(total > 100);
    printf("decode refs: %d of %d match cv2.imread%s\n", matched, total - shared_skipped,
           shared_skipped ? " (mtd-mini absent: its entries not checked)" : "");
}

/* ---------- PNG round trips and corrupt files ---------- */

static void test_png_roundtrip(void)
{
    enum { W = 37, H = 23 };
    uint8_t rgba[W * H * 4];
    uint16_t g16[W * H];
    for (int i = 0; i < W * H * 4; i++) rgba[i] = (uint8_t)(i * 7 + (i >> 5));
    for (int i = 0; i < W * H; i++) g16[i] = (uint16_t)(i * 977 + 13);

    /* RGB */
    CHECK(saa_png_save_u8(tmp_path("rgb.png"), rgba, W, H, 3) == SAA_OK);
    saa_image im;
    CHECK(saa_image_load(tmp_path("rgb.png"), &im) == SAA_OK);
    CHECK(im.w == W && im.h == H && im.c == 3);
    if (im.data) CHECK(count_diff(im.data, rgba, W * H * 3) == 0);
    saa_image_swap_rb(&im);
    if (im.data) CHECK(im.data[0] == rgba[2] && im.data[2] == rgba[0] && im.data[4] == rgba[4]);
    saa_image_free(&im);

    /* RGBA: alpha dropped */
    CHECK(saa_png_save_u8(tmp_path("rgba.png"), rgba, W, H, 4) == SAA_OK);
    CHECK(saa_image_load(tmp_path("rgba.png"), &im) == SAA_OK);
    int ok = im.data != NULL && im.c == 3;
    for (int i = 0; ok && i < W * H; i++)
        for (int ch = 0; ch < 3; ch++) ok &= im.data[i * 3 + ch] == rgba[i * 4 + ch];
    CHECK(ok);
    saa_image_free(&im);

    /* gray8: loads as gray, and as RGB with the value replicated */
    CHECK(saa_png_save_u8(tmp_path("g8.png"), rgba, W, H, 1) == SAA_OK);
    CHECK(saa_image_load_gray(tmp_path("g8.png"), &im) == SAA_OK);
    CHECK(im.c == 1 && im.data && count_diff(im.data, rgba, W * H) == 0);
    saa_image_free(&im);
    CHECK(saa_image_load(tmp_path("g8.png"), &im) == SAA_OK);
    ok = im.data != NULL;
    for (int i = 0; ok && i < W * H; i++) ok &= im.data[3 * i] == rgba[i] && im.data[3 * i + 2] == rgba[i];
    CHECK(ok);
    saa_image_free(&im);

    /* gray16: exact through load_gray16, >> 8 through the 8-bit loaders (cv2 rule) */
    CHECK(saa_png_save_gray16(tmp_path("g16.png"), g16, W, H) == SAA_OK);
    int w, h;
    uint16_t *v = NULL;
    CHECK(saa_image_load_gray16(tmp_path("g16.png"), &w, &h, &v) == SAA_OK);
    CHECK(w == W && h == H && v && memcmp(v, g16, sizeof g16) == 0);
    free(v);
    CHECK(saa_image_load_gray(tmp_path("g16.png"), &im) == SAA_OK);
    ok = im.data != NULL;
    for (int i = 0; ok && i < W * H; i++) ok &= im.data[i] == g16[i] >> 8;
    CHECK(ok);
    saa_image_free(&im);
    CHECK(saa_image_load_gray16(tmp_path("g8.png"), &w, &h, &v) == SAA_OK);
    ok = v != NULL;
    for (int i = 0; ok && i < W * H; i++) ok &= v[i] == rgba[i];
    CHECK(ok);
    free(v);

    /* colour -> gray: libpng rgb_to_gray(0.299, 0.587) on a few hand-checked pixels */
    uint8_t px[4 * 3] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 200, 100, 50};
    CHECK(saa_png_save_u8(tmp_path("px.png"), px, 4, 1, 3) == SAA_OK);
    CHECK(saa_image_load_gray(tmp_path("px.png"), &im) == SAA_OK);
    /* cv2.imread(..., IMREAD_GRAYSCALE) on this file gives 76 149 29 124 (cv2.cvtColor and PIL "L" would give 150 for pure green) */
    if (im.data) CHECK(im.data[0] == 76 && im.data[1] == 149 && im.data[2] == 29 && im.data[3] == 124);
    saa_image_free(&im);
}

static void expect_load_error(const char *path, const char *what)
{
    saa_image im;
    saa_clear_error();
    int rc = saa_image_load(path, &im);
    CHECK(rc != SAA_OK);
    CHECK(im.data == NULL);
    const char *msg = saa_last_error();
    CHECK(strstr(msg, path) != NULL);
    CHECK(strchr(msg, '\n') == NULL);
    if (rc == SAA_OK || !strstr(msg, path)) fprintf(stderr, "%s: rc %d msg '%s'\n", what, rc, msg);
    saa_image_free(&im);
    rc = saa_image_load_gray(path, &im);
    CHECK(rc != SAA_OK && im.data == NULL);
    uint16_t *v = (uint16_t *)1;
    int w, h;
    CHECK(saa_image_load_gray16(path, &w, &h, &v) != SAA_OK && v == NULL);
}

static void test_corrupt(void)
{
    expect_load_error(tmp_path("does-not-exist.png"), "missing");
    write_bytes(tmp_path("empty.png"), "", 0);
    expect_load_error(tmp_path("empty.png"), "empty");
    const char garbage[] = "this is not an image at all, just some text bytes";
    write_bytes(tmp_path("garbage.png"), garbage, sizeof garbage);
    expect_load_error(tmp_path("garbage.png"), "garbage");

    size_t n = 0;
    unsigned char *png = read_bytes(tmp_path("rgb.png"), &n);
    CHECK(png != NULL && n > 100);
    if (png) {
        write_bytes(tmp_path("trunc.png"), png, n / 2);
        expect_load_error(tmp_path("trunc.png"), "truncated png");
        write_bytes(tmp_path("trunc2.png"), png, 20); /* inside IHDR */
        expect_load_error(tmp_path("trunc2.png"), "truncated png header");
        png[n / 2] ^= 0x5A; /* corrupt IDAT payload: CRC / zlib error */
        write_bytes(tmp_path("flip.png"), png, n);
        expect_load_error(tmp_path("flip.png"), "corrupt png");
        free(png);
    }

    unsigned char *jpg = read_bytes(SAA_TEST_DATA "/image/progressive.jpg", &n);
    CHECK(jpg != NULL && n > 200);
    if (jpg) {
        write_bytes(tmp_path("trunc.jpg"), jpg, n / 2);
        expect_load_error(tmp_path("trunc.jpg"), "truncated progressive jpeg");
        write_bytes(tmp_path("trunc3.jpg"), jpg, 3); /* signature only */
        expect_load_error(tmp_path("trunc3.jpg"), "jpeg signature only");
        free(jpg);
    }
    jpg = read_bytes(SAA_TEST_DATA "/image/color420.jpg", &n);
    CHECK(jpg != NULL && n > 200);
    if (jpg) {
        write_bytes(tmp_path("trunc2.jpg"), jpg, n - 100); /* inside the entropy-coded scan */
        expect_load_error(tmp_path("trunc2.jpg"), "truncated baseline jpeg");
        unsigned char garbage_jpg[64];
        memcpy(garbage_jpg, jpg, 4);
        for (int i = 4; i < 64; i++) garbage_jpg[i] = (unsigned char)(i * 37);
        write_bytes(tmp_path("garbage.jpg"), garbage_jpg, sizeof garbage_jpg);
        expect_load_error(tmp_path("garbage.jpg"), "garbage after SOI");
        free(jpg);
    }
}

/* Random truncations and byte flips of valid files: every loader must either succeed with a sane
 * picture or fail with a message naming the file (never crash or leak: the ASan build runs this). */
static void test_mutations(void)
{
    static const char *files[] = {"rgb8_interlaced.png", "palette_trns.png", "gray16.png", "la16.png",
                                  "color420.jpg",        "progressive.jpg",  "exif6.jpg",  "gray.jpg"};
    uint32_t seed = 99;
    int ok = 0, failed = 0, bad = 0;
    for (size_t fi = 0; fi < sizeof files / sizeof files[0]; fi++) {
        char src[512];
        snprintf(src, sizeof src, "%s/image/%s", SAA_TEST_DATA, files[fi]);
        size_t n = 0;
        unsigned char *orig = read_bytes(src, &n);
        if (!orig || n < 16) {
            CHECK(orig != NULL);
            free(orig);
            continue;
        }
        unsigned char *buf = malloc(n);
        for (int it = 0; it < 40; it++) {
            memcpy(buf, orig, n);
            size_t len = n;
            if (it % 3 == 0) len = 8 + lcg_next(&seed) % (n - 8);
            int flips = it % 3 == 0 ? 0 : 1 + (int)(lcg_next(&seed) % 8);
            for (int k = 0; k < flips; k++) buf[lcg_next(&seed) % len] ^= (unsigned char)(1 + lcg_next(&seed) % 255);
            const char *path = tmp_path("mutant.img");
            write_bytes(path, buf, len);
            for (int mode = 0; mode < 3; mode++) {
                saa_image im;
                int w = 0, h = 0, rc;
                uint16_t *v = NULL;
                if (mode == 2) {
                    rc = saa_image_load_gray16(path, &w, &h, &v);
                    free(v);
                } else {
                    rc = mode ? saa_image_load_gray(path, &im) : saa_image_load(path, &im);
                    w = im.w, h = im.h;
                    saa_image_free(&im);
                }
                if (rc == SAA_OK) {
                    ok++;
                    bad += w <= 0 || h <= 0;
                } else {
                    failed++;
                    bad += strstr(saa_last_error(), path) == NULL;
                }
            }
        }
        free(buf), free(orig);
    }
    CHECK(bad == 0);
    CHECK(failed > 0);
    printf("mutations: %d loads succeeded, %d failed cleanly, %d bad\n", ok, failed, bad);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/saa_test_image_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_pil_brute();
    test_resize_refs();
    test_decode_refs();
    test_png_roundtrip();
    test_corrupt();
    test_mutations();
    int had_golden = test_golden_sam();
    had_golden += test_golden_gdino();
    if (!had_golden) printf("note: %s/golden absent, golden resize checks not run\n", SAA_SHARED_DIR);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    TEST_MAIN_END();
}
