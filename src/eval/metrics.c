/* SAA+ evaluation metrics over a test set, accumulated image by image.
 *
 * The official grid metrics (utils/metrics.py: cal_pro_metric, calculate_max_f1_region) threshold the
 * globally normalised maps at 200 levels `max - step * (max - min) / 200` with a strict `>`. Because the
 * levels decrease, the predicted sets are nested: each pixel is predicted from its "first step" on, so
 * the per-step counts of the PRO/FPR come from one histogram per region, and region F1 only needs work at
 * the steps where some pixel enters. The sklearn metrics use the distinct-score tables of scores.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "saa/metrics.h"
#include "saa/tensor.h"

void saa_eval_params_default(saa_eval_params *p)
{
    p->resolution = 400;     /* eval_SAA.py --eval-resolution */
    p->grid_steps = 200;     /* max_steps of cal_pro_metric / calculate_max_f1_region */
    p->pro_fpr_limit = 0.3;  /* cal_pro_metric(fpr_thresh=0.3) */
    p->region_iou = 0.6;     /* calculate_max_f1_region(pro_thresh=0.6) */
    p->memory_entries = (int64_t)100000000 / 24; /* 100 MB of distinct pixel scores, then spill to disk */
}

void saa_minmax_nan(const double *x, int64_t n, double *lo, double *hi)
{
    double a = *lo, b = *hi;
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        if (isnan(v) || isnan(a)) {
            a = b = NAN;
            break;
        }
        if (v < a) a = v;
        if (v > b) b = v;
    }
    *lo = a;
    *hi = b;
}

/* ---------- connected components ---------- */

static int32_t uf_find(int32_t *parent, int32_t x)
{
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

static void uf_union(int32_t *parent, int32_t a, int32_t b)
{
    a = uf_find(parent, a);
    b = uf_find(parent, b);
    if (a < b)
        parent[b] = a;
    else if (b < a)
        parent[a] = b;
}

/* Two-pass union-find labelling; parent needs h*w + 2 entries. The root of a
 * component is its smallest provisional label, which is the label of its first pixel in raster order,
 * so numbering roots in increasing order gives skimage's raster-order labels. */
static int label8_scratch(const uint8_t *m, int h, int w, int32_t *lab, int32_t *parent)
{
    int32_t next = 1;
    parent[0] = 0;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            if (!m[i]) {
                lab[i] = 0;
                continue;
            }
            int32_t l = 0;
            /* already-visited 8-neighbours: W, NW, N, NE */
            int32_t nb[4] = {x > 0 ? lab[i - 1] : 0, (x > 0 && y > 0) ? lab[i - w - 1] : 0,
                             y > 0 ? lab[i - w] : 0, (y > 0 && x < w - 1) ? lab[i - w + 1] : 0};
            for (int k = 0; k < 4; k++) {
                if (!nb[k]) continue;
                if (!l)
                    l = nb[k];
                else if (nb[k] != l)
                    uf_union(parent, l, nb[k]);
            }
            if (!l) {
                l = next++;
                parent[l] = l;
            }
            lab[i] = l;
        }
    }
    /* compact: parent[x] <= x always (unions attach the larger root to the smaller, path halving only
     * shortcuts), so in increasing order parent[l] is either l (a root: next final label) or an
     * already-processed label whose entry holds the final label, stored negated. */
    int32_t n = 0;
    for (int32_t l = 1; l < next; l++) {
        int32_t p = parent[l];
        parent[l] = p == l ? -(++n) : parent[p];
    }
    size_t N = (size_t)h * w;
    for (size_t i = 0; i < N; i++)
        if (lab[i]) lab[i] = -parent[lab[i]];
    return n;
}

int saa_label8(const uint8_t *mask, int h, int w, int32_t *labels)
{
    int32_t *parent = malloc(((size_t)h * w + 2) * sizeof *parent);
    if (!parent) return saa_set_error(SAA_ENOMEM, "label: out of memory");
    int n = label8_scratch(mask, h, w, labels, parent);
    free(parent);
    return n;
}

/* ---------- accumulator ---------- */

