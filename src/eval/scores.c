/* Distinct-score tables and the scikit-learn 1.2 ranking metrics computed from them.
 *
 * sklearn's _binary_clf_curve sorts the scores, keeps the last index of every run of equal scores and
 * takes cumulative positive/negative counts there: everything roc_curve, precision_recall_curve and
 * average_precision_score return is a function of (distinct score, #pos, #neg) in decreasing score
 * order. A table of exactly that is built here from per-image sorted runs (merged pairwise, so the
 * cost is O(N log images) and memory is the number of distinct scores), giving the same values as
 * sklearn on the full pixel array, ties included. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "saa/metrics.h"
#include "saa/tensor.h"

/* ---------- builder ---------- */

struct saa_score_builder {
    saa_score_table *runs; /* stack of sorted runs; merged while a run is not much larger than the next */
    int count, cap;
};

saa_score_builder *saa_score_builder_new(void)
{
    saa_score_builder *b = calloc(1, sizeof *b);
    if (!b) saa_set_error(SAA_ENOMEM, "scores: out of memory");
    return b;
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
    saa_score_table_free(&b->runs[b->count - 2]);
    saa_score_table_free(&b->runs[b->count - 1]);
    b->runs[b->count - 2] = m;
    b->count--;
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
    free(s);
    /* keep run sizes decreasing geometrically so every sample is merged O(log runs) times */
    while (b->count >= 2 && b->runs[b->count - 2].n <= 2 * b->runs[b->count - 1].n) {
        int rc = merge_top(b);
        if (rc != SAA_OK) return rc;
    }
    return SAA_OK;
}

int saa_score_builder_finish(saa_score_builder *b, saa_score_table *out)
{
    memset(out, 0, sizeof *out);
    int rc = SAA_OK;
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

/* ---------- sklearn curves ---------- */

static void totals(const saa_score_table *t, double *P, double *N)
{
    double p = 0, q = 0;
    for (int64_t i = 0; i < t->n; i++) p += t->pos[i], q += t->neg[i];
    *P = p;
    *N = q;
}

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

/* mirrors roc_auc_score -> _binary_roc_auc_score -> auc(fpr, tpr) (np.trapz) */
double saa_roc_auc(const saa_score_table *t)
{
    double P, N;
    totals(t, &P, &N);
    if (t->n == 0 || P == 0 || N == 0) return NAN; /* "Only one class present in y_true" */
    double *f, *tp, *th;
    int64_t m;
    if (saa_roc_curve(t, 1, &f, &tp, &th, &m) != SAA_OK) return NAN;
    double area = 0;
    for (int64_t i = 1; i < m; i++) area += (f[i] - f[i - 1]) * (tp[i] + tp[i - 1]) / 2.0;
    free(f), free(tp), free(th);
    return area;
}

/* mirrors _binary_uninterpolated_average_precision: -sum(diff(recall) * precision[:-1]) over the
 * precision_recall_curve in increasing-threshold order. */
double saa_average_precision(const saa_score_table *t)
{
    if (t->n == 0) return NAN;
    double P, N;
    totals(t, &P, &N);
    /* walk thresholds from the lowest (all predicted positive) upwards */
    double tps = P, ps = P + N, sum = 0;
    for (int64_t r = t->n - 1; r >= 0; r--) {
        double precision = tps / ps;
        double recall = P > 0 ? tps / P : 1.0; /* sklearn 1.2: no positive -> recall 1 everywhere */
        double tps_next = tps - t->pos[r], ps_next = ps - t->pos[r] - t->neg[r];
        double recall_next = r == 0 ? 0.0 : (P > 0 ? tps_next / P : 1.0);
        sum += (recall_next - recall) * precision;
        tps = tps_next, ps = ps_next;
    }
    return -sum;
}

/* mirrors utils/metrics.py: calculate_max_f1 */
double saa_max_f1(const saa_score_table *t, double *threshold)
{
    *threshold = NAN;
    if (t->n == 0) return NAN;
    double P, N;
    totals(t, &P, &N);
    double tps = P, ps = P + N, best = -1, best_thr = NAN;
    for (int64_t r = t->n - 1; r >= 0; r--) {
        double precision = tps / ps;
        double recall = P > 0 ? tps / P : 1.0;
        double a = 2 * precision * recall, b = precision + recall;
        double f1 = b != 0 ? a / b : 0.0;
        if (f1 > best) best = f1, best_thr = t->value[r]; /* np.argmax: first maximum */
        tps -= t->pos[r];
        ps -= t->pos[r] + t->neg[r];
    }
    /* final point (P = 1, R = 0) has F1 = 0 and no threshold; it never wins over an earlier 0 */
    *threshold = best_thr;
    return best;
}

/* MVTec AD evaluation code: compute_pro (one point per distinct score, (0,0) and (1,1) added, clipped at
 * 1) and trapezoid(x_max = fpr_limit) with linear interpolation at the limit, divided by the limit. */
double saa_aupro_standard(const saa_score_table *t, int64_t n_regions, double fpr_limit)
{
    double P, N;
    totals(t, &P, &N);
    if (n_regions <= 0 || N == 0 || t->n == 0) return NAN;
    double px = 0, py = 0, area = 0, cum_neg = 0, cum_pro = 0;
    int hit_limit = 0; /* x_max appears exactly among the x values */
    for (int64_t i = 0; i <= t->n; i++) {
        double x, y;
        if (i < t->n) {
            cum_neg += t->neg[i];
            cum_pro += t->pro[i];
            x = fmin(cum_neg / N, 1.0);
            y = fmin(cum_pro / (double)n_regions, 1.0);
        } else {
            x = 1.0, y = 1.0;
        }
        if (x == fpr_limit) hit_limit = 1;
        if (x <= fpr_limit) {
            area += 0.5 * (y + py) * (x - px);
        } else {
            if (!hit_limit) {
                double yi = py + (y - py) * (fpr_limit - px) / (x - px);
                area += 0.5 * (yi + py) * (fpr_limit - px);
            }
            break;
        }
        px = x, py = y;
    }
    return area / fpr_limit;
}
