/* Metrics: sklearn-equivalent ranking metrics against brute-force definitions, 8-connected labelling
 * against a flood fill, and the official/corrected grid metrics on the hand-checked minimal examples
 * of shared/golden/metrics/README.md (values the official code produced). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "saa/metrics.h"
#include "saa/tensor.h"
#include "test.h"

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

/* Mann-Whitney AUROC: pairs ordered correctly + half the ties. */
static double brute_auroc(const double *s, const uint8_t *y, int n)
{
    double num = 0, P = 0, N = 0;
    for (int i = 0; i < n; i++) {
        if (y[i])
            P++;
        else
            N++;
        if (!y[i]) continue;
        for (int j = 0; j < n; j++)
            if (!y[j]) num += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
    }
    return num / (P * N);
}

/* AP = sum over distinct thresholds t (descending) of (R(t) - R(prev)) * P(t); max-F1 over the same
 * points (+ the lowest threshold among equal maxima). */
static void brute_ap_f1(const double *s, const uint8_t *y, int n, double *ap, double *f1, double *thr)
{
    double P = 0;
    for (int i = 0; i < n; i++) P += y[i];
    double *d = malloc((size_t)n * sizeof *d);
    int nd = 0;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int j = 0; j < nd; j++) seen |= d[j] == s[i];
        if (!seen) d[nd++] = s[i];
    }
    /* sort distinct descending (insertion) */
    for (int i = 1; i < nd; i++)
        for (int j = i; j > 0 && d[j] > d[j - 1]; j--) {
            double t = d[j];
            d[j] = d[j - 1];
            d[j - 1] = t;
        }
    double prev_r = 0, sum = 0, best = -1, bt = 0;
    for (int k = 0; k < nd; k++) {
        double tp = 0, pp = 0;
        for (int i = 0; i < n; i++)
            if (s[i] >= d[k]) pp++, tp += y[i];
        double r = tp / P, p = tp / pp;
        sum += (r - prev_r) * p;
        prev_r = r;
        double f = p + r > 0 ? 2 * p * r / (p + r) : 0;
        if (f >= best) best = f, bt = d[k]; /* >=: later (lower) thresholds win ties */
    }
    free(d);
    *ap = sum;
    *f1 = best;
    *thr = bt;
}

