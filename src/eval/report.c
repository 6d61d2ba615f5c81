/* Self-contained HTML evaluation report (see include/saa/report.h).
 *
 * The page is built in one memory buffer: tables as HTML, curves as inline SVG (exact, no rasterising),
 * gallery thumbnails as base64 PNG data URIs. Numbers follow the official csv (utils/csv_utils.py:
 * percentages with two decimals); undefined (NaN) metrics are shown as an em dash. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saa/eval.h"
#include "saa/image.h"
#include "saa/metrics.h"
#include "saa/report.h"
#include "saa/tensor.h"

#define DASH "\xE2\x80\x94" /* U+2014 EM DASH, shown for undefined values */

/* ---------- growing string buffer ---------- */

typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static int sb_reserve(sbuf *b, size_t extra)
{
    if (b->oom) return 0;
    if (b->len + extra + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = realloc(b->s, cap);
    if (!p) {
        b->oom = 1;
        return 0;
    }
    b->s = p;
    b->cap = cap;
    return 1;
}

static void sb_putn(sbuf *b, const char *s, size_t n)
{
    if (!sb_reserve(b, n)) return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !sb_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Text and attribute values: & < > " ' escaped. */
static void sb_escape(sbuf *b, const char *s)
{
    if (!s) return;
    for (; *s; s++) {
        switch (*s) {
        case '&': sb_puts(b, "&amp;"); break;
        case '<': sb_puts(b, "&lt;"); break;
        case '>': sb_puts(b, "&gt;"); break;
        case '"': sb_puts(b, "&quot;"); break;
        case '\'': sb_puts(b, "&#39;"); break;
        default: sb_putn(b, s, 1);
        }
    }
}

/* A fraction as the official csv shows it: value * 100 with two decimals; NaN -> em dash. */
static void sb_pct(sbuf *b, double v)
{
    if (isnan(v))
        sb_puts(b, DASH);
    else
        sb_printf(b, "%.2f", v * 100.0 + 0.0); /* + 0.0: sklearn's -0.0 AP prints as 0.00 */
}

static void sb_num(sbuf *b, double v, const char *fmt)
{
    if (isnan(v))
        sb_puts(b, DASH);
    else
        sb_printf(b, fmt, v + 0.0);
}

/* ---------- base64 ---------- */

char *saa_base64_encode(const uint8_t *data, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1);
    if (!out) return NULL;
    char *o = out;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        *o++ = tab[v >> 18], *o++ = tab[(v >> 12) & 63], *o++ = tab[(v >> 6) & 63], *o++ = tab[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)data[i] << 16;
        *o++ = tab[v >> 18], *o++ = tab[(v >> 12) & 63], *o++ = '=', *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8;
        *o++ = tab[v >> 18], *o++ = tab[(v >> 12) & 63], *o++ = tab[(v >> 6) & 63], *o++ = '=';
    }
    *o = 0;
    return out;
}

/* ---------- colour map ---------- */

/* Matplotlib-like "jet" (blue -> cyan -> yellow -> red), as the per-image overlays of pipeline/outputs.c. */
void saa_report_colormap(double t, uint8_t rgb[3])
{
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double c[3] = {1.5 - fabs(4 * t - 3), 1.5 - fabs(4 * t - 2), 1.5 - fabs(4 * t - 1)};
    for (int i = 0; i < 3; i++) rgb[i] = (uint8_t)lround(255 * (c[i] < 0 ? 0 : c[i] > 1 ? 1 : c[i]));
}

/* ---------- SVG plots ---------- */

typedef struct {
    int64_t n;
    const double *x, *y;
    int step;
    const char *color, *name;
} series;

enum { PLOT_W = 300, PLOT_H = 270, PLOT_L = 48, PLOT_R = 14, PLOT_T = 40, PLOT_B = 42 };

/* One square-ish chart: y in [0, 1], x in [x0, x1]; diagonal = dashed chance line; vline (finite) = dashed
 * vertical marker (the AU-PRO FPR limit). NaN points break the line. */
