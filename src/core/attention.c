/* Scaled dot-product attention for one head: two sgemm calls around a row softmax; the only
 * intermediate is the caller's [Lq, Lk] score scratch. */
#include "saa/tensor.h"

void saa_attention_head(const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v,
                        int64_t ldv, int64_t Lq, int64_t Lk, int64_t d, int64_t dv, float scale,
                        const float *mask, float *out, int64_t ldo, float *scores)
{
    if (Lq <= 0 || dv <= 0) return;
    saa_gemm(0, 1, Lq, Lk, d, scale, q, ldq, k, ldk, 0.0f, scores, Lk);
    if (mask) {
        int64_t n = Lq * Lk;
#pragma omp parallel for if (n > 65536) schedule(static)
        for (int64_t i = 0; i < n; i++) scores[i] += mask[i];
    }
    saa_softmax_rows(scores, Lq, Lk);
    saa_gemm(0, 0, Lq, dv, Lk, 1.0f, scores, Lk, v, ldv, 0.0f, out, ldo);
}
