/* topk, stable argsort, argmax. NaN ranks above every number (torch.topk / descending sort
 * semantics) and last in an ascending argsort (numpy semantics). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* ---------- torch.topk (CPU) ----------
 * aten/src/ATen/native/TopKImpl.h topk_impl_loop (torch 1.13): a queue of (value, index) pairs in index
 * order; if k * 64 <= n, std::partial_sort of the first k; otherwise std::nth_element at k - 1 followed by
 * std::sort of the first k - 1 (sic); comparator "a before b" = (isnan(a) && !isnan(b)) || a > b. The
 * order among equal values is whatever these algorithms leave, so they are transcribed here from
 * libstdc++ (GCC 12, bits/stl_algo.h and bits/stl_heap.h), which the Debian torch build uses: exact ties
 * (e.g. the identical scores of all invalid border proposals in Grounding DINO's query selection) come
 * out in torch's order. */

typedef struct {
    float v;
    int64_t i;
} tk_elem;

static int tk_before(tk_elem a, tk_elem b) { return (isnan(a.v) && !isnan(b.v)) || a.v > b.v; }

static void tk_swap(tk_elem *a, tk_elem *b)
{
    tk_elem t = *a;
    *a = *b;
    *b = t;
}

/* std::__push_heap */
static void tk_push_heap(tk_elem *first, int64_t hole, int64_t top, tk_elem value)
{
    int64_t parent = (hole - 1) / 2;
    while (hole > top && tk_before(first[parent], value)) {
        first[hole] = first[parent];
        hole = parent;
        parent = (hole - 1) / 2;
    }
    first[hole] = value;
}

/* std::__adjust_heap */
static void tk_adjust_heap(tk_elem *first, int64_t hole, int64_t len, tk_elem value)
{
    const int64_t top = hole;
    int64_t child = hole;
    while (child < (len - 1) / 2) {
        child = 2 * (child + 1);
        if (tk_before(first[child], first[child - 1])) child--;
        first[hole] = first[child];
        hole = child;
    }
    if ((len & 1) == 0 && child == (len - 2) / 2) {
        child = 2 * (child + 1);
        first[hole] = first[child - 1];
        hole = child - 1;
    }
    tk_push_heap(first, hole, top, value);
}

/* std::__pop_heap(first, last, result) */
static void tk_pop_heap(tk_elem *first, tk_elem *last, tk_elem *result)
{
    tk_elem value = *result;
    *result = *first;
    tk_adjust_heap(first, 0, last - first, value);
}

/* std::__make_heap */
static void tk_make_heap(tk_elem *first, tk_elem *last)
{
    const int64_t len = last - first;
    if (len < 2) return;
    for (int64_t parent = (len - 2) / 2;; parent--) {
        tk_adjust_heap(first, parent, len, first[parent]);
        if (parent == 0) return;
    }
}

/* std::__heap_select */
static void tk_heap_select(tk_elem *first, tk_elem *middle, tk_elem *last)
{
    tk_make_heap(first, middle);
    for (tk_elem *i = middle; i < last; i++)
        if (tk_before(*i, *first)) tk_pop_heap(first, middle, i);
}

/* std::__sort_heap */
static void tk_sort_heap(tk_elem *first, tk_elem *last)
{
    while (last - first > 1) {
        --last;
        tk_pop_heap(first, last, last);
    }
}

/* std::__partial_sort */
static void tk_partial_sort(tk_elem *first, tk_elem *middle, tk_elem *last)
{
    tk_heap_select(first, middle, last);
    tk_sort_heap(first, middle);
}

/* std::__move_median_to_first */
static void tk_move_median_to_first(tk_elem *result, tk_elem *a, tk_elem *b, tk_elem *c)
{
    if (tk_before(*a, *b)) {
        if (tk_before(*b, *c))
            tk_swap(result, b);
        else if (tk_before(*a, *c))
            tk_swap(result, c);
        else
            tk_swap(result, a);
    } else if (tk_before(*a, *c)) {
        tk_swap(result, a);
    } else if (tk_before(*b, *c)) {
        tk_swap(result, c);
    } else {
        tk_swap(result, b);
    }
}