static void svg_plot(sbuf *b, const char *title, const char *summary, const char *x_label, const char *y_label,
                     double x0, double x1, const series *ser, int n_ser, int diagonal, double vline)
{
    const double pw = PLOT_W - PLOT_L - PLOT_R, ph = PLOT_H - PLOT_T - PLOT_B;
    if (!(x1 > x0)) x0 = 0, x1 = 1;
#define PX(v) (PLOT_L + ((v) - x0) / (x1 - x0) * pw)
#define PY(v) (PLOT_T + (1.0 - (v)) * ph)
    sb_printf(b, "<svg class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                 "viewBox=\"0 0 %d %d\" role=\"img\">", PLOT_W, PLOT_H, PLOT_W, PLOT_H);
    sb_puts(b, "<title>");
    sb_escape(b, title);
    sb_puts(b, "</title>");
    sb_printf(b, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>", PLOT_W, PLOT_H);
    sb_printf(b, "<text x=\"%d\" y=\"16\" text-anchor=\"middle\" class=\"pt\">", PLOT_W / 2);
    sb_escape(b, title);
    sb_puts(b, "</text>");
    if (summary) {
        sb_printf(b, "<text x=\"%d\" y=\"31\" text-anchor=\"middle\" class=\"ps\">", PLOT_W / 2);
        sb_escape(b, summary);
        sb_puts(b, "</text>");
    }
    /* grid and ticks */
    for (int k = 0; k <= 5; k++) {
        double f = k / 5.0, xv = x0 + f * (x1 - x0);
        sb_printf(b, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%.2f\" class=\"g\"/>", PX(xv), PLOT_T, PX(xv),
                  PLOT_T + ph);
        sb_printf(b, "<line x1=\"%d\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" class=\"g\"/>", PLOT_L, PY(f),
                  PLOT_L + pw, PY(f));
        sb_printf(b, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" class=\"tk\">%.*f</text>", PX(xv),
                  PLOT_T + ph + 13, fabs(x1 - x0) < 0.1 ? 3 : 1, xv + 0.0);
        sb_printf(b, "<text x=\"%d\" y=\"%.2f\" text-anchor=\"end\" class=\"tk\">%.1f</text>", PLOT_L - 4,
                  PY(f) + 3.5, f);
    }
    sb_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" class=\"frame\"/>", PLOT_L, PLOT_T, pw, ph);
    sb_printf(b, "<text x=\"%.2f\" y=\"%d\" text-anchor=\"middle\" class=\"al\">", PLOT_L + pw / 2, PLOT_H - 6);
    sb_escape(b, x_label);
    sb_puts(b, "</text>");
    sb_printf(b, "<text x=\"12\" y=\"%.2f\" text-anchor=\"middle\" class=\"al\" transform=\"rotate(-90 12 %.2f)\">",
              PLOT_T + ph / 2, PLOT_T + ph / 2);
    sb_escape(b, y_label);
    sb_puts(b, "</text>");
    if (diagonal)
        sb_printf(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" class=\"ref\"/>", PX(x0), PY(0.0),
                  PX(x1), PY(1.0));
    if (isfinite(vline) && vline > x0 && vline < x1)
        sb_printf(b, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%.2f\" class=\"ref\"/>", PX(vline), PLOT_T,
                  PX(vline), PLOT_T + ph);
    int drawn = 0;
    for (int s = 0; s < n_ser; s++) {
        const series *c = &ser[s];
        if (c->n <= 0 || !c->x || !c->y) continue;
        sb_printf(b, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"2\" d=\"", c->color);
        int pen = 0; /* 0: the next point starts a new sub-path */
        double px = 0, py = 0;
        for (int64_t i = 0; i < c->n; i++) {
            double xv = c->x[i], yv = c->y[i];
            if (!isfinite(xv) || !isfinite(yv)) {
                pen = 0;
                continue;
            }
            xv = xv < x0 ? x0 : xv > x1 ? x1 : xv;
            yv = yv < 0 ? 0 : yv > 1 ? 1 : yv;
            if (!pen)
                sb_printf(b, "M%.2f %.2f", PX(xv), PY(yv));
            else if (c->step)
                sb_printf(b, "L%.2f %.2fL%.2f %.2f", PX(px), PY(yv), PX(xv), PY(yv));
            else
                sb_printf(b, "L%.2f %.2f", PX(xv), PY(yv));
            pen = 1, px = xv, py = yv, drawn = 1;
        }
        (void)py;
        sb_puts(b, "\"/>");
        if (c->name && n_ser > 1) { /* legend in the top-right corner, on a white box */
            double ly = PLOT_T + 16 + 14.0 * s;
            if (s == 0)
                sb_printf(b, "<rect x=\"%.2f\" y=\"%d\" width=\"112\" height=\"%d\" fill=\"#ffffff\" "
                             "fill-opacity=\"0.85\" stroke=\"#ccc\"/>",
                          PLOT_L + pw - 116, PLOT_T + 4, 14 * n_ser + 6);
            sb_printf(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" stroke-width=\"2\"/>",
                      PLOT_L + pw - 110, ly - 4, PLOT_L + pw - 92, ly - 4, c->color);
            sb_printf(b, "<text x=\"%.2f\" y=\"%.2f\" class=\"tk\">", PLOT_L + pw - 88, ly);
            sb_escape(b, c->name);
            sb_puts(b, "</text>");
        }
    }
    if (!drawn)
        sb_printf(b, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" class=\"ps\">undefined</text>",
                  PLOT_L + pw / 2, PLOT_T + ph / 2);
    sb_puts(b, "</svg>\n");
#undef PX
#undef PY
}

/* Image-level ROC (sklearn roc_curve, drop_intermediate) and PR (precision_recall_curve) from the per-image
 * scores of the metrics. The PR points are (0, p_1), (r_k, p_k) in decreasing-threshold order: drawn as a
 * right-continuous step their area is the average precision. Returns <0 only on allocation failure;
 * curves stay empty (n = 0) when undefined (no scores, NaN scores, a class absent). */
typedef struct {
    double *roc_x, *roc_y, *pr_x, *pr_y;
    int64_t roc_n, pr_n;
} image_curves;

static void image_curves_free(image_curves *c)
{
    free(c->roc_x), free(c->roc_y), free(c->pr_x), free(c->pr_y);
    memset(c, 0, sizeof *c);
}

