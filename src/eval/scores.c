/* Distinct-score tables and the scikit-learn 1.2 ranking metrics computed from them.
 *
 * sklearn's _binary_clf_curve sorts the scores, keeps the last index of every run of equal scores and
 * takes cumulative positive/negative counts there: everything roc_curve, precision_recall_curve and
 * average_precision_score return is a function of (distinct score, #pos, #neg) in decreasing score
 * order. A table of exactly that is built here from per-image sorted runs (merged pairwise, so the
 * cost is O(N log images) and memory is the number of distinct scores), giving the same values as
 * sklearn on the full pixel array, ties included. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saa/metrics.h"
#include "saa/tensor.h"

/* ---------- builder ---------- */

/* One entry of a run as stored on disk. */
typedef struct {
    double value, pro;
    uint32_t pos, neg;
} disk_entry;

struct saa_score_builder {
    saa_score_table *runs; /* stack of sorted runs; merged while a run is not much larger than the next */
    int count, cap;
    int64_t mem_entries, budget; /* entries held in memory; above budget they are spilled */
    FILE **disk;                 /* spilled runs (anonymous temporary files) */
    int64_t *disk_n;
    int ndisk;
    double P, N;
};

saa_score_builder *saa_score_builder_new(void)
{
    saa_score_builder *b = calloc(1, sizeof *b);
    if (!b) saa_set_error(SAA_ENOMEM, "scores: out of memory");
    if (b) b->budget = INT64_MAX;
    return b;
}

void saa_score_builder_set_budget(saa_score_builder *b, int64_t entries)
{
    b->budget = entries > 0 ? entries : 1;
}

void saa_score_table_free(saa_score_table *t)
{
    if (!t) return;
    free(t->value);
    free(t->pos);
    free(t->neg);
    free(t->pro);
    memset(t, 0, sizeof *t);
}

void saa_score_builder_free(saa_score_builder *b)
{
    if (!b) return;
    for (int i = 0; i < b->count; i++) saa_score_table_free(&b->runs[i]);
    for (int i = 0; i < b->ndisk; i++) fclose(b->disk[i]);
    free(b->disk);
    free(b->disk_n);
    free(b->runs);
    free(b);
}

static int table_alloc(saa_score_table *t, int64_t n)
{
    size_t m = (size_t)(n > 0 ? n : 1);
    t->n = 0;
    t->value = malloc(m * sizeof *t->value);
    t->pos = malloc(m * sizeof *t->pos);
    t->neg = malloc(m * sizeof *t->neg);
    t->pro = malloc(m * sizeof *t->pro);
    if (!t->value || !t->pos || !t->neg || !t->pro) {
        saa_score_table_free(t);
        return saa_set_error(SAA_ENOMEM, "scores: out of memory for %lld distinct scores", (long long)n);
    }
    return SAA_OK;
}

/* Merges two decreasing tables, adding the counts of equal scores. */
static int table_merge(const saa_score_table *a, const saa_score_table *b, saa_score_table *out)
{
    if (table_alloc(out, a->n + b->n) != SAA_OK) return SAA_ENOMEM;
    int64_t i = 0, j = 0, k = 0;
    while (i < a->n || j < b->n) {
        int take_a = j >= b->n || (i < a->n && a->value[i] >= b->value[j]);
        int take_b = i >= a->n || (j < b->n && b->value[j] >= a->value[i]);
        double v = take_a ? a->value[i] : b->value[j];
        uint64_t p = 0, q = 0;
        double r = 0;
        if (take_a) p += a->pos[i], q += a->neg[i], r += a->pro[i], i++;
        if (take_b) p += b->pos[j], q += b->neg[j], r += b->pro[j], j++;
        if (p > UINT32_MAX || q > UINT32_MAX) {
            saa_score_table_free(out);
            return saa_set_error(SAA_EINVAL, "scores: more than 2^32 samples share one score");
        }
        out->value[k] = v;
        out->pos[k] = (uint32_t)p;
        out->neg[k] = (uint32_t)q;
        out->pro[k] = r;
        k++;
    }
    out->n = k;
    return SAA_OK;
}