/* std::__unguarded_partition */
static tk_elem *tk_unguarded_partition(tk_elem *first, tk_elem *last, tk_elem *pivot)
{
    for (;;) {
        while (tk_before(*first, *pivot)) ++first;
        --last;
        while (tk_before(*pivot, *last)) --last;
        if (!(first < last)) return first;
        tk_swap(first, last);
        ++first;
    }
}

/* std::__unguarded_partition_pivot */
static tk_elem *tk_partition_pivot(tk_elem *first, tk_elem *last)
{
    tk_elem *mid = first + (last - first) / 2;
    tk_move_median_to_first(first, first + 1, mid, last - 1);
    return tk_unguarded_partition(first + 1, last, first);
}

/* std::__unguarded_linear_insert */
static void tk_unguarded_linear_insert(tk_elem *last)
{
    tk_elem val = *last, *next = last - 1;
    while (tk_before(val, *next)) {
        *last = *next;
        last = next;
        --next;
    }
    *last = val;
}

/* std::__insertion_sort */
static void tk_insertion_sort(tk_elem *first, tk_elem *last)
{
    if (first == last) return;
    for (tk_elem *i = first + 1; i != last; ++i) {
        if (tk_before(*i, *first)) {
            tk_elem val = *i;
            memmove(first + 1, first, (size_t)(i - first) * sizeof *first);
            *first = val;
        } else {
            tk_unguarded_linear_insert(i);
        }
    }
}

/* std::__lg */
static int64_t tk_lg(int64_t n)
{
    int64_t k = 0;
    while (n >>= 1) k++;
    return k;
}

/* std::__introselect */
static void tk_introselect(tk_elem *first, tk_elem *nth, tk_elem *last, int64_t depth_limit)
{
    while (last - first > 3) {
        if (depth_limit == 0) {
            tk_heap_select(first, nth + 1, last);
            tk_swap(first, nth); /* the nth element in its final place */
            return;
        }
        --depth_limit;
        tk_elem *cut = tk_partition_pivot(first, last);
        if (cut <= nth)
            first = cut;
        else
            last = cut;
    }
    tk_insertion_sort(first, last);
}

enum { TK_SORT_THRESHOLD = 16 }; /* libstdc++ _S_threshold */

/* std::__introsort_loop */
static void tk_introsort_loop(tk_elem *first, tk_elem *last, int64_t depth_limit)
{
    while (last - first > TK_SORT_THRESHOLD) {
        if (depth_limit == 0) {
            tk_partial_sort(first, last, last);
            return;
        }
        --depth_limit;
        tk_elem *cut = tk_partition_pivot(first, last);
        tk_introsort_loop(cut, last, depth_limit);
        last = cut;
    }
}

/* std::sort: introsort, then __final_insertion_sort */
static void tk_sort(tk_elem *first, tk_elem *last)
{
    if (first == last) return;
    tk_introsort_loop(first, last, tk_lg(last - first) * 2);
    if (last - first > TK_SORT_THRESHOLD) {
        tk_insertion_sort(first, first + TK_SORT_THRESHOLD);
        for (tk_elem *i = first + TK_SORT_THRESHOLD; i != last; ++i) tk_unguarded_linear_insert(i);
    } else {
        tk_insertion_sort(first, last);
    }
}

void saa_topk(const float *x, int64_t n, int64_t k, int64_t *idx, float *vals)
{
    if (k > n) k = n;
    if (k <= 0) return;
    tk_elem *q = malloc((size_t)n * sizeof *q);
    if (!q) {
        /* low memory: k passes of selection, each picking the first best not yet taken (the order of
         * exactly equal values may then differ from torch's) */
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
        for (int64_t i = 0; i < n; i++) q[i].v = x[i], q[i].i = i;
        if (k * 64 <= n) {
            tk_partial_sort(q, q + k, q + n);
        } else {
            /* std::nth_element(first, first + k - 1, last): nothing to do when nth == last */
            if (k - 1 < n) tk_introselect(q, q + k - 1, q + n, tk_lg(n) * 2);
            tk_sort(q, q + k - 1);
        }
        for (int64_t r = 0; r < k; r++) idx[r] = q[r].i;
        free(q);
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