struct saa_metric_acc {
    saa_eval_params p;
    int R, S;
    double lo, hi;
    int normalise;
    double *thr;        /* S grid thresholds (NaN when the set is constant or has NaN) */
    int grid_defined;
    /* per-step sums over the set */
    int64_t *fp_count;  /* cal_pro_metric: predicted normal pixels */
    double *pro_sum;    /* cal_pro_metric: sum of per-region overlaps */
    int64_t *n_pred, *n_hits, *n_tp; /* region F1: predicted regions, official hits, corrected TPs */
    int64_t n_neg, n_pos, n_regions;
    saa_score_builder *pixels;
    int pixels_invalid;
    double *img_score;
    int *img_label;
    int64_t n_img, cap_img;
    /* per-image scratch */
    int32_t *fs, *glab, *parent, *hist;
    uint8_t *work;
    double *w_pro;
};

void saa_metric_acc_free(saa_metric_acc *a)
{
    if (!a) return;
    free(a->thr);
    free(a->fp_count), free(a->pro_sum), free(a->n_pred), free(a->n_hits), free(a->n_tp);
    saa_score_builder_free(a->pixels);
    free(a->img_score), free(a->img_label);
    free(a->fs), free(a->glab), free(a->parent), free(a->hist), free(a->work), free(a->w_pro);
    free(a);
}

saa_metric_acc *saa_metric_acc_new(const saa_eval_params *p, double lo, double hi, int normalise)
{
    if (p->resolution <= 0 || p->grid_steps <= 0) {
        saa_set_error(SAA_EINVAL, "metrics: resolution and grid_steps must be positive");
        return NULL;
    }
    saa_metric_acc *a = calloc(1, sizeof *a);
    if (!a) goto oom;
    a->p = *p;
    a->R = p->resolution;
    a->S = p->grid_steps;
    a->lo = lo, a->hi = hi, a->normalise = normalise;
    size_t S = (size_t)a->S, N = (size_t)a->R * a->R;
    a->thr = malloc(S * sizeof *a->thr);
    a->fp_count = calloc(S, sizeof *a->fp_count);
    a->pro_sum = calloc(S, sizeof *a->pro_sum);
    a->n_pred = calloc(S, sizeof *a->n_pred);
    a->n_hits = calloc(S, sizeof *a->n_hits);
    a->n_tp = calloc(S, sizeof *a->n_tp);
    a->pixels = saa_score_builder_new();
    if (a->pixels) saa_score_builder_set_budget(a->pixels, p->memory_entries);
    a->fs = malloc(N * sizeof *a->fs);
    a->glab = malloc(N * sizeof *a->glab);
    a->parent = malloc((N + 2) * sizeof *a->parent);
    a->hist = malloc((S + 1) * sizeof *a->hist);
    a->work = malloc(N);
    a->w_pro = malloc(N * sizeof *a->w_pro);
    if (!a->thr || !a->fp_count || !a->pro_sum || !a->n_pred || !a->n_hits || !a->n_tp || !a->pixels || !a->fs ||
        !a->glab || !a->parent || !a->hist || !a->work || !a->w_pro)
        goto oom;
    /* grid range = min/max of the normalised maps (cal_pro_metric: score_imgs.max()/min()) */
    double gmax = hi, gmin = lo;
    if (normalise) {
        gmax = (hi - lo) / (hi - lo);
        gmin = (lo - lo) / (hi - lo);
    }
    double delta = (gmax - gmin) / a->S;
    for (int s = 0; s < a->S; s++) a->thr[s] = gmax - s * delta;
    a->grid_defined = !isnan(gmax) && !isnan(gmin);
    return a;
oom:
    saa_metric_acc_free(a);
    saa_set_error(SAA_ENOMEM, "metrics: out of memory");
    return NULL;
}