static int merge_top(saa_score_builder *b)
{
    saa_score_table m;
    int rc = table_merge(&b->runs[b->count - 2], &b->runs[b->count - 1], &m);
    if (rc != SAA_OK) return rc;
    b->mem_entries += m.n - b->runs[b->count - 2].n - b->runs[b->count - 1].n;
    saa_score_table_free(&b->runs[b->count - 2]);
    saa_score_table_free(&b->runs[b->count - 1]);
    b->runs[b->count - 2] = m;
    b->count--;
    return SAA_OK;
}

/* Merges the runs held in memory into one and writes it to an anonymous temporary file, so memory
 * stays bounded by the budget whatever the number of distinct scores. */
static int spill(saa_score_builder *b)
{
    int rc = SAA_OK;
    while (rc == SAA_OK && b->count >= 2) rc = merge_top(b);
    if (rc != SAA_OK || b->count == 0) return rc;
    FILE **d = realloc(b->disk, (size_t)(b->ndisk + 1) * sizeof *d);
    if (d) b->disk = d;
    int64_t *dn = realloc(b->disk_n, (size_t)(b->ndisk + 1) * sizeof *dn);
    if (dn) b->disk_n = dn;
    if (!d || !dn) return saa_set_error(SAA_ENOMEM, "scores: out of memory");
    FILE *f = tmpfile();
    if (!f) return saa_set_error(SAA_EIO, "scores: cannot create a temporary file to spill %lld scores",
                                 (long long)b->runs[0].n);
    saa_score_table *t = &b->runs[0];
    disk_entry buf[1024];
    for (int64_t i = 0; i < t->n && rc == SAA_OK;) {
        int k = 0;
        for (; k < 1024 && i < t->n; k++, i++) buf[k] = (disk_entry){t->value[i], t->pro[i], t->pos[i], t->neg[i]};
        if (fwrite(buf, sizeof *buf, (size_t)k, f) != (size_t)k)
            rc = saa_set_error(SAA_EIO, "scores: cannot write the temporary file (disk full?)");
    }
    if (rc != SAA_OK) {
        fclose(f);
        return rc;
    }
    b->disk[b->ndisk] = f;
    b->disk_n[b->ndisk] = t->n;
    b->ndisk++;
    b->mem_entries -= t->n;
    saa_score_table_free(t);
    b->count = 0;
    return SAA_OK;
}

typedef struct {
    double v, w;
    uint8_t pos;
} scored_sample;

static int cmp_desc(const void *pa, const void *pb)
{
    double a = ((const scored_sample *)pa)->v, b = ((const scored_sample *)pb)->v;
    return (a < b) - (a > b);
}

int saa_score_builder_add(saa_score_builder *b, const double *score, const uint8_t *label, const double *pro_w,
                          int64_t n)
{
    if (n <= 0) return SAA_OK;
    scored_sample *s = malloc((size_t)n * sizeof *s);
    if (!s) return saa_set_error(SAA_ENOMEM, "scores: out of memory sorting %lld samples", (long long)n);
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(score[i])) {
            free(s);
            return saa_set_error(SAA_EINVAL, "scores: non-finite score at sample %lld", (long long)i);
        }
        s[i].v = score[i];
        s[i].w = pro_w ? pro_w[i] : 0.0;
        s[i].pos = label[i] != 0;
    }
    qsort(s, (size_t)n, sizeof *s, cmp_desc);
    int64_t runs = 1;
    for (int64_t i = 1; i < n; i++) runs += s[i].v != s[i - 1].v;
    if (b->count == b->cap) {
        int cap = b->cap ? 2 * b->cap : 16;
        saa_score_table *r = realloc(b->runs, (size_t)cap * sizeof *r);
        if (!r) {
            free(s);
            return saa_set_error(SAA_ENOMEM, "scores: out of memory");
        }
        b->runs = r;
        b->cap = cap;
    }
    saa_score_table *t = &b->runs[b->count];
    if (table_alloc(t, runs) != SAA_OK) {
        free(s);
        return SAA_ENOMEM;
    }
    b->count++;
    int64_t k = -1;
    for (int64_t i = 0; i < n; i++) {
        if (i == 0 || s[i].v != s[i - 1].v) {
            k++;
            t->value[k] = s[i].v;
            t->pos[k] = t->neg[k] = 0;
            t->pro[k] = 0;
        }
        if (s[i].pos)
            t->pos[k]++;
        else
            t->neg[k]++;
        t->pro[k] += s[i].w;
    }
    t->n = k + 1;
    for (int64_t i = 0; i < t->n; i++) b->P += t->pos[i], b->N += t->neg[i];
    b->mem_entries += t->n;
    free(s);
    /* keep run sizes decreasing geometrically so every sample is merged O(log runs) times */
    while (b->count >= 2 && b->runs[b->count - 2].n <= 2 * b->runs[b->count - 1].n) {
        int rc = merge_top(b);
        if (rc != SAA_OK) return rc;
    }
    if (b->mem_entries > b->budget) return spill(b);
    return SAA_OK;
}

