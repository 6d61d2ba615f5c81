/* HTML report: base64 and in-memory PNG against independent decoders, a report from hand-set metrics and
 * generated images (balanced tags, every data URI a valid PNG of the declared size with the expected
 * pixels, the official number format, NaN as an em dash, escaping, the worst-item picks in order, the PR
 * step curve's area = AP, the ROC path of a separable set), and bad inputs leaving no report.
 *
 * Also a helper for tests/cli_report_chromium.sh:
 *   test_report --demo DIR        writes DIR/report.html from a generated two-category data set
 *   test_report --png-stats FILE  decodes a PNG, prints "W H COLOURS NONWHITE%", exit 0 if non-trivial
 *   test_report --png-colours FILE RRGGBB...  exit 0 if every colour occurs (within +-12) */
#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "saa/image.h"
#include "saa/metrics.h"
#include "saa/npy.h"
#include "saa/report.h"
#include "saa/tensor.h"
#include "test.h"

#define DASH "\xE2\x80\x94" /* em dash: undefined values */

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    fclose(f);
    if (s) s[n] = 0;
    if (len) *len = (size_t)n;
    return s;
}

/* Independent base64 decoder (RFC 4648 alphabet, '=' padding). Returns -1 on a malformed string. */
static long b64_decode(const char *s, size_t n, uint8_t *out)
{
    if (n % 4) return -1;
    long o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            char c = s[i + k];
            v[k] = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 : c >= '0' && c <= '9'
                   ? c - '0' + 52 : c == '+' ? 62 : c == '/' ? 63 : c == '=' ? -2 : -1;
            if (v[k] == -1) return -1;
        }
        if (v[0] < 0 || v[1] < 0 || (v[2] == -2 && v[3] != -2) || ((v[2] == -2 || v[3] == -2) && i + 4 != n))
            return -1;
        out[o++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
        if (v[2] >= 0) out[o++] = (uint8_t)((v[1] & 15) << 4 | v[2] >> 2);
        if (v[3] >= 0) out[o++] = (uint8_t)((v[2] & 3) << 6 | v[3]);
    }
    return o;
}

/* jet as matplotlib defines it (piecewise linear), independent of the report's formula. */
static void jet_ref(double t, int rgb[3])
{
    double r = t < 0.375 ? 0 : t < 0.625 ? (t - 0.375) * 4 : t < 0.875 ? 1 : 1 - (t - 0.875) * 4;
    double g = t < 0.125 ? 0 : t < 0.375 ? (t - 0.125) * 4 : t < 0.625 ? 1 : t < 0.875 ? 1 - (t - 0.625) * 4 : 0;
    double b = t < 0.125 ? 0.5 + t * 4 : t < 0.375 ? 1 : t < 0.625 ? 1 - (t - 0.375) * 4 : 0;
    rgb[0] = (int)lround(255 * r), rgb[1] = (int)lround(255 * g), rgb[2] = (int)lround(255 * b);
}

/* ---------- tag balance ---------- */

static int is_void(const char *name) { return !strcmp(name, "meta") || !strcmp(name, "img") || !strcmp(name, "br"); }

/* 1 if every start tag (except void elements and "/>") is closed in order; counts elements by name. */
static int tags_balanced(const char *html, int *n_img, int *n_svg, int *n_table)
{
    char stack[256][16];
    int depth = 0;
    *n_img = *n_svg = *n_table = 0;
    for (const char *p = html; (p = strchr(p, '<')); p++) {
        if (p[1] == '!') continue; /* DOCTYPE */
        const char *e = strchr(p, '>');
        if (!e) return 0;
        int closing = p[1] == '/';
        const char *q = p + 1 + closing;
        char name[16];
        int k = 0;
        while (k < 15 && (isalnum((unsigned char)*q))) name[k++] = (char)tolower((unsigned char)*q++);
        name[k] = 0;
        if (!k) return 0;
        if (closing) {
            if (!depth || strcmp(stack[depth - 1], name)) {
                fprintf(stderr, "unbalanced </%s> (open: %s)\n", name, depth ? stack[depth - 1] : "none");
                return 0;
            }
            depth--;
        } else {
            *n_img += !strcmp(name, "img");
            *n_svg += !strcmp(name, "svg");
            *n_table += !strcmp(name, "table");
            if (!is_void(name) && e[-1] != '/') {
                if (depth == 256) return 0;
                strcpy(stack[depth++], name);
            }
        }
        p = e;
    }
    if (depth) fprintf(stderr, "unclosed <%s>\n", stack[depth - 1]);
    return depth == 0;
}

/* ---------- data URIs ---------- */

typedef struct {
    int w, h, c;
    uint8_t px[3]; /* first pixel (RGB; gray repeated) */
    int constant;  /* every pixel equal to the first */
} png_info;

/* Decodes the data URI starting at src="data:image/png;base64,... into info (through a temp file and
 * saa_image_load, libpng). Checks the PNG signature and the width/height attributes before it. */