static int image_curves_compute(const saa_metrics *m, image_curves *out)
{
    memset(out, 0, sizeof *out);
    if (!m || !m->image_scores || !m->image_labels || m->n_images <= 0) return SAA_OK;
    int64_t n = m->n_images, n_pos = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(m->image_scores[i])) return SAA_OK;
        n_pos += m->image_labels[i] != 0;
    }
    if (n_pos == 0 || n_pos == n) return SAA_OK;
    uint8_t *labels = malloc((size_t)n);
    if (!labels) return saa_set_error(SAA_ENOMEM, "report: out of memory");
    for (int64_t i = 0; i < n; i++) labels[i] = m->image_labels[i] != 0;
    saa_score_builder *sb = saa_score_builder_new();
    saa_score_table t = {0};
    int rc = sb ? saa_score_builder_add(sb, m->image_scores, labels, NULL, n) : SAA_ENOMEM;
    if (sb) {
        int rc2 = saa_score_builder_finish(sb, &t); /* frees the builder */
        if (rc == SAA_OK) rc = rc2;
    }
    free(labels);
    double *thr = NULL;
    if (rc == SAA_OK) rc = saa_roc_curve(&t, 1, &out->roc_x, &out->roc_y, &thr, &out->roc_n);
    free(thr);
    if (rc == SAA_OK) {
        out->pr_x = malloc((size_t)(t.n + 1) * sizeof(double));
        out->pr_y = malloc((size_t)(t.n + 1) * sizeof(double));
        if (!out->pr_x || !out->pr_y) rc = SAA_ENOMEM;
    }
    if (rc == SAA_OK && t.n > 0) {
        double tp = 0, fp = 0;
        for (int64_t k = 0; k < t.n; k++) {
            tp += t.pos[k], fp += t.neg[k];
            out->pr_x[k + 1] = tp / (double)n_pos;
            out->pr_y[k + 1] = tp / (tp + fp);
        }
        out->pr_x[0] = 0.0;
        out->pr_y[0] = out->pr_y[1];
        out->pr_n = t.n + 1;
    }
    saa_score_table_free(&t);
    if (rc != SAA_OK) {
        image_curves_free(out);
        return rc == SAA_ENOMEM ? saa_set_error(SAA_ENOMEM, "report: out of memory") : rc;
    }
    return SAA_OK;
}

/* ---------- thumbnails ---------- */

/* Resizes src (w x h x c) to tw x th: PIL bilinear (antialiased) when shrinking, nearest when enlarging
 * (crisp pixels of small images). */
static int thumb_resize(const uint8_t *src, int w, int h, int c, int tw, int th, uint8_t **dst)
{
    *dst = malloc((size_t)tw * th * c);
    if (!*dst) return saa_set_error(SAA_ENOMEM, "report: out of memory");
    int rc = (tw <= w && th <= h) ? saa_resize_pil_bilinear_u8(src, w, h, c, *dst, tw, th)
                                  : saa_resize_cv_u8(src, w, h, c, *dst, tw, th, SAA_CV_INTER_NEAREST);
    if (rc != SAA_OK) {
        free(*dst);
        *dst = NULL;
    }
    return rc;
}

/* Appends <img> with the PNG of pixels (tw x th x c) as a data URI. */
static int emit_png(sbuf *b, const uint8_t *pixels, int tw, int th, int c, const char *alt)
{
    uint8_t *png = NULL;
    size_t len = 0;
    int rc = saa_png_encode_u8(pixels, tw, th, c, &png, &len);
    if (rc != SAA_OK) return rc;
    char *b64 = saa_base64_encode(png, len);
    free(png);
    if (!b64) return saa_set_error(SAA_ENOMEM, "report: out of memory");
    sb_printf(b, "<img width=\"%d\" height=\"%d\" alt=\"", tw, th);
    sb_escape(b, alt);
    sb_puts(b, "\" src=\"data:image/png;base64,");
    sb_puts(b, b64);
    sb_puts(b, "\">");
    free(b64);
    return SAA_OK;
}

/* Loads a mask file as 0/255 bytes resized to tw x th. */
static int mask_thumb(const char *path, int tw, int th, uint8_t **out)
{
    saa_image m;
    int rc = saa_image_load_gray(path, &m);
    if (rc != SAA_OK) return rc;
    for (size_t i = 0; i < (size_t)m.w * m.h; i++) m.data[i] = m.data[i] ? 255 : 0;
    rc = thumb_resize(m.data, m.w, m.h, 1, tw, th, out);
    saa_image_free(&m);
    return rc;
}

/* The item's anomaly map as doubles (owned copy in *owned when read from a file). */
static int load_map(const saa_report_item *it, const double **map, int *w, int *h, double **owned)
{
    *owned = NULL;
    if (!it->map_path) {
        if (!it->map || it->map_w <= 0 || it->map_h <= 0)
            return saa_set_error(SAA_EINVAL, "item %s has no anomaly map (map_path or map)",
                                 it->id ? it->id : it->image);
        *map = it->map, *w = it->map_w, *h = it->map_h;
        return SAA_OK;
    }
    double *d = NULL;
    int rc = saa_eval_load_map(it->map_path, &d, w, h);
    if (rc != SAA_OK) return rc;
    if (*w <= 0 || *h <= 0 || *w > 1 << 15 || *h > 1 << 15) {
        free(d);
        return saa_set_error(SAA_EFORMAT, "%s: anomaly map of %dx%d pixels", it->map_path, *h, *w);
    }
    *map = d, *owned = d;
    return SAA_OK;
}