/* Reads spilled run i back into memory as a table. */
static int load_disk_run(saa_score_builder *b, int i, saa_score_table *t)
{
    int rc = table_alloc(t, b->disk_n[i]);
    if (rc != SAA_OK) return rc;
    rewind(b->disk[i]);
    disk_entry e;
    for (int64_t k = 0; k < b->disk_n[i]; k++) {
        if (fread(&e, sizeof e, 1, b->disk[i]) != 1) {
            saa_score_table_free(t);
            return saa_set_error(SAA_EIO, "scores: cannot read back the temporary file");
        }
        t->value[k] = e.value, t->pos[k] = e.pos, t->neg[k] = e.neg, t->pro[k] = e.pro;
    }
    t->n = b->disk_n[i];
    return SAA_OK;
}

int saa_score_builder_finish(saa_score_builder *b, saa_score_table *out)
{
    memset(out, 0, sizeof *out);
    int rc = SAA_OK;
    /* spilled runs come back (the caller asked for one table in memory) */
    for (int i = 0; rc == SAA_OK && i < b->ndisk; i++) {
        if (b->count == b->cap) {
            int cap = b->cap ? 2 * b->cap : 16;
            saa_score_table *r = realloc(b->runs, (size_t)cap * sizeof *r);
            if (!r) {
                rc = saa_set_error(SAA_ENOMEM, "scores: out of memory");
                break;
            }
            b->runs = r, b->cap = cap;
        }
        rc = load_disk_run(b, i, &b->runs[b->count]);
        if (rc == SAA_OK) b->count++;
    }
    while (rc == SAA_OK && b->count >= 2) rc = merge_top(b);
    if (rc == SAA_OK) {
        if (b->count == 1) {
            *out = b->runs[0];
            b->count = 0;
        } else {
            rc = table_alloc(out, 0);
        }
    }
    saa_score_builder_free(b);
    return rc;
}

/* ---------- streams: the distinct scores in decreasing order, from memory and spilled runs ---------- */

typedef struct {
    FILE *f;              /* NULL: table source */
    const saa_score_table *t;
    int64_t next, n;      /* entries consumed / total */
    disk_entry buf[512];
    int bpos, blen;
    disk_entry head;
    int has_head;
} stream_src;

struct saa_score_stream {
    saa_score_builder *owner; /* keeps the memory table and files alive (NULL for a borrowed table) */
    saa_score_table mem;
    int nsrc;
    stream_src *src;
    double P, N;
};

static int src_fill(stream_src *s)
{
    s->has_head = 0;
    if (s->next >= s->n) return SAA_OK;
    if (!s->f) {
        const saa_score_table *t = s->t;
        int64_t i = s->next++;
        s->head = (disk_entry){t->value[i], t->pro[i], t->pos[i], t->neg[i]};
        s->has_head = 1;
        return SAA_OK;
    }
    if (s->bpos == s->blen) {
        int64_t want = s->n - s->next;
        size_t k = want < 512 ? (size_t)want : 512;
        if (fread(s->buf, sizeof *s->buf, k, s->f) != k)
            return saa_set_error(SAA_EIO, "scores: cannot read back the temporary file");
        s->bpos = 0, s->blen = (int)k;
    }
    s->head = s->buf[s->bpos++];
    s->next++;
    s->has_head = 1;
    return SAA_OK;
}

static int stream_rewind(saa_score_stream *st)
{
    for (int i = 0; i < st->nsrc; i++) {
        stream_src *s = &st->src[i];
        s->next = 0, s->bpos = s->blen = 0;
        if (s->f) rewind(s->f);
        int rc = src_fill(s);
        if (rc != SAA_OK) return rc;
    }
    return SAA_OK;
}