static int decode_uri(const char *tag_start, const char *uri, const char *dir, png_info *info)
{
    const char *b64 = uri + strlen("data:image/png;base64,");
    const char *end = strchr(b64, '"');
    if (!end) return 0;
    size_t n = (size_t)(end - b64);
    uint8_t *bytes = malloc(n);
    long len = b64_decode(b64, n, bytes);
    int ok = len > 8 && !memcmp(bytes, "\x89PNG\r\n\x1a\n", 8);
    char path[512];
    snprintf(path, sizeof path, "%s/uri.png", dir);
    FILE *f = ok ? fopen(path, "wb") : NULL;
    ok = f && fwrite(bytes, 1, (size_t)len, f) == (size_t)len;
    if (f) fclose(f);
    free(bytes);
    saa_image img = {0};
    if (ok) ok = saa_image_load(path, &img) == SAA_OK;
    if (ok) {
        int aw = -1, ah = -1;
        sscanf(tag_start, "<img width=\"%d\" height=\"%d\"", &aw, &ah);
        ok = aw == img.w && ah == img.h;
        info->w = img.w, info->h = img.h;
        memcpy(info->px, img.data, 3);
        info->constant = 1;
        for (size_t i = 0; i < (size_t)img.w * img.h * 3; i++)
            if (img.data[i] != img.data[i % 3]) info->constant = 0;
        saa_image_free(&img);
    }
    remove(path);
    return ok;
}

/* ---------- generated data ---------- */

static uint32_t rng = 12345;
static double urand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (rng >> 8) / 16777216.0;
}

static int write_const_rgb(const char *path, int w, int h, const uint8_t rgb[3])
{
    uint8_t *d = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h; i++) memcpy(d + 3 * i, rgb, 3);
    int rc = saa_png_save_u8(path, d, w, h, 3);
    free(d);
    return rc;
}

static int write_const_mask(const char *path, int w, int h, uint8_t v)
{
    uint8_t *d = malloc((size_t)w * h);
    memset(d, v, (size_t)w * h);
    int rc = saa_png_save_u8(path, d, w, h, 1);
    free(d);
    return rc;
}

static int write_const_map(const char *path, int w, int h, float v)
{
    float *d = malloc(sizeof *d * (size_t)w * h);
    for (int i = 0; i < w * h; i++) d[i] = v;
    int rc = saa_npy_save_f32(path, d, 2, (int64_t[]){h, w});
    free(d);
    return rc;
}

static void metrics_nan(saa_metrics *m)
{
    memset(m, 0, sizeof *m);
    m->image_auroc = m->image_ap = m->image_f1 = m->image_f1_threshold = NAN;
    m->pixel_auroc = m->pixel_ap = m->pixel_f1 = m->pixel_f1_threshold = NAN;
    m->aupro = m->aupro_official = m->f_r = m->f_r_official = NAN;
}

/* A textured image with an optional dark blob; mask = blob; map R x R = blurred blob + noise. */
typedef struct {
    char image[512], gt[512], map[512], pred[512], id[64];
    int label;
    double score;
} demo_item;

static int demo_category(const char *dir, const char *name, int n, int R, int hard, uint8_t base[3], demo_item *items,
                         saa_metrics *m, double *lo_out, double *hi_out)
{
    enum { W = 96, H = 72 };
    double *maps = malloc(sizeof *maps * (size_t)n * R * R);
    uint8_t *masks_r = calloc((size_t)n * R * R, 1);
    int *labels = malloc(sizeof *labels * (size_t)n);
    uint8_t *img = malloc(W * H * 3), *mask = malloc(W * H);
    double lo = INFINITY, hi = -INFINITY;
    int rc = SAA_OK;
    for (int i = 0; i < n && rc == SAA_OK; i++) {
        demo_item *it = &items[i];
        it->label = i % 3 == 0;
        labels[i] = it->label;
        double cx = 0.2 + 0.6 * urand(), cy = 0.2 + 0.6 * urand(), rad = 0.08 + 0.1 * urand();
        /* a hard case now and then: a faint defect, or a normal image with a bright spot */
        double strength = it->label ? (i % 4 == hard ? 0.25 : 0.9) : (i % 5 == hard + 1 ? 0.6 : 0.15);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                double u = (x + 0.5) / W, v = (y + 0.5) / H, d = hypot(u - cx, (v - cy) * H / W);
                int in = it->label && d < rad;
                double tex = 20 * sin(x * 0.7) * cos(y * 0.5) + 10 * urand();
                for (int k = 0; k < 3; k++) {
                    double c = base[k] + tex - (in ? 90 : 0);
                    img[(y * W + x) * 3 + k] = (uint8_t)(c < 0 ? 0 : c > 255 ? 255 : c);
                }
                mask[y * W + x] = in ? 255 : 0;
            }
        double *mp = maps + (size_t)i * R * R;
        for (int y = 0; y < R; y++)
            for (int x = 0; x < R; x++) {
                double u = (x + 0.5) / R, v = (y + 0.5) / R, d = hypot(u - cx, v - cy);
                mp[y * R + x] = strength * exp(-d * d / (2 * rad * rad)) + 0.1 * urand();
                masks_r[(size_t)i * R * R + y * R + x] = it->label && hypot(u - cx, (v - cy) * H / W) < rad;
                lo = fmin(lo, mp[y * R + x]), hi = fmax(hi, mp[y * R + x]);
            }
        snprintf(it->id, sizeof it->id, "%s/%03d", it->label ? "defect" : "good", i);
        snprintf(it->image, sizeof it->image, "%s/%s_%03d.png", dir, name, i);
        snprintf(it->gt, sizeof it->gt, "%s/%s_%03d_gt.png", dir, name, i);
        snprintf(it->map, sizeof it->map, "%s/%s_%03d_map.npy", dir, name, i);
        snprintf(it->pred, sizeof it->pred, "%s/%s_%03d_mask.png", dir, name, i);
        rc = saa_png_save_u8(it->image, img, W, H, 3);
        if (rc == SAA_OK && it->label) rc = saa_png_save_u8(it->gt, mask, W, H, 1);
        float *f = malloc(sizeof *f * (size_t)R * R);
        for (int k = 0; k < R * R; k++) f[k] = (float)mp[k];
        if (rc == SAA_OK) rc = saa_npy_save_f32(it->map, f, 2, (int64_t[]){R, R});
        free(f);
        uint8_t *pm = malloc((size_t)R * R);
        for (int k = 0; k < R * R; k++) pm[k] = mp[k] > 0.5 ? 255 : 0;
        if (rc == SAA_OK) rc = saa_png_save_u8(it->pred, pm, R, R, 1);
        free(pm);
    }
    saa_eval_params p;
    saa_eval_params_default(&p);
    p.resolution = R;
    saa_metric_acc *acc = rc == SAA_OK ? saa_metric_acc_new(&p, lo, hi, 1) : NULL;
    if (rc == SAA_OK && !acc) rc = SAA_ENOMEM;
    for (int i = 0; i < n && rc == SAA_OK; i++)
        rc = saa_metric_acc_add(acc, maps + (size_t)i * R * R, masks_r + (size_t)i * R * R, labels[i]);
    if (rc == SAA_OK)
        rc = saa_metric_acc_finish(acc, m);
    else
        saa_metric_acc_free(acc);
    if (rc == SAA_OK)
        for (int i = 0; i < n; i++) items[i].score = m->image_scores[i];
    *lo_out = lo, *hi_out = hi;
    free(maps), free(masks_r), free(labels), free(img), free(mask);
    return rc;
}