/* Colour-mapped map thumbnail over the colour range [lo, hi] (hi > lo); NaN pixels grey. */
static int map_thumb(const saa_report_item *it, double lo, double hi, int tw, int th, uint8_t **out)
{
    const double *map = NULL;
    double *owned = NULL;
    int w = 0, h = 0;
    int rc = load_map(it, &map, &w, &h, &owned);
    if (rc != SAA_OK) return rc;
    int64_t n = (int64_t)w * h;
    uint8_t *rgb = malloc((size_t)n * 3);
    if (!rgb) {
        free(owned);
        return saa_set_error(SAA_ENOMEM, "report: out of memory");
    }
    for (int64_t i = 0; i < n; i++) {
        if (isnan(map[i]))
            rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = 128;
        else
            saa_report_colormap((map[i] - lo) / (hi - lo), rgb + 3 * i);
    }
    free(owned);
    rc = thumb_resize(rgb, w, h, 3, tw, th, out);
    free(rgb);
    return rc;
}

/* The colour range of a category's gallery: the given evaluation range when usable, else the min/max over
 * the maps shown (read once here, again when drawn: only one map is in memory at a time). *shared = 1 in
 * the second case. */
static int gallery_range(const saa_report_category *cat, const int *idx, int n, double *lo, double *hi,
                         int *shared)
{
    *shared = 0;
    if (isfinite(cat->map_lo) && isfinite(cat->map_hi) && cat->map_hi > cat->map_lo) {
        *lo = cat->map_lo, *hi = cat->map_hi;
        return SAA_OK;
    }
    *shared = 1;
    double a = INFINITY, b = -INFINITY;
    for (int k = 0; k < n; k++) {
        const saa_report_item *it = &cat->items[idx[k]];
        if (!it->map_path && !it->map) continue;
        const double *map;
        double *owned;
        int w, h;
        int rc = load_map(it, &map, &w, &h, &owned);
        if (rc != SAA_OK) return rc;
        for (int64_t i = 0; i < (int64_t)w * h; i++)
            if (isfinite(map[i])) a = map[i] < a ? map[i] : a, b = map[i] > b ? map[i] : b;
        free(owned);
    }
    if (!isfinite(a)) a = 0, b = 1;
    if (!(b > a)) b = a + 1; /* constant maps: the lowest colour */
    *lo = a, *hi = b;
    return SAA_OK;
}

/* Horizontal colour bar of the map colours with the range's ends. */
static void colour_bar(sbuf *b, int cat_index, double lo, double hi, int shared)
{
    sb_printf(b, "<p class=\"note\">Anomaly map colours (%s): <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"200\" "
                 "height=\"12\" class=\"cbar\"><defs><linearGradient id=\"cbar-%d\">",
              shared ? "common scale of the maps shown" : "the evaluation's global range", cat_index);
    for (int k = 0; k <= 8; k++) {
        uint8_t c[3];
        saa_report_colormap(k / 8.0, c);
        sb_printf(b, "<stop offset=\"%.3f\" stop-color=\"#%02x%02x%02x\"/>", k / 8.0, c[0], c[1], c[2]);
    }
    sb_printf(b, "</linearGradient></defs><rect x=\"0\" y=\"0\" width=\"200\" height=\"12\" fill=\"url(#cbar-%d)\"/>"
                 "</svg> ", cat_index);
    sb_num(b, lo, "%.4g");
    sb_puts(b, " to ");
    sb_num(b, hi, "%.4g");
    sb_puts(b, "</p>\n");
}

/* One gallery row: id, label, score, then image | GT | map | mask thumbnails. */
static int gallery_row(sbuf *b, const saa_report_item *it, double lo, double hi, int rank, int thumb)
{
    const char *id = it->id ? it->id : it->image;
    if (!it->image) return saa_set_error(SAA_EINVAL, "item %s has no image path", id ? id : "(unnamed)");
    saa_image img;
    int rc = saa_image_load(it->image, &img);
    if (rc != SAA_OK) return rc;
    double s = (double)thumb / (img.w > img.h ? img.w : img.h);
    int tw = (int)lround(img.w * s), th = (int)lround(img.h * s);
    tw = tw < 1 ? 1 : tw, th = th < 1 ? 1 : th;
    uint8_t *t_img = NULL, *t_gt = NULL, *t_map = NULL, *t_pred = NULL;
    rc = thumb_resize(img.data, img.w, img.h, 3, tw, th, &t_img);
    saa_image_free(&img);
    if (rc == SAA_OK) {
        if (it->gt_mask)
            rc = mask_thumb(it->gt_mask, tw, th, &t_gt);
        else if (!(t_gt = calloc((size_t)tw * th, 1)))
            rc = saa_set_error(SAA_ENOMEM, "report: out of memory");
    }
    if (rc == SAA_OK && (it->map_path || it->map)) rc = map_thumb(it, lo, hi, tw, th, &t_map);
    if (rc == SAA_OK && it->pred_mask) rc = mask_thumb(it->pred_mask, tw, th, &t_pred);
    if (rc == SAA_OK) {
        sb_printf(b, "<tr><td class=\"rk\">%d</td><td class=\"id\">", rank);
        sb_escape(b, id);
        sb_printf(b, "<br><span class=\"%s\">%s</span><br>score ", it->label ? "bad" : "ok",
                  it->label ? "anomalous" : "normal");
        sb_num(b, it->score, "%.4f");
        sb_puts(b, "</td><td>");
        rc = emit_png(b, t_img, tw, th, 3, "image");
        sb_puts(b, "</td><td>");
        if (rc == SAA_OK) rc = emit_png(b, t_gt, tw, th, 1, it->gt_mask ? "ground truth" : "no ground-truth mask");
        sb_puts(b, "</td><td>");
        if (rc == SAA_OK && t_map)
            rc = emit_png(b, t_map, tw, th, 3, "anomaly map");
        else
            sb_puts(b, DASH);
        sb_puts(b, "</td><td>");
        if (rc == SAA_OK && t_pred)
            rc = emit_png(b, t_pred, tw, th, 1, "predicted mask");
        else
            sb_puts(b, DASH);
        sb_puts(b, "</td></tr>\n");
    }
    free(t_img), free(t_gt), free(t_map), free(t_pred);
    return rc;
}