/* Next distinct score (equal scores of different runs combined): 1, 0 at the end, or an error. */
static int stream_next(saa_score_stream *st, disk_entry *e)
{
    int best = -1;
    for (int i = 0; i < st->nsrc; i++)
        if (st->src[i].has_head && (best < 0 || st->src[i].head.value > st->src[best].head.value)) best = i;
    if (best < 0) return 0;
    double v = st->src[best].head.value;
    uint64_t p = 0, q = 0;
    double r = 0;
    for (int i = 0; i < st->nsrc; i++) {
        stream_src *s = &st->src[i];
        if (!s->has_head || s->head.value != v) continue;
        p += s->head.pos, q += s->head.neg, r += s->head.pro;
        int rc = src_fill(s);
        if (rc != SAA_OK) return rc;
    }
    if (p > UINT32_MAX || q > UINT32_MAX) return saa_set_error(SAA_EINVAL, "scores: more than 2^32 samples share one score");
    *e = (disk_entry){v, r, (uint32_t)p, (uint32_t)q};
    return 1;
}

void saa_score_stream_free(saa_score_stream *st)
{
    if (!st) return;
    saa_score_table_free(&st->mem);
    saa_score_builder_free(st->owner);
    free(st->src);
    free(st);
}

int saa_score_builder_finish_stream(saa_score_builder *b, saa_score_stream **out)
{
    *out = NULL;
    int rc = SAA_OK;
    while (rc == SAA_OK && b->count >= 2) rc = merge_top(b);
    saa_score_stream *st = rc == SAA_OK ? calloc(1, sizeof *st) : NULL;
    if (rc == SAA_OK && !st) rc = saa_set_error(SAA_ENOMEM, "scores: out of memory");
    if (st) st->src = calloc((size_t)b->ndisk + 1, sizeof *st->src);
    if (st && !st->src) rc = saa_set_error(SAA_ENOMEM, "scores: out of memory");
    if (rc != SAA_OK) {
        if (st) free(st->src);
        free(st);
        saa_score_builder_free(b);
        return rc;
    }
    if (b->count == 1) {
        st->mem = b->runs[0];
        b->count = 0;
        st->src[st->nsrc++] = (stream_src){.t = &st->mem, .n = st->mem.n};
    }
    for (int i = 0; i < b->ndisk; i++) st->src[st->nsrc++] = (stream_src){.f = b->disk[i], .n = b->disk_n[i]};
    st->P = b->P, st->N = b->N;
    st->owner = b;
    *out = st;
    return SAA_OK;
}

/* ---------- the ranking metrics, in one pass over the decreasing distinct scores ---------- */

/* roc_auc_score (roc_curve with drop_intermediate, then np.trapz), average_precision_score (step-wise,
 * sklearn 1.2), calculate_max_f1 (first maximum in increasing-threshold order = last one here) and the
 * MVTec AD AU-PRO (compute_pro + trapezoid to fpr_limit, interpolated there, divided by fpr_limit). */