/* First grid step at which v > thr[step] (thresholds non-increasing), or S if never. */
static int first_step(const double *thr, int S, double v)
{
    if (!(v > thr[S - 1])) return S; /* also NaN scores / NaN grid */
    int lo = 0, hi = S - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (v > thr[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

typedef struct {
    int r0, c0, r1, c1; /* bbox, [r0, r1) x [c0, c1) as skimage regionprops.bbox */
    int64_t area;
} region;

static int regions_of(const int32_t *lab, int n, int h, int w, region *reg)
{
    for (int k = 0; k < n; k++) reg[k] = (region){h, w, -1, -1, 0};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int32_t l = lab[(size_t)y * w + x];
            if (!l) continue;
            region *g = &reg[l - 1];
            if (y < g->r0) g->r0 = y;
            if (x < g->c0) g->c0 = x;
            if (y + 1 > g->r1) g->r1 = y + 1;
            if (x + 1 > g->c1) g->c1 = x + 1;
            g->area++;
        }
    return 0;
}

/* Summed-area table of an h x w array: P[(y+1)*(w+1) + x+1] = count of m in [0,y] x [0,x]. */
static void prefix_sum(const uint8_t *m, int h, int w, int32_t *P)
{
    int W = w + 1;
    for (int x = 0; x <= w; x++) P[x] = 0;
    for (int y = 0; y < h; y++) {
        int32_t row = 0;
        P[(size_t)(y + 1) * W] = 0;
        for (int x = 0; x < w; x++) {
            row += m[(size_t)y * w + x] != 0;
            P[(size_t)(y + 1) * W + x + 1] = P[(size_t)y * W + x + 1] + row;
        }
    }
}

static int32_t rect_sum(const int32_t *P, int w, int r0, int c0, int r1, int c1)
{
    int W = w + 1;
    return P[(size_t)r1 * W + c1] - P[(size_t)r0 * W + c1] - P[(size_t)r1 * W + c0] + P[(size_t)r0 * W + c0];
}

/* rect_sum over [r0,r1) x [c0,c1) of image coordinates for a table covering only the box b (the array is
 * zero outside it) */
typedef struct {
    int r0, c0, h, w;
} box;

static int32_t box_rect_sum(const int32_t *P, box b, int r0, int c0, int r1, int c1)
{
    r0 = r0 < b.r0 ? 0 : r0 - b.r0, c0 = c0 < b.c0 ? 0 : c0 - b.c0;
    r1 = r1 - b.r0 > b.h ? b.h : r1 - b.r0, c1 = c1 - b.c0 > b.w ? b.w : c1 - b.c0;
    if (r1 <= r0 || c1 <= c0) return 0;
    return rect_sum(P, b.w, r0, c0, r1, c1);
}

/* Per-thread buffers of the region-F1 step loop. */
typedef struct {
    uint8_t *pred, *both;
    int32_t *plab, *parent, *Pp, *Ip;
    int32_t *start;   /* per predicted region: offset of its overlap pixels in ovl (counting sort) */
    int32_t *ovl;     /* GT labels of the predicted pixels inside a GT region, grouped by predicted region */
    int32_t *gcount;  /* per GT label: overlap with the current predicted region (all zero between regions) */
    int32_t *touched; /* GT labels with a nonzero gcount */
    region *preg;
} step_scratch;

static void scratch_free(step_scratch *t)
{
    free(t->pred), free(t->both), free(t->plab), free(t->parent), free(t->Pp), free(t->Ip), free(t->start),
        free(t->ovl), free(t->gcount), free(t->touched), free(t->preg);
}

static int scratch_alloc(step_scratch *t, int R)
{
    size_t N = (size_t)R * R, W = (size_t)(R + 1) * (R + 1);
    memset(t, 0, sizeof *t);
    t->pred = malloc(N);
    t->both = malloc(N);
    t->plab = malloc(N * sizeof *t->plab);
    t->parent = malloc((N + 2) * sizeof *t->parent);
    t->Pp = malloc(W * sizeof *t->Pp);
    t->Ip = malloc(W * sizeof *t->Ip);
    t->start = malloc((N + 2) * sizeof *t->start);
    t->ovl = malloc(N * sizeof *t->ovl);
    t->gcount = calloc(N + 1, sizeof *t->gcount);
    t->touched = malloc((N + 1) * sizeof *t->touched);
    t->preg = malloc((N + 1) * sizeof *t->preg);
    if (!t->pred || !t->both || !t->plab || !t->parent || !t->Pp || !t->Ip || !t->start || !t->ovl || !t->gcount ||
        !t->touched || !t->preg) {
        scratch_free(t);
        return SAA_ENOMEM;
    }
    return SAA_OK;
}

/* Region F1 of one image at one grid step: predicted regions, official hits (calculate_max_f1_region:
 * crop-IoU over the union of the two bounding boxes, max over GT regions starting from 0), corrected true
 * positives (predicted regions whose component IoU with some GT region is >= iou_thr). */
static void region_step(const int32_t *fs, int s, const int32_t *glab, const uint8_t *gt, const int32_t *Gp,
                        const region *greg, int ngt, int R, box b, double iou_thr, step_scratch *t,
                        int64_t *out_pred, int64_t *out_hits, int64_t *out_tp)
{
    /* only the box holding every pixel that is ever predicted is labelled (the rest is never predicted) */
    for (int y = 0; y < b.h; y++)
        for (int x = 0; x < b.w; x++) {
            size_t i = (size_t)(b.r0 + y) * R + b.c0 + x, j = (size_t)y * b.w + x;
            t->pred[j] = fs[i] <= s;
            t->both[j] = t->pred[j] && gt[i];
        }
    int np = label8_scratch(t->pred, b.h, b.w, t->plab, t->parent);
    *out_pred = np;
    *out_hits = *out_tp = 0;
    if (np == 0) return;
    regions_of(t->plab, np, b.h, b.w, t->preg);
    for (int j = 0; j < np; j++) {
        region *P = &t->preg[j];
        P->r0 += b.r0, P->r1 += b.r0, P->c0 += b.c0, P->c1 += b.c0;
    }
    /* official hits */
    if (ngt > 0) {
        prefix_sum(t->pred, b.h, b.w, t->Pp);
        prefix_sum(t->both, b.h, b.w, t->Ip);
        int64_t hits = 0;
        for (int j = 0; j < np; j++) {
            const region *P = &t->preg[j];
            float best = 0;
            for (int k = 0; k < ngt; k++) {
                const region *G = &greg[k];
                int r0 = P->r0 < G->r0 ? P->r0 : G->r0, c0 = P->c0 < G->c0 ? P->c0 : G->c0;
                int r1 = P->r1 > G->r1 ? P->r1 : G->r1, c1 = P->c1 > G->c1 ? P->c1 : G->c1;
                int32_t inter = box_rect_sum(t->Ip, b, r0, c0, r1, c1);
                int32_t uni = box_rect_sum(t->Pp, b, r0, c0, r1, c1) + rect_sum(Gp, R, r0, c0, r1, c1) - inter;
                float iou = (float)inter / (float)uni; /* float32 sums in the official code */
                if (iou > best) best = iou;
            }
            hits += (double)best >= iou_thr;
        }
        *out_hits = hits;
    }
    /* corrected: IoU of every (predicted, GT) pair that overlaps. The overlap pixels are bucketed by
     * predicted region (counting sort), then counted per GT label, so the cost stays linear and any IoU
     * threshold works (at or below 0.5 a predicted region can match several GT regions). */
    for (int j = 0; j <= np + 1; j++) t->start[j] = 0;
    for (int y = 0; y < b.h; y++) {
        const int32_t *pl = t->plab + (size_t)y * b.w, *gl = glab + (size_t)(b.r0 + y) * R + b.c0;
        for (int x = 0; x < b.w; x++)
            if (pl[x] && gl[x]) t->start[pl[x] + 1]++;
    }
    for (int j = 1; j <= np + 1; j++) t->start[j] += t->start[j - 1];
    for (int y = 0; y < b.h; y++) {
        const int32_t *pl = t->plab + (size_t)y * b.w, *gl = glab + (size_t)(b.r0 + y) * R + b.c0;
        for (int x = 0; x < b.w; x++)
            if (pl[x] && gl[x]) t->ovl[t->start[pl[x]]++] = gl[x];
    }
    /* start[j] now ends region j's bucket, which begins at start[j - 1] (start[0] = 0) */
    int64_t tp = 0;
    for (int j = 1; j <= np; j++) {
        int ntouched = 0, matched = 0;
        for (int32_t q = t->start[j - 1]; q < t->start[j]; q++) {
            int32_t k = t->ovl[q];
            if (t->gcount[k]++ == 0) t->touched[ntouched++] = k;
        }
        for (int q = 0; q < ntouched; q++) {
            int32_t k = t->touched[q];
            double inter = t->gcount[k];
            double uni = (double)t->preg[j - 1].area + (double)greg[k - 1].area - inter;
            matched |= inter / uni >= iou_thr;
            t->gcount[k] = 0;
        }
        tp += matched;
    }
    *out_tp = tp;
}

/* scipy.ndimage.binary_fill_holes(region_image, structure=ones((3,3))) as skimage 0.19 filled_image: the
 * background of the bounding box reached 8-connectedly from its border stays background, the rest is
 * filled. out[h*w] = 1 inside the filled region. stack has h*w entries. */
static void fill_holes8(const int32_t *glab, int R, int32_t k, const region *g, uint8_t *out, int32_t *stack)
{
    int h = g->r1 - g->r0, w = g->c1 - g->c0;
    /* out: 1 = region or not yet reached background, 0 = reached background */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) out[y * w + x] = 2 * (glab[(size_t)(g->r0 + y) * R + g->c0 + x] == k);
    /* 2 = region pixel, 0 = unvisited background; mark reached background as 1 */
    int top = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if ((y == 0 || x == 0 || y == h - 1 || x == w - 1) && out[y * w + x] == 0) {
                out[y * w + x] = 1;
                stack[top++] = y * w + x;
            }
    while (top > 0) {
        int i = stack[--top], y = i / w, x = i % w;
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) {
                int yy = y + dy, xx = x + dx;
                if (yy < 0 || xx < 0 || yy >= h || xx >= w) continue;
                if (out[yy * w + xx] == 0) {
                    out[yy * w + xx] = 1;
                    stack[top++] = yy * w + xx;
                }
            }
    }
    for (int i = 0; i < h * w; i++) out[i] = out[i] != 1;
}