static void test_ranking(void)
{
    /* scikit-learn documentation example: roc_auc 0.75, average_precision 0.8333... */
    {
        double s[4] = {0.1, 0.4, 0.35, 0.8};
        uint8_t y[4] = {0, 0, 1, 1};
        saa_score_builder *b = saa_score_builder_new();
        saa_score_table t;
        CHECK(saa_score_builder_add(b, s, y, NULL, 4) == SAA_OK);
        CHECK(saa_score_builder_finish(b, &t) == SAA_OK);
        CHECK_NEAR(saa_roc_auc(&t), 0.75, 1e-15);
        CHECK_NEAR(saa_average_precision(&t), 0.8333333333333333, 1e-15);
        double thr, f1 = saa_max_f1(&t, &thr);
        CHECK_NEAR(f1, 0.8, 1e-15); /* at 0.35: P = 2/3, R = 1 */
        CHECK(thr == 0.35);
        double *fpr, *tpr, *th;
        int64_t n;
        CHECK(saa_roc_curve(&t, 1, &fpr, &tpr, &th, &n) == SAA_OK);
        /* sklearn: fpr [0, 0, .5, .5, 1], tpr [0, .5, .5, 1, 1], thresholds [1.8, .8, .4, .35, .1] */
        double ef[5] = {0, 0, .5, .5, 1}, et[5] = {0, .5, .5, 1, 1}, eh[5] = {1.8, .8, .4, .35, .1};
        CHECK(n == 5);
        for (int i = 0; i < 5 && n == 5; i++) {
            CHECK(fpr[i] == ef[i]);
            CHECK(tpr[i] == et[i]);
            CHECK_NEAR(th[i], eh[i], 1e-15);
        }
        free(fpr), free(tpr), free(th);
        saa_score_table_free(&t);
        /* display curves: every distinct threshold (sklearn without drop_intermediate) */
        saa_score_builder *b2 = saa_score_builder_new();
        saa_score_stream *st;
        CHECK(saa_score_builder_add(b2, s, y, NULL, 4) == SAA_OK);
        CHECK(saa_score_builder_finish_stream(b2, &st) == SAA_OK);
        saa_curve roc, pr;
        CHECK(saa_score_stream_curves(st, 1e-3, &roc, &pr) == SAA_OK);
        double rx[5] = {0, 0, .5, .5, 1}, ry[5] = {0, .5, .5, 1, 1};
        double px[5] = {0, .5, .5, 1, 1}, py[5] = {1, 1, .5, 2.0 / 3.0, .5};
        CHECK(roc.n == 5 && pr.n == 5);
        for (int i = 0; i < 5 && roc.n == 5 && pr.n == 5; i++) {
            CHECK(roc.x[i] == rx[i] && roc.y[i] == ry[i]);
            CHECK(pr.x[i] == px[i] && fabs(pr.y[i] - py[i]) < 1e-15);
        }
        free(roc.x), free(roc.y), free(pr.x), free(pr.y);
        saa_score_stream_free(st);
    }
    /* random sets with many ties, added in uneven chunks (exercises run merging) */
    for (int trial = 0; trial < 20; trial++) {
        int n = 50 + (int)(rnd() % 400);
        double *s = malloc((size_t)n * sizeof *s);
        uint8_t *y = malloc((size_t)n);
        int levels = 2 + (int)(rnd() % 40);
        for (int i = 0; i < n; i++) {
            s[i] = (double)(rnd() % levels) / levels;
            y[i] = rnd() % 3 == 0;
        }
        y[0] = 1, y[1] = 0;
        saa_score_builder *b = saa_score_builder_new();
        for (int i = 0; i < n;) {
            int k = 1 + (int)(rnd() % 60);
            if (k > n - i) k = n - i;
            CHECK(saa_score_builder_add(b, s + i, y + i, NULL, k) == SAA_OK);
            i += k;
        }
        saa_score_table t;
        CHECK(saa_score_builder_finish(b, &t) == SAA_OK);
        int strictly = 1;
        for (int64_t i = 1; i < t.n; i++) strictly &= t.value[i] < t.value[i - 1];
        CHECK(strictly);
        double ap, f1, thr, gthr;
        brute_ap_f1(s, y, n, &ap, &f1, &thr);
        CHECK_NEAR(saa_roc_auc(&t), brute_auroc(s, y, n), 1e-12);
        CHECK_NEAR(saa_average_precision(&t), ap, 1e-12);
        CHECK_NEAR(saa_max_f1(&t, &gthr), f1, 1e-12);
        CHECK(gthr == thr);
        saa_score_table_free(&t);
        free(s), free(y);
    }
    /* one class only: AUROC undefined; AP with no positive is -0 (sklearn 1.2) */
    {
        double s[3] = {0.2, 0.5, 0.5};
        uint8_t y[3] = {0, 0, 0};
        saa_score_builder *b = saa_score_builder_new();
        saa_score_table t;
        CHECK(saa_score_builder_add(b, s, y, NULL, 3) == SAA_OK);
        CHECK(saa_score_builder_finish(b, &t) == SAA_OK);
        CHECK(isnan(saa_roc_auc(&t)));
        CHECK(saa_average_precision(&t) == 0);
        double thr;
        CHECK(saa_max_f1(&t, &thr) == 0);
        CHECK(thr == 0.2); /* lowest distinct score */
        saa_score_table_free(&t);
    }
}

/* spilling to temporary files (tiny budget) gives the same table and the same metrics */
static void test_spill(void)
{
    for (int trial = 0; trial < 6; trial++) {
        int n = 300 + (int)(rnd() % 3000), levels = 5 + (int)(rnd() % 500);
        double *s = malloc((size_t)n * sizeof *s), *w = malloc((size_t)n * sizeof *w);
        uint8_t *y = malloc((size_t)n);
        for (int i = 0; i < n; i++) {
            s[i] = (double)(rnd() % levels) / levels;
            y[i] = rnd() % 4 == 0;
            w[i] = y[i] ? 1.0 / (1 + rnd() % 9) : 0.0;
        }
        y[0] = 1, y[1] = 0;
        saa_score_builder *a = saa_score_builder_new(), *b = saa_score_builder_new(), *c = saa_score_builder_new();
        saa_score_builder_set_budget(b, 1 + trial * 7);
        saa_score_builder_set_budget(c, 3 + trial);
        for (int i = 0; i < n;) {
            int k = 1 + (int)(rnd() % 200);
            if (k > n - i) k = n - i;
            CHECK(saa_score_builder_add(a, s + i, y + i, w + i, k) == SAA_OK);
            CHECK(saa_score_builder_add(b, s + i, y + i, w + i, k) == SAA_OK);
            CHECK(saa_score_builder_add(c, s + i, y + i, w + i, k) == SAA_OK);
            i += k;
        }
        saa_score_table ta, tc;
        saa_score_stream *sb;
        CHECK(saa_score_builder_finish(a, &ta) == SAA_OK);
        CHECK(saa_score_builder_finish_stream(b, &sb) == SAA_OK);
        CHECK(saa_score_builder_finish(c, &tc) == SAA_OK);
        int same = ta.n == tc.n;
        for (int64_t i = 0; same && i < ta.n; i++)
            same = ta.value[i] == tc.value[i] && ta.pos[i] == tc.pos[i] && ta.neg[i] == tc.neg[i] &&
                   fabs(ta.pro[i] - tc.pro[i]) < 1e-12;
        CHECK(same);
        int64_t regions = 1 + (int64_t)(rnd() % 20);
        saa_rank_metrics r;
        CHECK(saa_score_stream_metrics(sb, regions, 0.3, &r) == SAA_OK);
        double thr;
        CHECK_NEAR(r.auroc, saa_roc_auc(&ta), 1e-12);
        CHECK_NEAR(r.ap, saa_average_precision(&ta), 1e-12);
        CHECK_NEAR(r.f1, saa_max_f1(&ta, &thr), 1e-12);
        CHECK(r.f1_threshold == thr);
        CHECK_NEAR(r.aupro, saa_aupro_standard(&ta, regions, 0.3), 1e-12);
        CHECK(r.aupro > 0 && r.aupro <= 1);
        /* a second pass over the same stream gives the same values */
        saa_rank_metrics r2;
        CHECK(saa_score_stream_metrics(sb, regions, 0.3, &r2) == SAA_OK);
        CHECK(r2.auroc == r.auroc && r2.ap == r.ap && r2.aupro == r.aupro);
        saa_score_stream_free(sb);
        saa_score_table_free(&ta);
        saa_score_table_free(&tc);
        free(s), free(w), free(y);
    }
}