static int rank_metrics(saa_score_stream *st, int64_t n_regions, double fpr_limit, saa_rank_metrics *m)
{
    double P = st->P, N = st->N;
    m->auroc = m->ap = m->f1 = m->f1_threshold = m->aupro = NAN;
    int rc = stream_rewind(st);
    if (rc != SAA_OK) return rc;
    disk_entry e = {0, 0, 0, 0};
    int64_t k = 0;
    double tps = 0, fps = 0;
    /* AUROC state: the last two raw points and the last kept point (prefix (0, 0)) */
    double f1v = 0, t1v = 0, f2v = 0, t2v = 0, kf = 0, kt = 0, area = 0;
    /* AP / F1 */
    double prev_recall = 0, ap = 0, best = -1, best_thr = NAN;
    /* AU-PRO */
    double px = 0, py = 0, parea = 0, cum_pro = 0;
    int pro_done = 0, hit_limit = 0;
    while ((rc = stream_next(st, &e)) == 1) {
        tps += e.pos;
        fps += e.neg;
        double ps = tps + fps;
        /* AP, F1 */
        double precision = tps / ps, recall = P > 0 ? tps / P : 1.0;
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
        double a = 2 * precision * recall, b = precision + recall, f1 = b != 0 ? a / b : 0.0;
        if (f1 >= best) best = f1, best_thr = e.value;
        /* AUROC: point k-1 is kept when the second difference at it is nonzero (k-1 > 0) */
        if (k >= 2) {
            int keep = (fps - 2 * f1v + f2v) != 0 || (tps - 2 * t1v + t2v) != 0;
            if (keep) {
                double fx = f1v / N, ty = t1v / P;
                area += (fx - kf) * (ty + kt) / 2.0;
                kf = fx, kt = ty;
            }
        } else if (k == 1) { /* point 0 is always kept */
            double fx = f1v / N, ty = t1v / P;
            area += (fx - kf) * (ty + kt) / 2.0;
            kf = fx, kt = ty;
        }
        f2v = f1v, t2v = t1v, f1v = fps, t1v = tps;
        /* AU-PRO */
        cum_pro += e.pro;
        if (!pro_done && N > 0 && n_regions > 0) {
            double x = fmin(fps / N, 1.0), y = fmin(cum_pro / (double)n_regions, 1.0);
            if (x == fpr_limit) hit_limit = 1;
            if (x <= fpr_limit) {
                parea += 0.5 * (y + py) * (x - px);
                px = x, py = y;
            } else {
                if (!hit_limit) {
                    double yi = py + (y - py) * (fpr_limit - px) / (x - px);
                    parea += 0.5 * (yi + py) * (fpr_limit - px);
                }
                pro_done = 1;
            }
        }
        k++;
    }
    if (rc < 0) return rc;
    if (k == 0) return SAA_OK;
    /* last point (always kept) */
    {
        double fx = f1v / N, ty = t1v / P;
        area += (fx - kf) * (ty + kt) / 2.0;
    }
    if (P > 0 && N > 0) m->auroc = area;
    m->ap = ap;
    m->f1 = best;
    m->f1_threshold = best_thr;
    if (N > 0 && n_regions > 0) {
        if (!pro_done && !hit_limit) { /* the final (1, 1) point lies beyond the limit */
            double yi = py + (1.0 - py) * (fpr_limit - px) / (1.0 - px);
            parea += 0.5 * (yi + py) * (fpr_limit - px);
        }
        m->aupro = parea / fpr_limit;
    }
    return SAA_OK;
}

int saa_score_stream_metrics(saa_score_stream *st, int64_t n_regions, double fpr_limit, saa_rank_metrics *out)
{
    return rank_metrics(st, n_regions, fpr_limit, out);
}

/* Growable (x, y) point list for display curves. */
typedef struct {
    double *x, *y;
    int64_t n, cap;
} point_list;

static int points_push(point_list *l, double x, double y)
{
    if (l->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 256;
        double *nx = realloc(l->x, (size_t)cap * sizeof *nx);
        if (nx) l->x = nx;
        double *ny = realloc(l->y, (size_t)cap * sizeof *ny);
        if (ny) l->y = ny;
        if (!nx || !ny) return saa_set_error(SAA_ENOMEM, "scores: out of memory");
        l->cap = cap;
    }
    l->x[l->n] = x, l->y[l->n] = y, l->n++;
    return SAA_OK;
}

int saa_score_stream_curves(saa_score_stream *st, double min_step, saa_curve *roc, saa_curve *pr)
{
    memset(roc, 0, sizeof *roc);
    memset(pr, 0, sizeof *pr);
    double P = st->P, N = st->N;
    if (!(P > 0 && N > 0)) return SAA_OK;
    int rc = stream_rewind(st);
    if (rc != SAA_OK) return rc;
    point_list r = {0}, q = {0};
    rc = points_push(&r, 0, 0);
    if (rc == SAA_OK) rc = points_push(&q, 0, 1); /* sklearn's final (recall 0, precision 1) */
    double tps = 0, fps = 0, lf = 0, lt = 0, lr = 0, lp = 1, f = 0, t = 0, rec = 0, prec = 1;
    disk_entry e;
    int got = 0;
    while (rc == SAA_OK && (got = stream_next(st, &e)) == 1) {
        tps += e.pos, fps += e.neg;
        f = fps / N, t = tps / P, rec = tps / P, prec = tps / (tps + fps);
        if (f - lf >= min_step || t - lt >= min_step) rc = points_push(&r, f, t), lf = f, lt = t;
        if (rc == SAA_OK && (rec - lr >= min_step || fabs(prec - lp) >= min_step))
            rc = points_push(&q, rec, prec), lr = rec, lp = prec;
    }
    if (rc == SAA_OK && got < 0) rc = got;
    if (rc == SAA_OK && (r.x[r.n - 1] != f || r.y[r.n - 1] != t)) rc = points_push(&r, f, t);
    if (rc == SAA_OK && (q.x[q.n - 1] != rec || q.y[q.n - 1] != prec)) rc = points_push(&q, rec, prec);
    if (rc != SAA_OK) {
        free(r.x), free(r.y), free(q.x), free(q.y);
        return rc;
    }
    roc->x = r.x, roc->y = r.y, roc->n = r.n;
    pr->x = q.x, pr->y = q.y, pr->n = q.n;
    return SAA_OK;
}