int saa_metric_acc_add(saa_metric_acc *a, double *map, const uint8_t *mask, int label)
{
    int R = a->R, S = a->S;
    size_t N = (size_t)R * R;
    if (a->normalise) {
        double d = a->hi - a->lo;
        for (size_t i = 0; i < N; i++) map[i] = (map[i] - a->lo) / d; /* eval_utils.normalize */
    }
    /* image score: np.max of the normalised map (NaN propagates) */
    double best = -INFINITY;
    for (size_t i = 0; i < N; i++) {
        if (isnan(map[i])) {
            best = NAN;
            break;
        }
        if (map[i] > best) best = map[i];
    }
    if (a->n_img == a->cap_img) {
        int64_t cap = a->cap_img ? 2 * a->cap_img : 64;
        double *s = realloc(a->img_score, (size_t)cap * sizeof *s);
        if (s) a->img_score = s;
        int *l = realloc(a->img_label, (size_t)cap * sizeof *l);
        if (l) a->img_label = l;
        if (!s || !l) return saa_set_error(SAA_ENOMEM, "metrics: out of memory");
        a->cap_img = cap;
    }
    a->img_score[a->n_img] = best;
    a->img_label[a->n_img] = label != 0;
    a->n_img++;

    /* GT regions (8-connected), their areas/bboxes */
    uint8_t *gt = a->work;
    for (size_t i = 0; i < N; i++) gt[i] = mask[i] != 0;
    int ngt = label8_scratch(gt, R, R, a->glab, a->parent);
    region *greg = malloc((size_t)(ngt > 0 ? ngt : 1) * sizeof *greg);
    int32_t *Gp = malloc((size_t)(R + 1) * (R + 1) * sizeof *Gp);
    uint8_t *filled = malloc(N);
    int32_t *stack = malloc(N * sizeof *stack);
    if (!greg || !Gp || !filled || !stack) {
        free(greg), free(Gp), free(filled), free(stack);
        return saa_set_error(SAA_ENOMEM, "metrics: out of memory");
    }
    regions_of(a->glab, ngt, R, R, greg);
    prefix_sum(gt, R, R, Gp);
    a->n_regions += ngt;

    /* pixel table (sklearn metrics + AU-PRO weights) */
    int rc = SAA_OK;
    int finite = 1;
    for (size_t i = 0; i < N && finite; i++) finite = isfinite(map[i]);
    if (!finite) a->pixels_invalid = 1;
    if (!a->pixels_invalid) {
        for (size_t i = 0; i < N; i++)
            a->w_pro[i] = a->glab[i] ? 1.0 / (double)greg[a->glab[i] - 1].area : 0.0;
        rc = saa_score_builder_add(a->pixels, map, gt, a->w_pro, (int64_t)N);
    }
    for (size_t i = 0; i < N; i++) {
        if (gt[i])
            a->n_pos++;
        else
            a->n_neg++;
    }

    /* first predicted step of every pixel */
    for (size_t i = 0; i < N; i++) a->fs[i] = first_step(a->thr, S, map[i]);

    /* cal_pro_metric: FPR counts and per-region overlaps with the hole-filled region */
    memset(a->hist, 0, (size_t)(S + 1) * sizeof *a->hist);
    for (size_t i = 0; i < N; i++)
        if (!gt[i]) a->hist[a->fs[i]]++;
    int64_t c = 0;
    for (int s = 0; s < S; s++) a->fp_count[s] += (c += a->hist[s]);
    for (int k = 0; k < ngt; k++) {
        const region *g = &greg[k];
        int h = g->r1 - g->r0, w = g->c1 - g->c0;
        fill_holes8(a->glab, R, k + 1, g, filled, stack);
        memset(a->hist, 0, (size_t)(S + 1) * sizeof *a->hist);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                if (filled[y * w + x]) a->hist[a->fs[(size_t)(g->r0 + y) * R + g->c0 + x]]++;
        c = 0;
        for (int s = 0; s < S; s++) {
            c += a->hist[s];
            a->pro_sum[s] += (double)c / (double)g->area;
        }
    }
    free(filled), free(stack);

    /* region F1 at the steps where the prediction changes; copied forward elsewhere */
    memset(a->hist, 0, (size_t)(S + 1) * sizeof *a->hist);
    for (size_t i = 0; i < N; i++) a->hist[a->fs[i]]++;
    int *steps = malloc((size_t)S * sizeof *steps);
    int64_t *r_pred = calloc((size_t)S * 3, sizeof *r_pred);
    if (!steps || !r_pred) {
        free(steps), free(r_pred), free(greg), free(Gp);
        return saa_set_error(SAA_ENOMEM, "metrics: out of memory");
    }
    int nsteps = 0;
    for (int s = 0; s < S; s++)
        if (a->hist[s]) steps[nsteps++] = s;
    box b = {R, R, 0, 0};
    int br1 = -1, bc1 = -1;
    for (int y = 0; y < R; y++)
        for (int x = 0; x < R; x++)
            if (a->fs[(size_t)y * R + x] < S) {
                if (y < b.r0) b.r0 = y;
                if (x < b.c0) b.c0 = x;
                if (y > br1) br1 = y;
                if (x > bc1) bc1 = x;
            }
    if (br1 < 0) nsteps = 0; /* nothing is ever predicted */
    b.h = br1 - b.r0 + 1, b.w = bc1 - b.c0 + 1;
    int failed = 0;
#pragma omp parallel num_threads(saa_threads())
    {
        step_scratch t;
        int ok = scratch_alloc(&t, R) == SAA_OK;
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int q = 0; q < nsteps; q++) {
            if (!ok) continue;
            int s = steps[q];
            region_step(a->fs, s, a->glab, gt, Gp, greg, ngt, R, b, a->p.region_iou, &t, &r_pred[3 * s],
                        &r_pred[3 * s + 1], &r_pred[3 * s + 2]);
        }
        if (ok) scratch_free(&t);
    }
    if (failed) rc = saa_set_error(SAA_ENOMEM, "metrics: out of memory");
    for (int s = 1; s < S; s++)
        if (!a->hist[s]) memcpy(&r_pred[3 * s], &r_pred[3 * (s - 1)], 3 * sizeof *r_pred);
    for (int s = 0; s < S; s++) {
        a->n_pred[s] += r_pred[3 * s];
        a->n_hits[s] += r_pred[3 * s + 1];
        a->n_tp[s] += r_pred[3 * s + 2];
    }
    free(steps), free(r_pred), free(greg), free(Gp);
    return rc;
}