/* flood fill reference: same partition and raster order of first pixels */
static void test_label8(void)
{
    for (int trial = 0; trial < 30; trial++) {
        int h = 1 + (int)(rnd() % 40), w = 1 + (int)(rnd() % 40);
        int dens = 20 + (int)(rnd() % 60);
        uint8_t *m = malloc((size_t)h * w);
        int32_t *lab = malloc((size_t)h * w * sizeof *lab), *ref = calloc((size_t)h * w, sizeof *ref);
        int *stack = malloc((size_t)h * w * sizeof *stack);
        for (int i = 0; i < h * w; i++) m[i] = (int)(rnd() % 100) < dens;
        int n = saa_label8(m, h, w, lab), rn = 0;
        for (int i = 0; i < h * w; i++) {
            if (!m[i] || ref[i]) continue;
            rn++;
            int top = 0;
            stack[top++] = i;
            ref[i] = rn;
            while (top) {
                int p = stack[--top], y = p / w, x = p % w;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++) {
                        int yy = y + dy, xx = x + dx;
                        if (yy < 0 || xx < 0 || yy >= h || xx >= w) continue;
                        int q = yy * w + xx;
                        if (m[q] && !ref[q]) ref[q] = rn, stack[top++] = q;
                    }
            }
        }
        CHECK(n == rn);
        int same = 1;
        for (int i = 0; i < h * w; i++) same &= lab[i] == ref[i];
        CHECK(same);
        free(m), free(lab), free(ref), free(stack);
    }
}

static saa_metrics run_set_iou(int R, int n, double *maps, const uint8_t *masks, const int *labels, double iou)
{
    saa_eval_params p;
    saa_eval_params_default(&p);
    p.resolution = R;
    p.region_iou = iou;
    double lo = INFINITY, hi = -INFINITY;
    saa_minmax_nan(maps, (int64_t)n * R * R, &lo, &hi);
    saa_metric_acc *a = saa_metric_acc_new(&p, lo, hi, 0);
    for (int i = 0; i < n; i++) CHECK(saa_metric_acc_add(a, maps + (size_t)i * R * R, masks + (size_t)i * R * R, labels[i]) == SAA_OK);
    saa_metrics m;
    CHECK(saa_metric_acc_finish(a, &m) == SAA_OK);
    return m;
}

static saa_metrics run_set(int R, int n, double *maps, const uint8_t *masks, const int *labels)
{
    return run_set_iou(R, n, maps, masks, labels, 0.6);
}