static int write_demo(const char *dir)
{
    enum { N = 24, R = 48 };
    static const char *names[2] = {"bottle", "metal_nut"};
    uint8_t bases[2][3] = {{170, 180, 190}, {140, 120, 100}};
    demo_item items[2][N];
    saa_report_item ri[2][N];
    saa_metrics m[2];
    saa_report_category cats[2];
    int rc = SAA_OK;
    memset(cats, 0, sizeof cats);
    for (int c = 0; c < 2 && rc == SAA_OK; c++) {
        double lo, hi;
        rc = demo_category(dir, names[c], N, R, c, bases[c], items[c], &m[c], &lo, &hi);
        if (rc != SAA_OK) break;
        for (int i = 0; i < N; i++) {
            demo_item *d = &items[c][i];
            ri[c][i] = (saa_report_item){.id = d->id, .image = d->image, .gt_mask = d->label ? d->gt : NULL,
                                         .map_path = d->map, .pred_mask = d->pred, .label = d->label,
                                         .score = d->score};
        }
        /* the maps are normalised to [0, 1] by the metrics: colour by the raw global range */
        cats[c] = (saa_report_category){.name = names[c], .metrics = &m[c], .map_lo = lo, .map_hi = hi,
                                        .n_items = N, .items = ri[c]};
    }
    if (rc == SAA_OK) {
        saa_report_options o;
        saa_report_options_default(&o);
        o.gallery_n = 3;
        o.subtitle = "generated demo data set (tests/test_report.c --demo)";
        char path[600];
        snprintf(path, sizeof path, "%s/report.html", dir);
        rc = saa_report_write(path, "saa evaluation report (demo)", 2, cats, &o);
    }
    for (int c = 0; c < 2; c++)
        if (cats[c].metrics) saa_metrics_free(&m[c]);
    if (rc != SAA_OK) fprintf(stderr, "demo: %s\n", saa_last_error());
    return rc == SAA_OK ? 0 : 1;
}

static int png_stats(const char *path)
{
    saa_image img;
    if (saa_image_load(path, &img) != SAA_OK) {
        fprintf(stderr, "%s\n", saa_last_error());
        return 1;
    }
    /* distinct colours at 5 bits per channel, and the share of pixels that are not near-white */
    static uint8_t seen[1 << 15];
    memset(seen, 0, sizeof seen);
    int colours = 0;
    size_t n = (size_t)img.w * img.h, nonwhite = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = img.data + 3 * i;
        int key = (p[0] >> 3) << 10 | (p[1] >> 3) << 5 | p[2] >> 3;
        if (!seen[key]) seen[key] = 1, colours++;
        nonwhite += p[0] < 235 || p[1] < 235 || p[2] < 235;
    }
    double pct = 100.0 * nonwhite / (double)n;
    printf("%d %d %d %.1f\n", img.w, img.h, colours, pct);
    saa_image_free(&img);
    return colours >= 50 && pct >= 5.0 ? 0 : 1;
}

/* Pixels within +-12 of each colour RRGGBB given; exit 0 when every colour is present (the page rendered
 * its curves and tables, not its source text). */