void saa_metrics_free(saa_metrics *m)
{
    if (!m) return;
    free(m->grid_thresholds), free(m->pro_fprs), free(m->pro_pros);
    free(m->fr_official_f1), free(m->fr_official_recall), free(m->fr_official_precision), free(m->fr_f1);
    free(m->fr_official_n_pred), free(m->fr_official_n_hits);
    free(m->image_scores), free(m->image_labels);
    free(m->pixel_roc.x), free(m->pixel_roc.y), free(m->pixel_pr.x), free(m->pixel_pr.y);
    memset(m, 0, sizeof *m);
}

/* cal_pro_metric after the step loop: keep FPR <= limit, min-max rescale those FPRs, sklearn auc. */
static double official_aupro(const double *fprs, const double *pros, int S, double limit)
{
    double *x = malloc((size_t)S * sizeof *x), *y = malloc((size_t)S * sizeof *y);
    if (!x || !y) {
        free(x), free(y);
        return NAN;
    }
    int n = 0;
    for (int s = 0; s < S; s++)
        if (fprs[s] <= limit) x[n] = fprs[s], y[n] = pros[s], n++;
    double area = NAN;
    if (n >= 2) { /* sklearn auc needs 2 points; rescale of an empty selection raises */
        double lo = x[0], hi = x[0];
        for (int i = 1; i < n; i++) lo = fmin(lo, x[i]), hi = fmax(hi, x[i]);
        for (int i = 0; i < n; i++) x[i] = (x[i] - lo) / (hi - lo);
        /* auc(): direction from np.diff(x); the grid's FPRs never decrease */
        int dec = 0, inc = 0;
        for (int i = 1; i < n; i++) dec |= x[i] - x[i - 1] < 0, inc |= x[i] - x[i - 1] > 0;
        double dir = (dec && !inc) ? -1.0 : 1.0;
        if (dec && inc) {
            area = NAN; /* sklearn raises: x neither increasing nor decreasing */
        } else {
            area = 0;
            for (int i = 1; i < n; i++) area += (x[i] - x[i - 1]) * (y[i] + y[i - 1]) / 2.0;
            area *= dir;
        }
    }
    free(x), free(y);
    return area;
}

