/* topk, stable argsort, argmax. NaN ranks above every number (torch.topk / descending sort
 * semantics) and last in an ascending argsort (numpy semantics). */
#include <math.h>
#include <stdlib.h>

#include "saa/tensor.h"

/* 1 if element a must come before element b (a != b), for a descending order with NaN first. */
static int before_desc(const float *x, int64_t a, int64_t b)
{
    float va = x[a], vb = x[b];
    if (isnan(va) || isnan(vb)) return isnan(va) && !isnan(vb);
    return va > vb;
}

static int before_asc(const float *x, int64_t a, int64_t b)
{
    float va = x[a], vb = x[b];
    if (isnan(va) || isnan(vb)) return !isnan(va) && isnan(vb);
    return va < vb;
}

/* Stable bottom-up merge sort of idx[0..n) (tmp: n scratch entries, or NULL for insertion sort). */
static void stable_sort(const float *x, int desc, int64_t *idx, int64_t *tmp, int64_t n)
{
    int (*before)(const float *, int64_t, int64_t) = desc ? before_desc : before_asc;
    if (!tmp) {
        for (int64_t i = 1; i < n; i++) {
            int64_t v = idx[i], j = i;
            for (; j > 0 && before(x, v, idx[j - 1]); j--) idx[j] = idx[j - 1];
            idx[j] = v;
        }
        return;
    }
    int64_t *src = idx, *dst = tmp;
    for (int64_t width = 1; width < n; width *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * width) {
            int64_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
            int64_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) dst[k++] = before(x, src[j], src[i]) ? src[j++] : src[i++];
            while (i < mid) dst[k++] = src[i++];
            while (j < hi) dst[k++] = src[j++];
        }
        int64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != idx)
        for (int64_t i = 0; i < n; i++) idx[i] = src[i];
}

void saa_argsort(const float *x, int64_t n, int desc, int64_t *idx)
{
    if (n <= 0) return;
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    int64_t *tmp = malloc((size_t)n * sizeof *tmp);
    stable_sort(x, desc, idx, tmp, n);
    free(tmp);
}

/* torch.topk(largest=True, sorted=True). torch's CPU order among exactly equal values is
 * unspecified (std::partial_sort / nth_element); here ties keep the lower index first. */
void saa_topk(const float *x, int64_t n, int64_t k, int64_t *idx, float *vals)
{
    if (k > n) k = n;
    if (k <= 0) return;
    int64_t *all = malloc((size_t)n * sizeof *all);
    if (!all) {
        /* low memory: k passes of selection, each picking the first best not yet taken */
        for (int64_t r = 0; r < k; r++) {
            int64_t best = -1;
            for (int64_t i = 0; i < n; i++) {
                int taken = 0;
                for (int64_t t = 0; t < r && !taken; t++) taken = idx[t] == i;
                if (!taken && (best < 0 || before_desc(x, i, best))) best = i;
            }
            idx[r] = best;
        }
    } else {
        saa_argsort(x, n, 1, all);
        for (int64_t r = 0; r < k; r++) idx[r] = all[r];
        free(all);
    }
    if (vals)
        for (int64_t r = 0; r < k; r++) vals[r] = x[idx[r]];
}

/* torch.argmax / numpy.argmax: index of the first maximum; the first NaN if there is one. */
int64_t saa_argmax(const float *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(x[i])) return i;
        if (x[i] > x[best]) best = i;
    }
    return n > 0 ? best : -1;
}