/* README minimal examples, run through the official code by the golden's author */
static void test_grid_examples(void)
{
    /* PRO holes: GT = 3x3 square minus its centre in 7x7, score 1 on the 3x3 block -> official 0.5625,
     * standard 0.959350, PRO at step 1 = 9/8 */
    {
        double map[49] = {0};
        uint8_t mask[49] = {0};
        for (int y = 2; y < 5; y++)
            for (int x = 2; x < 5; x++) map[y * 7 + x] = 1, mask[y * 7 + x] = !(y == 3 && x == 3);
        int label = 1;
        saa_metrics m = run_set(7, 1, map, mask, &label);
        CHECK_NEAR(m.aupro_official, 0.5625, 1e-12);
        CHECK_NEAR(m.aupro, 0.959350, 1e-6);
        CHECK(m.pro_pros && fabs(m.pro_pros[1] - 1.125) < 1e-12);
        saa_metrics_free(&m);
    }
    /* PRO normalisation: 10x10, GT 4 px scored (1, 1, 0.5, 0.25); normal: 10 at 0.5, 38 at 0.25, 48 at 0
     * -> official 0.625, standard 0.746966 */
    {
        double map[100];
        uint8_t mask[100] = {0};
        double gs[4] = {1, 1, 0.5, 0.25};
        for (int i = 0; i < 4; i++) map[i] = gs[i], mask[i] = 1;
        for (int i = 4; i < 100; i++) map[i] = i < 14 ? 0.5 : i < 52 ? 0.25 : 0.0;
        int label = 1;
        saa_metrics m = run_set(10, 1, map, mask, &label);
        CHECK_NEAR(m.aupro_official, 0.625, 1e-12);
        CHECK_NEAR(m.aupro, 0.746966, 1e-6);
        saa_metrics_free(&m);
    }
    /* region F1 > 1: 5x7, GT rows 1-3 x cols 1-5; scores 1 on cols 1,2,4,5, 0.5 on col 3 -> official 4/3,
     * corrected 1 */
    {
        /* 5 rows, 7 cols: use a 7x7 canvas (square evaluation maps), rows 5-6 empty */
        double map[49] = {0};
        uint8_t mask[49] = {0};
        for (int y = 1; y <= 3; y++)
            for (int x = 1; x <= 5; x++) map[y * 7 + x] = x == 3 ? 0.5 : 1, mask[y * 7 + x] = 1;
        int label = 1;
        saa_metrics m = run_set(7, 1, map, mask, &label);
        CHECK_NEAR(m.f_r_official, 4.0 / 3.0, 1e-12);
        CHECK_NEAR(m.f_r, 1.0, 1e-12);
        saa_metrics_free(&m);
    }
    /* crop contamination: 9x9, GT = 5x5 outline, prediction = outline + its centre -> official 4/3,
     * corrected 2/3 */
    {
        double map[81] = {0};
        uint8_t mask[81] = {0};
        for (int y = 2; y <= 6; y++)
            for (int x = 2; x <= 6; x++)
                if (y == 2 || y == 6 || x == 2 || x == 6) map[y * 9 + x] = 1, mask[y * 9 + x] = 1;
        map[4 * 9 + 4] = 1;
        int label = 1;
        saa_metrics m = run_set(9, 1, map, mask, &label);
        CHECK_NEAR(m.f_r_official, 4.0 / 3.0, 1e-12);
        CHECK_NEAR(m.f_r, 2.0 / 3.0, 1e-12);
        saa_metrics_free(&m);
    }
}

/* Corrected region F1 with an IoU threshold <= 0.5, where a predicted region need not lie mostly inside
 * one GT region (hand-checked; the official crop-IoU is the same as the component IoU here) */
static void test_region_iou_low(void)
{
    /* 6x6: prediction = row 1, cols 0-3 (background pixels first in raster order), GT = row 1, cols 2-3:
     * IoU 2/4 = 0.5 -> with threshold 0.5 one TP, F1 = 1 */
    {
        double map[36] = {0};
        uint8_t mask[36] = {0};
        for (int x = 0; x < 4; x++) map[6 + x] = 1, mask[6 + x] = x >= 2;
        int label = 1;
        saa_metrics m = run_set_iou(6, 1, map, mask, &label, 0.5);
        CHECK_NEAR(m.f_r, 1.0, 1e-12);
        CHECK_NEAR(m.f_r_official, 1.0, 1e-12);
        saa_metrics_free(&m);
        m = run_set_iou(6, 1, map, mask, &label, 0.6); /* 0.5 < 0.6: no match */
        CHECK_NEAR(m.f_r, 0.0, 1e-12);
        saa_metrics_free(&m);
    }
    /* 7x7: prediction = row 3, cols 0-4 bridging two GT regions (cols 0-1 and 3-4): IoU 2/5 with each.
     * Threshold 0.4: the predicted region is one TP; precision 1/1, recall 1/2 -> F1 2/3 */
    {
        double map[49] = {0};
        uint8_t mask[49] = {0};
        for (int x = 0; x < 5; x++) map[21 + x] = 1, mask[21 + x] = x != 2;
        int label = 1;
        saa_metrics m = run_set_iou(7, 1, map, mask, &label, 0.4);
        CHECK_NEAR(m.f_r, 2.0 / 3.0, 1e-12);
        saa_metrics_free(&m);
    }
}

int main(void)
{
    test_ranking();
    test_spill();
    test_label8();
    test_grid_examples();
    test_region_iou_low();
    TEST_MAIN_END();
}