int saa_metric_acc_finish(saa_metric_acc *a, saa_metrics *m)
{
    memset(m, 0, sizeof *m);
    int S = a->S, rc = SAA_OK;
    m->n_images = a->n_img;
    m->n_gt_regions = a->n_regions;
    m->n_pos_pixels = a->n_pos;
    m->n_neg_pixels = a->n_neg;
    m->steps = S;
    m->map_lo = a->lo, m->map_hi = a->hi;
    m->image_scores = malloc((size_t)(a->n_img > 0 ? a->n_img : 1) * sizeof *m->image_scores);
    m->image_labels = malloc((size_t)(a->n_img > 0 ? a->n_img : 1) * sizeof *m->image_labels);
    double *fprs = malloc((size_t)S * sizeof *fprs), *pros = malloc((size_t)S * sizeof *pros);
    double *ff1 = malloc((size_t)S * sizeof *ff1), *frec = malloc((size_t)S * sizeof *frec);
    double *fprec = malloc((size_t)S * sizeof *fprec), *cf1 = malloc((size_t)S * sizeof *cf1);
    if (!m->image_scores || !m->image_labels || !fprs || !pros || !ff1 || !frec || !fprec || !cf1) {
        free(fprs), free(pros), free(ff1), free(frec), free(fprec), free(cf1);
        saa_metrics_free(m);
        saa_metric_acc_free(a);
        return saa_set_error(SAA_ENOMEM, "metrics: out of memory");
    }
    for (int64_t i = 0; i < a->n_img; i++) {
        m->image_scores[i] = a->img_score[i];
        m->image_labels[i] = a->img_label[i];
        m->n_anomalous += a->img_label[i];
    }
    /* image level: sklearn raises on NaN input -> undefined */
    m->image_auroc = m->image_ap = m->image_f1 = m->image_f1_threshold = NAN;
    int img_finite = a->n_img > 0;
    for (int64_t i = 0; i < a->n_img; i++) img_finite &= isfinite(a->img_score[i]) != 0;
    if (img_finite) {
        saa_score_builder *b = saa_score_builder_new();
        uint8_t *lab = malloc((size_t)a->n_img);
        saa_score_table t;
        int irc = b && lab ? SAA_OK : saa_set_error(SAA_ENOMEM, "metrics: out of memory");
        for (int64_t i = 0; irc == SAA_OK && i < a->n_img; i++) lab[i] = (uint8_t)a->img_label[i];
        if (irc == SAA_OK) irc = saa_score_builder_add(b, a->img_score, lab, NULL, a->n_img);
        if (irc == SAA_OK) {
            irc = saa_score_builder_finish(b, &t);
            b = NULL;
        }
        if (irc == SAA_OK) {
            m->image_auroc = saa_roc_auc(&t);
            m->image_ap = saa_average_precision(&t);
            m->image_f1 = saa_max_f1(&t, &m->image_f1_threshold);
            saa_score_table_free(&t);
        }
        if (irc != SAA_OK) rc = irc;
        saa_score_builder_free(b);
        free(lab);
    }
    /* pixel level */
    m->pixel_auroc = m->pixel_ap = m->pixel_f1 = m->pixel_f1_threshold = m->aupro = m->f_r = NAN;
    saa_score_stream *st;
    int prc = saa_score_builder_finish_stream(a->pixels, &st);
    a->pixels = NULL;
    if (prc != SAA_OK) {
        rc = prc;
    } else {
        saa_rank_metrics r;
        if (!a->pixels_invalid && (a->n_pos + a->n_neg) > 0) {
            prc = saa_score_stream_metrics(st, a->n_regions, a->p.pro_fpr_limit, &r);
            if (prc == SAA_OK) prc = saa_score_stream_curves(st, 1e-3, &m->pixel_roc, &m->pixel_pr);
            if (prc == SAA_OK) {
                m->pixel_auroc = r.auroc;
                m->pixel_ap = r.ap;
                m->pixel_f1 = r.f1;
                m->pixel_f1_threshold = r.f1_threshold;
                m->aupro = r.aupro;
            } else {
                rc = prc;
            }
        }
        saa_score_stream_free(st);
    }
    /* official grid curves */
    double fr_off = 0, fr = 0;
    for (int s = 0; s < S; s++) {
        fprs[s] = (double)a->fp_count[s] / (double)a->n_neg; /* 0/0 -> NaN as numpy */
        pros[s] = a->n_regions ? a->pro_sum[s] / (double)a->n_regions : NAN;
        double recall = 0, precision = 0, f1 = 0;
        if (a->n_regions > 0 && a->n_pred[s] > 0) {
            recall = (double)a->n_hits[s] / (double)a->n_regions;
            precision = (double)a->n_hits[s] / (double)a->n_pred[s];
            f1 = (recall == 0 || precision == 0) ? 0 : 2 * recall * precision / (recall + precision);
        }
        ff1[s] = f1, frec[s] = recall, fprec[s] = precision;
        if (f1 > fr_off) fr_off = f1;
        double cf = 0;
        if (a->n_regions > 0 && a->n_pred[s] > 0 && a->n_tp[s] > 0) {
            double P = (double)a->n_tp[s] / (double)a->n_pred[s], Rc = (double)a->n_tp[s] / (double)a->n_regions;
            cf = 2 * P * Rc / (P + Rc);
        }
        cf1[s] = cf;
        if (cf > fr) fr = cf;
    }
    m->f_r_official = fr_off;
    m->aupro_official = official_aupro(fprs, pros, S, a->p.pro_fpr_limit);
    if (!a->pixels_invalid) m->f_r = fr;
    if (a->grid_defined) {
        m->grid_thresholds = malloc((size_t)S * sizeof *m->grid_thresholds);
        m->fr_official_n_pred = malloc((size_t)S * sizeof *m->fr_official_n_pred);
        m->fr_official_n_hits = malloc((size_t)S * sizeof *m->fr_official_n_hits);
        if (m->grid_thresholds && m->fr_official_n_pred && m->fr_official_n_hits) {
            memcpy(m->grid_thresholds, a->thr, (size_t)S * sizeof *a->thr);
            memcpy(m->fr_official_n_pred, a->n_pred, (size_t)S * sizeof *a->n_pred);
            memcpy(m->fr_official_n_hits, a->n_hits, (size_t)S * sizeof *a->n_hits);
            m->pro_fprs = fprs, m->pro_pros = pros, m->fr_official_f1 = ff1;
            m->fr_official_recall = frec, m->fr_official_precision = fprec, m->fr_f1 = cf1;
            fprs = pros = ff1 = frec = fprec = cf1 = NULL;
        } else {
            rc = saa_set_error(SAA_ENOMEM, "metrics: out of memory");
        }
    }
    free(fprs), free(pros), free(ff1), free(frec), free(fprec), free(cf1);
    saa_metric_acc_free(a);
    if (rc != SAA_OK) saa_metrics_free(m); /* the error message was set where it happened */
    return rc;
}