typedef struct {
    int index;
    double key; /* sort ascending; NaN last */
} pick;

static int pick_cmp(const void *pa, const void *pb)
{
    const pick *a = pa, *b = pb;
    int na = isnan(a->key), nb = isnan(b->key);
    if (na != nb) return na - nb;
    if (!na && a->key != b->key) return a->key < b->key ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

/* The n worst items of one label: label 0 by decreasing score (false positives), label 1 by increasing
 * score (misses). Returns the count picked into idx. */
static int pick_worst(const saa_report_category *cat, int label, int n, int *idx)
{
    pick *p = malloc((size_t)(cat->n_items > 0 ? cat->n_items : 1) * sizeof *p);
    if (!p) return -1;
    int m = 0;
    for (int i = 0; i < cat->n_items; i++)
        if ((cat->items[i].label != 0) == (label != 0))
            p[m].index = i, p[m].key = label ? cat->items[i].score : -cat->items[i].score, m++;
    qsort(p, (size_t)m, sizeof *p, pick_cmp);
    int k = m < n ? m : n;
    for (int i = 0; i < k; i++) idx[i] = p[i].index;
    free(p);
    return k;
}

static int gallery_table(sbuf *b, const saa_report_category *cat, int label, const int *idx, int k, double lo,
                         double hi, int thumb)
{
    static const char *head[2] = {"Worst false positives: normal images with the highest scores",
                                  "Worst misses: anomalous images with the lowest scores"};
    sb_printf(b, "<h3>%s</h3>\n", head[label != 0]);
    if (k == 0) {
        sb_printf(b, "<p class=\"note\">No %s images in this category.</p>\n", label ? "anomalous" : "normal");
        return SAA_OK;
    }
    sb_puts(b, "<table class=\"gallery\"><thead><tr><th>#</th><th>image / score</th><th>image</th>"
               "<th>ground truth</th><th>anomaly map</th><th>predicted mask</th></tr></thead><tbody>\n");
    int rc = SAA_OK;
    for (int i = 0; i < k && rc == SAA_OK; i++) rc = gallery_row(b, &cat->items[idx[i]], lo, hi, i + 1, thumb);
    sb_puts(b, "</tbody></table>\n");
    return rc;
}

/* The category's galleries: the n worst false positives and the n worst misses on one colour scale. */
static int gallery(sbuf *b, const saa_report_category *cat, int cat_index, const saa_report_options *o)
{
    int n = o->gallery_n;
    int *idx = malloc((size_t)(2 * n > 0 ? 2 * n : 1) * sizeof *idx);
    if (!idx) return saa_set_error(SAA_ENOMEM, "report: out of memory");
    int k0 = pick_worst(cat, 0, n, idx), k1 = k0 < 0 ? -1 : pick_worst(cat, 1, n, idx + k0);
    if (k1 < 0) {
        free(idx);
        return saa_set_error(SAA_ENOMEM, "report: out of memory");
    }
    double lo = 0, hi = 1;
    int shared = 0;
    int rc = gallery_range(cat, idx, k0 + k1, &lo, &hi, &shared);
    if (rc == SAA_OK && k0 + k1 > 0) colour_bar(b, cat_index, lo, hi, shared);
    if (rc == SAA_OK) rc = gallery_table(b, cat, 0, idx, k0, lo, hi, o->thumb_size);
    if (rc == SAA_OK) rc = gallery_table(b, cat, 1, idx + k0, k1, lo, hi, o->thumb_size);
    free(idx);
    return rc;
}

/* ---------- tables ---------- */

typedef struct {
    const char *head, *tip;
    size_t offset;
} metric_col;

#define MCOL(h, t, f) {h, t, offsetof(saa_metrics, f)}
static const metric_col COLS[] = {
    MCOL("I-AUROC", "image-level ROC AUC", image_auroc),
    MCOL("I-AP", "image-level average precision", image_ap),
    MCOL("I-F1max", "image-level max F1", image_f1),
    MCOL("P-AUROC", "pixel-level ROC AUC", pixel_auroc),
    MCOL("P-AP", "pixel-level average precision", pixel_ap),
    MCOL("F_p", "pixel-level max F1 (the paper's F_p)", pixel_f1),
    MCOL("AU-PRO", "MVTec AD AU-PRO up to FPR 0.3, normalised", aupro),
    MCOL("PRO (off.)", "official cal_pro_metric", aupro_official),
    MCOL("F_r", "region-level max F1 (IoU 0.6), corrected counting (the paper's F_r)", f_r),
    MCOL("F_r (off.)", "official calculate_max_f1_region", f_r_official),
};
#define N_COLS ((int)(sizeof COLS / sizeof COLS[0]))

static double col_value(const saa_metrics *m, int c)
{
    return m ? *(const double *)((const char *)m + COLS[c].offset) : NAN;
}

static void summary_table(sbuf *b, int n_cats, const saa_report_category *cats)
{
    sb_puts(b, "<table class=\"metrics\"><thead><tr><th>category</th><th>images</th><th>anomalous</th>");
    for (int c = 0; c < N_COLS; c++) {
        sb_puts(b, "<th title=\"");
        sb_escape(b, COLS[c].tip);
        sb_puts(b, "\">");
        sb_escape(b, COLS[c].head);
        sb_puts(b, "</th>");
    }
    sb_puts(b, "</tr></thead><tbody>\n");
    for (int k = 0; k < n_cats; k++) {
        const saa_metrics *m = cats[k].metrics;
        sb_printf(b, "<tr><td class=\"name\"><a href=\"#cat-%d\">", k);
        sb_escape(b, cats[k].name);
        sb_puts(b, "</a></td>");
        if (m)
            sb_printf(b, "<td>%lld</td><td>%lld</td>", (long long)m->n_images, (long long)m->n_anomalous);
        else
            sb_puts(b, "<td>" DASH "</td><td>" DASH "</td>");
        for (int c = 0; c < N_COLS; c++) {
            sb_puts(b, "<td>");
            sb_pct(b, col_value(m, c));
            sb_puts(b, "</td>");
        }
        sb_puts(b, "</tr>\n");
    }
    /* the paper's dataset rows: the mean over categories, undefined when any category's value is (as the
     * mean row of saa eval's metrics.json / metrics.csv) */
    int64_t n_img = 0, n_anom = 0;
    for (int k = 0; k < n_cats; k++)
        if (cats[k].metrics) n_img += cats[k].metrics->n_images, n_anom += cats[k].metrics->n_anomalous;
    sb_printf(b, "<tr class=\"mean\"><td class=\"name\">mean</td><td>%lld</td><td>%lld</td>", (long long)n_img,
              (long long)n_anom);
    for (int c = 0; c < N_COLS; c++) {
        double sum = 0;
        for (int k = 0; k < n_cats; k++) sum += col_value(cats[k].metrics, c);
        sb_puts(b, "<td>");
        sb_pct(b, n_cats ? sum / n_cats : NAN);
        sb_puts(b, "</td>");
    }
    sb_puts(b, "</tr>\n</tbody></table>\n");
}

static void category_table(sbuf *b, const saa_metrics *m)
{
    sb_puts(b, "<table class=\"metrics cat\"><tbody>\n");
    if (m) {
        sb_printf(b, "<tr><th>images</th><td>%lld</td></tr><tr><th>anomalous</th><td>%lld</td></tr>"
                     "<tr><th>GT regions</th><td>%lld</td></tr>\n",
                  (long long)m->n_images, (long long)m->n_anomalous, (long long)m->n_gt_regions);
    }
    for (int c = 0; c < N_COLS; c++) {
        sb_puts(b, "<tr><th title=\"");
        sb_escape(b, COLS[c].tip);
        sb_puts(b, "\">");
        sb_escape(b, COLS[c].head);
        sb_puts(b, "</th><td>");
        sb_pct(b, col_value(m, c));
        sb_puts(b, "</td></tr>\n");
    }
    sb_puts(b, "<tr><th title=\"normalised map value of the image max-F1\">I-F1 threshold</th><td>");
    sb_num(b, m ? m->image_f1_threshold : NAN, "%.4f");
    sb_puts(b, "</td></tr>\n<tr><th title=\"normalised map value of the pixel max-F1\">F_p threshold</th><td>");
    sb_num(b, m ? m->pixel_f1_threshold : NAN, "%.4f");
    sb_puts(b, "</td></tr>\n</tbody></table>\n");
}

static int category_plots(sbuf *b, const saa_report_category *cat)
{
    const saa_metrics *m = cat->metrics;
    image_curves ic;
    int rc = image_curves_compute(m, &ic);
    if (rc != SAA_OK) return rc;
    char summary[64];
    sb_puts(b, "<div class=\"plots\">\n");
    series roc = {ic.roc_n, ic.roc_x, ic.roc_y, 0, "#1f77b4", NULL};
    double v = m ? m->image_auroc : NAN;
    if (isnan(v))
        snprintf(summary, sizeof summary, "AUROC " DASH);
    else
        snprintf(summary, sizeof summary, "AUROC %.2f", v * 100 + 0.0);
    svg_plot(b, "Image ROC", summary, "false positive rate", "true positive rate", 0, 1, &roc, 1, 1, NAN);

    series pr = {ic.pr_n, ic.pr_x, ic.pr_y, 1, "#d62728", NULL};
    v = m ? m->image_ap : NAN;
    if (isnan(v))
        snprintf(summary, sizeof summary, "AP " DASH);
    else
        snprintf(summary, sizeof summary, "AP %.2f", v * 100 + 0.0);
    svg_plot(b, "Image precision-recall", summary, "recall", "precision", 0, 1, &pr, 1, 0, NAN);

    /* PRO over the official threshold grid (cal_pro_metric): mean per-region overlap against the FPR */
    saa_eval_params ep;
    saa_eval_params_default(&ep);
    series pro = {m && m->pro_fprs && m->pro_pros ? m->steps : 0, m ? m->pro_fprs : NULL, m ? m->pro_pros : NULL,
                  0, "#2ca02c", NULL};
    v = m ? m->aupro : NAN;
    if (isnan(v))
        snprintf(summary, sizeof summary, "AU-PRO (FPR %.1f) " DASH, ep.pro_fpr_limit);
    else
        snprintf(summary, sizeof summary, "AU-PRO (FPR %.1f) %.2f", ep.pro_fpr_limit, v * 100 + 0.0);
    svg_plot(b, "Per-region overlap", summary, "false positive rate", "PRO", 0, 1, &pro, 1, 0, ep.pro_fpr_limit);

    /* region F1 against the normalised threshold (calculate_max_f1_region's grid) */
    int grid = m && m->grid_thresholds && m->steps > 0;
    double x0 = 0, x1 = 1;
    if (grid) {
        x0 = INFINITY, x1 = -INFINITY;
        for (int i = 0; i < m->steps; i++)
            if (isfinite(m->grid_thresholds[i]))
                x0 = fmin(x0, m->grid_thresholds[i]), x1 = fmax(x1, m->grid_thresholds[i]);
    }
    series fr[2] = {{grid && m->fr_f1 ? m->steps : 0, grid ? m->grid_thresholds : NULL, m ? m->fr_f1 : NULL, 0,
                     "#9467bd", "F_r"},
                    {grid && m->fr_official_f1 ? m->steps : 0, grid ? m->grid_thresholds : NULL,
                     m ? m->fr_official_f1 : NULL, 0, "#ff7f0e", "F_r official"}};
    v = m ? m->f_r : NAN;
    if (isnan(v))
        snprintf(summary, sizeof summary, "max F_r " DASH);
    else
        snprintf(summary, sizeof summary, "max F_r %.2f", v * 100 + 0.0);
    svg_plot(b, "Region F1 (IoU 0.6)", summary, "threshold (normalised map)", "F1", x0, x1, fr, 2, 0, NAN);

    for (int i = 0; i < cat->n_curves; i++) {
        const saa_report_curve *c = &cat->curves[i];
        series s = {c->n, c->x, c->y, c->step, "#8c564b", NULL};
        svg_plot(b, c->title ? c->title : "", c->summary, c->x_label ? c->x_label : "", c->y_label ? c->y_label : "",
                 0, 1, &s, 1, 0, NAN);
    }
    sb_puts(b, "</div>\n");
    image_curves_free(&ic);
    return SAA_OK;
}

/* ---------- items from saa eval's maps ---------- */

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* STEM_mask.png next to STEM_map.npy / STEM_map.png / STEM_map_full.npy, when it exists. */
static int pred_mask_next_to(const char *map_path, char **out)
{
    static const char *suffixes[] = {"_map_full.npy", "_map.npy", "_map.png"};
    *out = NULL;
    size_t n = strlen(map_path);
    for (int k = 0; k < 3; k++) {
        size_t m = strlen(suffixes[k]);
        if (n < m || strcmp(map_path + n - m, suffixes[k])) continue;
        char *p = malloc(n - m + sizeof "_mask.png");
        if (!p) return saa_set_error(SAA_ENOMEM, "report: out of memory");
        memcpy(p, map_path, n - m);
        memcpy(p + n - m, "_mask.png", sizeof "_mask.png");
        FILE *f = fopen(p, "rb");
        if (f) {
            fclose(f);
            *out = p;
        } else {
            free(p);
        }
        break;
    }
    return SAA_OK;
}

void saa_report_items_free(saa_report_item *items, int n)
{
    if (!items) return;
    for (int i = 0; i < n; i++) {
        free((char *)items[i].id), free((char *)items[i].image), free((char *)items[i].gt_mask);
        free((char *)items[i].map_path), free((char *)items[i].pred_mask);
    }
    free(items);
}

int saa_report_items_from_maps(const saa_dataset *d, const char *maps_dir, const saa_metrics *m,
                               saa_report_item **items, int *n)
{
    *items = NULL;
    *n = 0;
    if (!m || !m->image_scores || m->n_images != d->n || d->n > 1 << 30)
        return saa_set_error(SAA_EINVAL, "report: %s: metrics of %lld images for a data set of %lld samples",
                             d->category ? d->category : "?", m ? (long long)m->n_images : 0LL, (long long)d->n);
    saa_report_item *it = calloc((size_t)(d->n ? d->n : 1), sizeof *it);
    if (!it) return saa_set_error(SAA_ENOMEM, "report: out of memory");
    int rc = SAA_OK;
    for (int64_t i = 0; i < d->n && rc == SAA_OK; i++) {
        const saa_sample *s = &d->samples[i];
        char *map = NULL, *pred = NULL;
        rc = saa_eval_find_map(maps_dir, d->category, s->id, &map);
        it[i].map_path = map;
        if (rc == SAA_OK) rc = pred_mask_next_to(map, &pred);
        it[i].pred_mask = pred;
        it[i].id = dup_str(s->id);
        it[i].image = dup_str(s->image);
        it[i].gt_mask = s->mask ? dup_str(s->mask) : NULL;
        it[i].label = s->label;
        it[i].score = m->image_scores[i];
        if (rc == SAA_OK && (!it[i].id || !it[i].image || (s->mask && !it[i].gt_mask)))
            rc = saa_set_error(SAA_ENOMEM, "report: out of memory");
    }
    if (rc != SAA_OK) {
        saa_report_items_free(it, (int)d->n);
        return rc;
    }
    *items = it;
    *n = (int)d->n;
    return SAA_OK;
}

/* ---------- the page ---------- */

static const char *STYLE =
    "body{font-family:sans-serif;margin:24px;color:#222;background:#fafafa}"
    "h1{margin:0 0 4px 0}h2{margin-top:36px;border-bottom:2px solid #ccc;padding-bottom:4px}"
    "h3{margin:18px 0 6px 0;font-size:15px}"
    ".sub{color:#666;margin:0 0 16px 0}.note{color:#666;font-size:13px}"
    "table{border-collapse:collapse;background:#fff}"
    "table.metrics td,table.metrics th{border:1px solid #ccc;padding:3px 8px;text-align:right;font-size:13px}"
    "table.metrics th{background:#eee}table.metrics td.name{text-align:left;font-weight:bold}"
    "table.metrics tr.mean td{background:#f3f3d8;font-weight:bold}"
    "table.cat th{text-align:left}"
    ".row{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}"
    ".plots{display:flex;flex-wrap:wrap;gap:10px;flex:1 1 0;min-width:620px}"
    "svg.plot{border:1px solid #ddd;background:#fff}"
    "svg .pt{font-size:14px;font-weight:bold}svg .ps{font-size:12px;fill:#444}"
    "svg .tk{font-size:10px;fill:#444}svg .al{font-size:11px;fill:#222}"
    "svg .g{stroke:#e4e4e4;stroke-width:1}svg .frame{fill:none;stroke:#888;stroke-width:1}"
    "svg .ref{stroke:#999;stroke-width:1;stroke-dasharray:4 3}"
    "table.gallery td,table.gallery th{border:1px solid #ddd;padding:4px;font-size:12px;vertical-align:middle}"
    "table.gallery td.id{max-width:200px;word-break:break-all}"
    "table.gallery img{display:block;image-rendering:auto}"
    "svg.cbar{vertical-align:middle;border:1px solid #999}"
    ".bad{color:#b00020}.ok{color:#0a7a2f}";

void saa_report_options_default(saa_report_options *o)
{
    o->gallery_n = 6;
    o->thumb_size = 160;
    o->subtitle = NULL;
}

static int render(sbuf *b, const char *title, int n_cats, const saa_report_category *cats,
                  const saa_report_options *o)
{
    sb_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>");
    sb_escape(b, title);
    sb_printf(b, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>", STYLE);
    sb_escape(b, title);
    sb_puts(b, "</h1>\n");
    if (o->subtitle) {
        sb_puts(b, "<p class=\"sub\">");
        sb_escape(b, o->subtitle);
        sb_puts(b, "</p>\n");
    }
    sb_puts(b, "<h2>Summary</h2>\n<p class=\"note\">Percentages as in the official results csv; "
               DASH " = undefined (one class only, or no ground-truth region).</p>\n");
    summary_table(b, n_cats, cats);
    for (int k = 0; k < n_cats; k++) {
        const saa_report_category *cat = &cats[k];
        sb_printf(b, "<h2 id=\"cat-%d\">", k);
        sb_escape(b, cat->name);
        sb_puts(b, "</h2>\n<div class=\"row\">\n");
        category_table(b, cat->metrics);
        int rc = category_plots(b, cat);
        sb_puts(b, "</div>\n");
        if (rc == SAA_OK && o->gallery_n > 0) rc = gallery(b, cat, k, o);
        if (rc != SAA_OK) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", saa_last_error());
            return saa_set_error(rc, "report: category %s: %s", cat->name ? cat->name : "?", msg);
        }
    }
    sb_puts(b, "</body>\n</html>\n");
    return b->oom ? saa_set_error(SAA_ENOMEM, "report: out of memory") : SAA_OK;
}

int saa_report_write(const char *path, const char *title, int n_categories, const saa_report_category *cats,
                     const saa_report_options *opts)
{
    saa_report_options o;
    if (opts)
        o = *opts;
    else
        saa_report_options_default(&o);
    if (!path || n_categories < 0 || (n_categories > 0 && !cats))
        return saa_set_error(SAA_EINVAL, "report: expected an output path and %d categories", n_categories);
    if (o.thumb_size <= 0 || o.thumb_size > 4096)
        return saa_set_error(SAA_EINVAL, "report: thumbnail size %d out of range 1..4096", o.thumb_size);
    if (o.gallery_n < 0) o.gallery_n = 0;
    for (int k = 0; k < n_categories; k++)
        if (cats[k].n_items < 0 || (cats[k].n_items > 0 && !cats[k].items) || cats[k].n_curves < 0 ||
            (cats[k].n_curves > 0 && !cats[k].curves))
            return saa_set_error(SAA_EINVAL, "report: category %d: inconsistent item or curve arrays", k);
    sbuf b = {0};
    int rc = render(&b, title ? title : "saa evaluation", n_categories, cats, &o);
    if (rc == SAA_OK) {
        size_t n = strlen(path);
        char *tmp = malloc(n + 6);
        if (!tmp) {
            free(b.s);
            return saa_set_error(SAA_ENOMEM, "report: out of memory");
        }
        memcpy(tmp, path, n);
        memcpy(tmp + n, ".part", 6);
        FILE *f = fopen(tmp, "wb");
        if (!f) {
            rc = saa_set_error(SAA_EIO, "%s: cannot create (%s)", tmp, strerror(errno));
        } else {
            int bad = fwrite(b.s, 1, b.len, f) != b.len;
            bad |= fclose(f) != 0;
            if (bad)
                rc = saa_set_error(SAA_EIO, "%s: cannot write (%s)", tmp, strerror(errno));
            else if (rename(tmp, path) != 0)
                rc = saa_set_error(SAA_EIO, "%s: cannot rename into place (%s)", path, strerror(errno));
            if (rc != SAA_OK) remove(tmp);
        }
        free(tmp);
    }
    free(b.s);
    return rc;
}