static int table_metrics(const saa_score_table *t, int64_t n_regions, double fpr_limit, saa_rank_metrics *m)
{
    stream_src src = {.t = t, .n = t->n};
    saa_score_stream st = {0};
    st.nsrc = 1;
    st.src = &src;
    for (int64_t i = 0; i < t->n; i++) st.P += t->pos[i], st.N += t->neg[i];
    return rank_metrics(&st, n_regions, fpr_limit, m);
}

/* ---------- sklearn curves ---------- */

/* mirrors sklearn/metrics/_ranking.py: roc_curve (1.2) */
int saa_roc_curve(const saa_score_table *t, int drop_intermediate, double **fpr, double **tpr, double **thr,
                  int64_t *n_out)
{
    *fpr = *tpr = *thr = NULL;
    *n_out = 0;
    int64_t n = t->n;
    if (n == 0) return saa_set_error(SAA_EINVAL, "roc_curve: no samples");
    double *fps = malloc((size_t)n * sizeof *fps), *tps = malloc((size_t)n * sizeof *tps);
    double *f = malloc((size_t)(n + 1) * sizeof *f), *tp = malloc((size_t)(n + 1) * sizeof *tp);
    double *th = malloc((size_t)(n + 1) * sizeof *th);
    if (!fps || !tps || !f || !tp || !th) {
        free(fps), free(tps), free(f), free(tp), free(th);
        return saa_set_error(SAA_ENOMEM, "roc_curve: out of memory");
    }
    double cp = 0, cn = 0;
    for (int64_t i = 0; i < n; i++) {
        cp += t->pos[i];
        cn += t->neg[i];
        tps[i] = cp;
        fps[i] = cn;
    }
    int64_t m = 1;
    f[0] = 0, tp[0] = 0, th[0] = t->value[0] + 1;
    for (int64_t i = 0; i < n; i++) {
        int keep = 1;
        if (drop_intermediate && n > 2 && i > 0 && i < n - 1)
            keep = (fps[i + 1] - 2 * fps[i] + fps[i - 1]) != 0 || (tps[i + 1] - 2 * tps[i] + tps[i - 1]) != 0;
        if (!keep) continue;
        f[m] = fps[i], tp[m] = tps[i], th[m] = t->value[i];
        m++;
    }
    for (int64_t i = 0; i < m; i++) {
        f[i] = cn > 0 ? f[i] / cn : NAN;
        tp[i] = cp > 0 ? tp[i] / cp : NAN;
    }
    free(fps), free(tps);
    *fpr = f, *tpr = tp, *thr = th, *n_out = m;
    return SAA_OK;
}

double saa_roc_auc(const saa_score_table *t)
{
    saa_rank_metrics m;
    return table_metrics(t, 0, 0.3, &m) == SAA_OK ? m.auroc : NAN;
}

double saa_average_precision(const saa_score_table *t)
{
    saa_rank_metrics m;
    return table_metrics(t, 0, 0.3, &m) == SAA_OK ? m.ap : NAN;
}

double saa_max_f1(const saa_score_table *t, double *threshold)
{
    saa_rank_metrics m;
    int rc = table_metrics(t, 0, 0.3, &m);
    *threshold = rc == SAA_OK ? m.f1_threshold : NAN;
    return rc == SAA_OK ? m.f1 : NAN;
}

double saa_aupro_standard(const saa_score_table *t, int64_t n_regions, double fpr_limit)
{
    saa_rank_metrics m;
    return table_metrics(t, n_regions, fpr_limit, &m) == SAA_OK ? m.aupro : NAN;
}