int saa_metrics_compute(const saa_eval_params *p, int64_t n, saa_eval_loader load, void *ctx,
                        saa_eval_progress progress, void *progress_ctx, saa_metrics *out)
{
    memset(out, 0, sizeof *out);
    size_t N = (size_t)p->resolution * p->resolution;
    double *map = malloc(N * sizeof *map);
    uint8_t *mask = malloc(N);
    if (!map || !mask) {
        free(map), free(mask);
        return saa_set_error(SAA_ENOMEM, "metrics: out of memory");
    }
    double lo = INFINITY, hi = -INFINITY;
    int label, rc = SAA_OK;
    for (int64_t i = 0; i < n && rc == SAA_OK; i++) {
        rc = load(ctx, i, map, mask, &label);
        if (rc == SAA_OK) saa_minmax_nan(map, (int64_t)N, &lo, &hi);
        if (progress) progress(progress_ctx, 1, i + 1, n);
    }
    saa_metric_acc *a = rc == SAA_OK ? saa_metric_acc_new(p, lo, hi, 1) : NULL;
    if (rc == SAA_OK && !a) rc = SAA_ENOMEM;
    for (int64_t i = 0; i < n && rc == SAA_OK; i++) {
        rc = load(ctx, i, map, mask, &label);
        if (rc == SAA_OK) rc = saa_metric_acc_add(a, map, mask, label);
        if (progress) progress(progress_ctx, 2, i + 1, n);
    }
    free(map), free(mask);
    if (rc != SAA_OK) {
        saa_metric_acc_free(a);
        return rc;
    }
    return saa_metric_acc_finish(a, out);
}