static int png_colours(const char *path, int n, char **hex)
{
    saa_image img;
    if (saa_image_load(path, &img) != SAA_OK) {
        fprintf(stderr, "%s\n", saa_last_error());
        return 1;
    }
    int missing = 0;
    for (int k = 0; k < n; k++) {
        unsigned v = 0;
        if (strlen(hex[k]) != 6 || sscanf(hex[k], "%6x", &v) != 1) {
            fprintf(stderr, "bad colour %s (expected RRGGBB)\n", hex[k]);
            missing++;
            continue;
        }
        int want[3] = {(int)(v >> 16), (int)(v >> 8 & 255), (int)(v & 255)};
        long count = 0;
        for (size_t i = 0; i < (size_t)img.w * img.h; i++) {
            const uint8_t *p = img.data + 3 * i;
            count += abs(p[0] - want[0]) <= 12 && abs(p[1] - want[1]) <= 12 && abs(p[2] - want[2]) <= 12;
        }
        printf("%s %ld\n", hex[k], count);
        missing += count == 0;
    }
    saa_image_free(&img);
    return missing ? 1 : 0;
}

/* ---------- the unit test ---------- */

/* Thumbnails of the test report: rows for items 1, 3 (false positives), 4, 6 (misses), 4 images each. */
static const int LABELS[7] = {0, 0, 0, 0, 1, 1, 1};
static const float MAPV[7] = {0, 0.5f, 0, 1.0f, 0.25f, 0, 0.75f};

static int thumbnails_ok(const char *html, const char *dir, double lo, double hi)
{
    static const int row_items[4] = {1, 3, 4, 6};
    int k = 0, uris_ok = 1, pixels_ok = 1;
    for (const char *p = html; (p = strstr(p, "<img ")); p++, k++) {
        const char *uri = strstr(p, "src=\"data:image/png;base64,");
        png_info pi;
        if (!uri || !decode_uri(p, uri + 5, dir, &pi)) {
            uris_ok = 0;
            continue;
        }
        if (k >= 16) continue;
        int i = row_items[k / 4], col = k % 4, want[3];
        if (col == 0) { /* image: constant colour, 40x30 -> 20x15 */
            want[0] = 20 * i + 5, want[1] = 200 - 20 * i, want[2] = 77;
        } else if (col == 1) { /* GT: all defect for anomalous items, empty for normal ones */
            want[0] = want[1] = want[2] = LABELS[i] ? 255 : 0;
        } else if (col == 2) { /* map coloured over [lo, hi] */
            jet_ref((MAPV[i] - lo) / (hi - lo), want);
        } else { /* predicted mask */
            want[0] = want[1] = want[2] = i % 2 ? 255 : 0;
        }
        int same = pi.w == 20 && pi.h == 15 && pi.constant;
        for (int j = 0; j < 3; j++) same = same && abs(pi.px[j] - want[j]) <= 1;
        if (!same) {
            fprintf(stderr, "thumbnail %d (item %d col %d): %dx%d const %d px %d %d %d, want %d %d %d\n", k, i, col,
                    pi.w, pi.h, pi.constant, pi.px[0], pi.px[1], pi.px[2], want[0], want[1], want[2]);
            pixels_ok = 0;
        }
    }
    if (k != 16) fprintf(stderr, "%d thumbnails, expected 16\n", k);
    return k == 16 && uris_ok && pixels_ok;
}


static const char *find_after(const char *hay, const char *needle)
{
    const char *p = strstr(hay, needle);
    return p ? p + strlen(needle) : NULL;
}

/* Area under the step path of the first <path> with the given stroke, in data units (x, y in [0, 1]). */
static double path_area(const char *html, const char *stroke, int *ok)
{
    char key[64];
    snprintf(key, sizeof key, "stroke=\"%s\" stroke-width=\"2\" d=\"", stroke);
    const char *d = find_after(html, key);
    *ok = d != NULL;
    if (!d) return NAN;
    const double L = 48, T = 40, PW = 300 - 48 - 14, PH = 270 - 40 - 42;
    double area = 0, px = 0, py = 0;
    int first = 1;
    while (*d == 'M' || *d == 'L') {
        double x, y;
        int used;
        if (sscanf(d + 1, "%lf %lf%n", &x, &y, &used) != 2) break;
        d += 1 + used;
        x = (x - L) / PW, y = 1 - (y - T) / PH;
        if (!first) area += (x - px) * y; /* steps: horizontal segments carry the area */
        px = x, py = y, first = 0;
    }
    (void)py;
    return area;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--demo")) return write_demo(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "--png-stats")) return png_stats(argv[2]);
    if (argc >= 4 && !strcmp(argv[1], "--png-colours")) return png_colours(argv[2], argc - 3, argv + 3);

    /* base64: RFC 4648 section 10 vectors */
    static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char *s = saa_base64_encode((const uint8_t *)plain[i], strlen(plain[i]));
        CHECK(s && !strcmp(s, coded[i]));
        free(s);
    }
    uint8_t all[256], back[256];
    for (int i = 0; i < 256; i++) all[i] = (uint8_t)(255 - i);
    char *s = saa_base64_encode(all, 256);
    CHECK(s && b64_decode(s, strlen(s), back) == 256 && !memcmp(all, back, 256));
    free(s);

    /* colour map against matplotlib's piecewise-linear jet */
    int bad_colours = 0;
    for (int k = 0; k <= 64; k++) {
        uint8_t c[3];
        int r[3];
        saa_report_colormap(k / 64.0, c);
        jet_ref(k / 64.0, r);
        for (int j = 0; j < 3; j++) bad_colours += abs(c[j] - r[j]) > 1;
    }
    CHECK(bad_colours == 0);

    char dir[] = "/tmp/saa_test_report_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char path[600], path2[600];

    /* in-memory PNG: decodes (libpng via saa_image_load) to the same pixels, RGB and gray */
    {
        enum { W = 7, H = 5 };
        uint8_t rgb[W * H * 3], gray[W * H];
        for (int i = 0; i < W * H * 3; i++) rgb[i] = (uint8_t)(i * 37 + 11);
        for (int i = 0; i < W * H; i++) gray[i] = (uint8_t)(i * 13);
        for (int c = 1; c <= 3; c += 2) {
            uint8_t *png = NULL;
            size_t len = 0;
            CHECK(saa_png_encode_u8(c == 3 ? rgb : gray, W, H, c, &png, &len) == SAA_OK);
            snprintf(path, sizeof path, "%s/enc.png", dir);
            FILE *f = fopen(path, "wb");
            CHECK(f && fwrite(png, 1, len, f) == len);
            if (f) fclose(f);
            free(png);
            saa_image img = {0};
            CHECK(saa_image_load(path, &img) == SAA_OK);
            int same = img.w == W && img.h == H;
            for (int i = 0; same && i < W * H * 3; i++) same = img.data[i] == (c == 3 ? rgb[i] : gray[i / 3]);
            CHECK(same);
            saa_image_free(&img);
            remove(path);
        }
        uint8_t *png = (uint8_t *)1;
        size_t len = 1;
        CHECK(saa_png_encode_u8(rgb, W, H, 2, &png, &len) == SAA_EINVAL && png == NULL && len == 0);
    }

    /* category A: hand-set metrics (NaN, -0.0), items with constant colours so each thumbnail is known */
    enum { W = 40, H = 30, NI = 7 };
    const int *labels = LABELS;
    static const double scores[NI] = {0.1, 0.9, 0.5, 0.7, 0.2, 0.95, 0.4};
    const float *mapv = MAPV;
    char img_p[NI][600], gt_p[NI][600], map_p[NI][600], pred_p[NI][600], ids[NI][32];
    saa_report_item items[NI];
    for (int i = 0; i < NI; i++) {
        uint8_t c[3] = {(uint8_t)(20 * i + 5), (uint8_t)(200 - 20 * i), 77};
        snprintf(img_p[i], sizeof img_p[i], "%s/img%d.png", dir, i);
        snprintf(gt_p[i], sizeof gt_p[i], "%s/gt%d.png", dir, i);
        snprintf(map_p[i], sizeof map_p[i], "%s/map%d.npy", dir, i);
        snprintf(pred_p[i], sizeof pred_p[i], "%s/pred%d.png", dir, i);
        snprintf(ids[i], sizeof ids[i], "%s/%d", labels[i] ? "crack" : "good", i);
        CHECK(write_const_rgb(img_p[i], W, H, c) == SAA_OK);
        if (labels[i]) CHECK(write_const_mask(gt_p[i], W, H, 1) == SAA_OK); /* 0/1 mask: shown as 255 */
        CHECK(write_const_map(map_p[i], 16, 16, mapv[i]) == SAA_OK);
        CHECK(write_const_mask(pred_p[i], W, H, i % 2 ? 255 : 0) == SAA_OK);
        items[i] = (saa_report_item){.id = ids[i], .image = img_p[i], .gt_mask = labels[i] ? gt_p[i] : NULL,
                                     .map_path = map_p[i], .pred_mask = pred_p[i], .label = labels[i],
                                     .score = scores[i]};
    }
    /* item 0 (lowest normal) is never picked with gallery_n = 2: a missing file there must not matter */
    items[0].image = "/nonexistent/never_read.png";

    saa_metrics ma, mb;
    metrics_nan(&ma);
    ma.n_images = NI, ma.n_anomalous = 3, ma.n_gt_regions = 3;
    ma.image_auroc = 0.97531;
    ma.image_ap = -0.0;
    ma.image_f1 = 0.123449; /* 12.34 (not 12.35) */
    ma.pixel_auroc = 0.999999; /* 100.00 */
    ma.aupro = 0.5;
    double a_scores[NI];
    int a_labels[NI];
    for (int i = 0; i < NI; i++) a_scores[i] = scores[i], a_labels[i] = labels[i];
    ma.image_scores = a_scores, ma.image_labels = a_labels;
    metrics_nan(&mb);
    mb.n_images = 4, mb.n_anomalous = 2;
    mb.image_auroc = 0.50001;
    mb.pixel_ap = 0.6;
    mb.pixel_auroc = 0.9;
    mb.aupro = 0.7;
    mb.image_ap = 1.0;
    double b_scores[4] = {0.1, 0.8, 0.3, 0.9};
    int b_labels[4] = {0, 1, 0, 1};
    mb.image_scores = b_scores, mb.image_labels = b_labels; /* separable scores */

    saa_report_category cats[2] = {
        {.name = "A<b>&\"x\"", .metrics = &ma, .map_lo = 0, .map_hi = 1, .n_items = NI, .items = items},
        {.name = "catB", .metrics = &mb, .map_lo = NAN, .map_hi = NAN, .n_items = 0, .items = NULL},
    };
    /* category B also shows a curve passed in by the caller (e.g. a pixel ROC) */
    double cx[3] = {0, 0.25, 1}, cy[3] = {0, 0.75, 1};
    saa_report_curve extra = {"Pixel ROC", "false positive rate", "true positive rate", "AUROC 75.00", 3, cx, cy, 0};
    cats[1].n_curves = 1, cats[1].curves = &extra;

    saa_report_options o;
    saa_report_options_default(&o);
    CHECK(o.gallery_n == 6 && o.thumb_size == 160);
    o.gallery_n = 2;
    o.thumb_size = 20;
    o.subtitle = "run <1> & 'q'";
    snprintf(path, sizeof path, "%s/report.html", dir);
    int rc = saa_report_write(path, "Eval <test>", 2, cats, &o);
    if (rc != SAA_OK) fprintf(stderr, "%s\n", saa_last_error());
    CHECK(rc == SAA_OK);
    size_t len = 0;
    char *html = read_all(path, &len);
    CHECK(html != NULL);
    snprintf(path2, sizeof path2, "%s/report.html.part", dir);
    CHECK(!test_exists(path2));
    if (html) {
        CHECK(!strncmp(html, "<!DOCTYPE html>", 15));
        CHECK(len > 8 && !strcmp(html + len - 8, "</html>\n"));
        CHECK(strstr(html, "<meta charset=\"utf-8\">") != NULL);
        int n_img, n_svg, n_table;
        CHECK(tags_balanced(html, &n_img, &n_svg, &n_table));
        CHECK(n_img == 16);  /* A: 2 false positives + 2 misses, 4 thumbnails each; B has no items */
        CHECK(n_svg == 4 + 5 + 1); /* ROC, PR, PRO, region F1 per category, B's extra curve, A's colour bar */
        CHECK(n_table == 1 + 2 + 2); /* summary, two metric tables, A's two galleries (B: notes) */
        CHECK(strstr(html, "Pixel ROC") && strstr(html, "AUROC 75.00"));
        /* self-contained: no external references */
        CHECK(!strstr(html, "src=\"http") && !strstr(html, "href=\"http") && !strstr(html, "<script") &&
              !strstr(html, "<link"));
        int urls_internal = 1; /* url() only for the colour bar's gradient within the page */
        for (const char *u = html; (u = strstr(u, "url(")); u++) urls_internal &= u[4] == '#';
        CHECK(urls_internal);
        CHECK(strstr(html, "max F_r " DASH) != NULL); /* A's NaN F_r in its plot summary */
        /* escaping */
        CHECK(strstr(html, "A&lt;b&gt;&amp;&quot;x&quot;") && !strstr(html, "A<b>"));
        CHECK(strstr(html, "<title>Eval &lt;test&gt;</title>") != NULL);
        CHECK(strstr(html, "run &lt;1&gt; &amp; &#39;q&#39;") != NULL);
        /* numbers: the summary row of A, the mean row */
        const char *rowa = strstr(html, "A&lt;b&gt;&amp;&quot;x&quot;</a></td>");
        const char *want_a = "<td>7</td><td>3</td><td>97.53</td><td>0.00</td><td>12.34</td><td>100.00</td><td>" DASH
                             "</td><td>" DASH "</td><td>50.00</td>";
        CHECK(rowa && !strncmp(strstr(rowa, "<td>"), want_a, strlen(want_a)));
        const char *mean = strstr(html, "<tr class=\"mean\">");
        /* mean: undefined where a category is (I-F1, P-AP, F_p), else the plain mean */
        const char *want_mean = "<td>11</td><td>5</td><td>73.77</td><td>50.00</td><td>" DASH "</td><td>95.00</td>"
                                "<td>" DASH "</td><td>" DASH "</td><td>60.00</td><td>" DASH "</td>";
        CHECK(mean && !strncmp(strstr(mean, "<td>"), want_mean, strlen(want_mean)));
        /* picks: false positives good/1 (0.9) then good/3 (0.7); misses crack/4 (0.2) then crack/6 (0.4) */
        const char *g1 = strstr(html, ">good/1<"), *g3 = strstr(html, ">good/3<"), *c4 = strstr(html, ">crack/4<"),
                   *c6 = strstr(html, ">crack/6<");
        CHECK(g1 && g3 && c4 && c6 && g1 < g3 && g3 < c4 && c4 < c6);
        CHECK(!strstr(html, ">good/2<") && !strstr(html, ">crack/5<") && !strstr(html, ">good/0<"));
        CHECK(strstr(html, "score 0.9000") && strstr(html, "score 0.2000"));
        /* every data URI: valid PNG of the declared size; the thumbnails of each row in order; maps coloured
         * by the category range [0, 1] */
        CHECK(thumbnails_ok(html, dir, 0.0, 1.0));
        CHECK(strstr(html, "(the evaluation&#39;s global range)") || strstr(html, "(the evaluation's global range)"));
        CHECK(strstr(html, "</svg> 0 to 1</p>") != NULL);
        /* A's PR step curve integrates to its AP: by score 0.95 P, 0.9 N, 0.7 N, 0.5 N, 0.4 P, 0.2 P, 0.1 N the
         * precision at each new recall third is 1, 2/5, 3/6 */
        int ok;
        double area = path_area(html, "#d62728", &ok);
        CHECK(ok);
        CHECK_NEAR(area, (1.0 + 0.4 + 0.5) / 3.0, 0.01);
        /* B's ROC: 0.9 P, 0.8 P, 0.3 N, 0.1 N; sklearn (drop_intermediate) keeps (0,0) (0,.5) (0,1) (1,1) */
        const char *secb = strstr(html, "<h2 id=\"cat-1\">");
        CHECK(secb && strstr(secb, "stroke=\"#1f77b4\" stroke-width=\"2\" d=\"M48.00 228.00L48.00 134.00L48.00 40.00L286.00 40.00\""));
        /* B has no items: notes instead of galleries; NaN summaries as dashes */
        CHECK(secb && strstr(secb, "No normal images in this category.") && strstr(secb, "AUROC 50.00"));
        free(html);
    }

    /* no usable evaluation range: one scale over the maps shown (0.5, 1.0, 0.25, 0.75 -> [0.25, 1]) */
    cats[0].map_lo = NAN;
    snprintf(path2, sizeof path2, "%s/shared.html", dir);
    CHECK(saa_report_write(path2, "shared", 2, cats, &o) == SAA_OK);
    html = read_all(path2, NULL);
    CHECK(html && thumbnails_ok(html, dir, 0.25, 1.0));
    CHECK(html && strstr(html, "common scale of the maps shown") && strstr(html, "</svg> 0.25 to 1</p>"));
    free(html);
    cats[0].map_lo = 0;

    /* bad inputs: a picked item's missing image -> error naming it, no report (and an old one untouched) */
    items[1].image = "/nonexistent/missing_image.png";
    rc = saa_report_write(path, "x", 2, cats, &o);
    CHECK(rc != SAA_OK);
    CHECK(strstr(saa_last_error(), "missing_image.png") && strstr(saa_last_error(), "A<b>"));
    size_t len2 = 0;
    char *again = read_all(path, &len2);
    CHECK(again && len2 == len);
    free(again);
    snprintf(path2, sizeof path2, "%s/other.html", dir);
    rc = saa_report_write(path2, "x", 2, cats, &o);
    CHECK(rc != SAA_OK && !test_exists(path2));
    char part[640];
    snprintf(part, sizeof part, "%s.part", path2);
    CHECK(!test_exists(part));
    items[1].image = img_p[1];
    /* a map that is not a float HxW array */
    uint8_t bytes[8] = {0};
    char badmap[600];
    snprintf(badmap, sizeof badmap, "%s/bad_map.npy", dir);
    CHECK(saa_npy_save_u8(badmap, bytes, 3, (int64_t[]){2, 2, 2}) == SAA_OK);
    items[3].map_path = badmap;
    rc = saa_report_write(path2, "x", 2, cats, &o);
    CHECK(rc != SAA_OK && strstr(saa_last_error(), "bad_map.npy") && !test_exists(path2));
    items[3].map_path = map_p[3];
    /* a missing GT mask */
    items[4].gt_mask = "/nonexistent/gt_missing.png";
    rc = saa_report_write(path2, "x", 2, cats, &o);
    CHECK(rc != SAA_OK && strstr(saa_last_error(), "gt_missing.png") && !test_exists(path2));
    items[4].gt_mask = gt_p[4];
    /* an unwritable destination */
    rc = saa_report_write("/nonexistent/dir/report.html", "x", 2, cats, &o);
    CHECK(rc == SAA_EIO && strstr(saa_last_error(), "/nonexistent/dir/report.html"));
    /* in-memory map instead of a .npy, and everything valid again */
    double mem_map[4] = {0.5, 0.5, 0.5, 0.5};
    items[3].map_path = NULL, items[3].map = mem_map, items[3].map_w = 2, items[3].map_h = 2;
    rc = saa_report_write(path2, "x", 2, cats, &o);
    CHECK(rc == SAA_OK && test_exists(path2));

    /* metrics computed by the real accumulator (curves and per-image scores allocated by it) */
    {
        demo_item di[6];
        saa_metrics mc;
        double lo, hi;
        uint8_t base[3] = {150, 160, 170};
        char sub[600];
        snprintf(sub, sizeof sub, "%s/acc", dir);
        CHECK(mkdir(sub, 0777) == 0);
        CHECK(demo_category(sub, "c", 6, 16, 0, base, di, &mc, &lo, &hi) == SAA_OK);
        saa_report_item ri[6];
        for (int i = 0; i < 6; i++)
            ri[i] = (saa_report_item){.id = di[i].id, .image = di[i].image, .gt_mask = di[i].label ? di[i].gt : NULL,
                                      .map_path = di[i].map, .pred_mask = di[i].pred, .label = di[i].label,
                                      .score = di[i].score};
        saa_report_category cc = {.name = "computed", .metrics = &mc, .map_lo = lo, .map_hi = hi, .n_items = 6,
                                  .items = ri};
        snprintf(path2, sizeof path2, "%s/computed.html", dir);
        CHECK(saa_report_write(path2, "computed", 1, &cc, NULL) == SAA_OK);
        char *h = read_all(path2, NULL);
        int n_img, n_svg, n_table;
        CHECK(h && tags_balanced(h, &n_img, &n_svg, &n_table) && n_img == 6 * 4 && n_svg == 4 + 1);
        /* the PRO curve and region F1 curves were drawn (not "undefined") */
        CHECK(h && strstr(h, "stroke=\"#2ca02c\" stroke-width=\"2\" d=\"M") &&
              strstr(h, "stroke=\"#9467bd\" stroke-width=\"2\" d=\"M"));
        free(h);
        saa_metrics_free(&mc);
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", sub);
        CHECK(system(cmd) == 0);
    }

    /* items from saa eval's maps folder: MAPS/CATEGORY/TYPE/STEM_map.npy + STEM_mask.png, or TYPE/STEM.npy */
    {
        char root[100], p_img[2][200], p_gt[200], p_map[2][200], p_pred[200];
        snprintf(root, sizeof root, "%s/maps", dir);
        char mk[300];
        snprintf(mk, sizeof mk, "mkdir -p '%s/cat/good' '%s/cat/crack'", root, root);
        CHECK(system(mk) == 0);
        uint8_t grey[3] = {100, 100, 100};
        snprintf(p_img[0], sizeof p_img[0], "%s/a.png", dir);
        snprintf(p_img[1], sizeof p_img[1], "%s/b.png", dir);
        snprintf(p_gt, sizeof p_gt, "%s/b_mask.png", dir);
        snprintf(p_map[0], sizeof p_map[0], "%s/cat/good/a_map.npy", root);
        snprintf(p_pred, sizeof p_pred, "%s/cat/good/a_mask.png", root);
        snprintf(p_map[1], sizeof p_map[1], "%s/cat/crack/b.npy", root);
        CHECK(write_const_rgb(p_img[0], 8, 6, grey) == SAA_OK && write_const_rgb(p_img[1], 8, 6, grey) == SAA_OK);
        CHECK(write_const_mask(p_gt, 8, 6, 255) == SAA_OK && write_const_mask(p_pred, 8, 6, 0) == SAA_OK);
        CHECK(write_const_map(p_map[0], 4, 4, 0.2f) == SAA_OK && write_const_map(p_map[1], 4, 4, 0.9f) == SAA_OK);
        char id0[] = "good/a", id1[] = "crack/b", ty0[] = "good", ty1[] = "crack", catname[] = "cat";
        saa_sample smp[2] = {{p_img[0], NULL, 0, ty0, id0, 8, 6}, {p_img[1], p_gt, 1, ty1, id1, 8, 6}};
        saa_dataset ds = {SAA_DS_FOLDER, catname, 2, smp};
        saa_metrics mm;
        metrics_nan(&mm);
        double sc[2] = {0.25, 0.75};
        int lb[2] = {0, 1};
        mm.n_images = 2, mm.n_anomalous = 1, mm.image_scores = sc, mm.image_labels = lb;
        saa_report_item *its = NULL;
        int nits = 0;
        CHECK(saa_report_items_from_maps(&ds, root, &mm, &its, &nits) == SAA_OK && nits == 2);
        if (its && nits == 2) {
            CHECK(!strcmp(its[0].id, "good/a") && !strcmp(its[0].image, p_img[0]) && !its[0].gt_mask);
            CHECK(!strcmp(its[0].map_path, p_map[0]) && its[0].pred_mask && !strcmp(its[0].pred_mask, p_pred));
            CHECK(its[0].label == 0 && its[0].score == 0.25);
            CHECK(!strcmp(its[1].map_path, p_map[1]) && !its[1].pred_mask && !strcmp(its[1].gt_mask, p_gt));
            CHECK(its[1].label == 1 && its[1].score == 0.75);
            saa_report_category cm = {.name = "cat", .metrics = &mm, .map_lo = NAN, .map_hi = NAN, .n_items = nits,
                                      .items = its};
            snprintf(path2, sizeof path2, "%s/maps.html", dir);
            CHECK(saa_report_write(path2, "maps", 1, &cm, NULL) == SAA_OK);
            html = read_all(path2, NULL);
            int n_img = 0, n_svg, n_table;
            CHECK(html && tags_balanced(html, &n_img, &n_svg, &n_table) && n_img == 4 + 3); /* b: no prediction */
            free(html);
        }
        saa_report_items_free(its, nits);
        mm.n_images = 3; /* metrics of another set */
        CHECK(saa_report_items_from_maps(&ds, root, &mm, &its, &nits) == SAA_EINVAL && !its && nits == 0);
        mm.n_images = 2;
        remove(p_map[1]); /* a sample without a map */
        CHECK(saa_report_items_from_maps(&ds, root, &mm, &its, &nits) != SAA_OK && !its);
        CHECK(strstr(saa_last_error(), "crack/b") != NULL);
    }

    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    TEST_MAIN_END();
}
