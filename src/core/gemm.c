/* GEMM wrappers over OpenBLAS cblas_sgemm (row-major) and torch nn.Linear. OpenBLAS parallelises
 * each call itself (thread count set by saa_threads_init). */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "saa/tensor.h"

void saa_gemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
              int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        /* BLAS semantics: C = beta * C (beta == 0 overwrites, also NaN garbage). */
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                (blasint)M, (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta, C,
                (blasint)ldc);
}

void saa_gemm_batched(int64_t count, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                      const float *A, int64_t lda, int64_t stride_a, const float *B, int64_t ldb,
                      int64_t stride_b, float beta, float *C, int64_t ldc, int64_t stride_c)
{
    for (int64_t i = 0; i < count; i++)
        saa_gemm(trans_a, trans_b, M, N, K, alpha, A + i * stride_a, lda, B + i * stride_b, ldb, beta,
                 C + i * stride_c, ldc);
}

void saa_gemv(int trans, int64_t M, int64_t N, float alpha, const float *A, int64_t lda, const float *x,
              float beta, float *y)
{
    int64_t ny = trans ? N : M, nx = trans ? M : N;
    if (ny <= 0) return;
    if (nx <= 0) {
        for (int64_t i = 0; i < ny; i++) y[i] = beta == 0.0f ? 0.0f : beta * y[i];
        return;
    }
    cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, (blasint)M, (blasint)N, alpha, A, (blasint)lda,
                x, 1, beta, y, 1);
}

/* mirrors torch.nn.functional.linear = addmm(b, x, W^T): y is pre-filled with the bias and the
 * product accumulated with beta = 1, the same order as torch's CPU addmm. */
void saa_linear(const float *x, int64_t rows, int64_t in, const float *W, const float *b, int64_t out,
                float *y)
{
    if (rows <= 0 || out <= 0) return;
    if (b) {
#pragma omp parallel for if (rows * out > 65536) schedule(static)
        for (int64_t r = 0; r < rows; r++) memcpy(y + r * out, b, (size_t)out * sizeof *y);
    }
    saa_gemm(0, 1, rows, out, in, 1.0f, x, in, W, in, b ? 1.0f : 0.0f, y, out);
}

void saa_linear_cols(const float *x, int64_t rows, int64_t in, const float *W, const float *b, int64_t out, float *y,
                     int nthreads)
{
    if (rows <= 0 || out <= 0) return;
    /* chunks of whole 16-column groups (one AVX-512 vector of outputs) */
    int64_t groups = (out + 15) / 16;
    int nt = nthreads < groups ? nthreads : (int)groups;
    if (nt <= 1) {
        saa_linear(x, rows, in, W, b, out, y);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        int64_t o0 = groups * t / n * 16, o1 = groups * (t + 1) / n * 16;
        if (o1 > out) o1 = out;
        if (o1 > o0) {
            if (b)
                for (int64_t r = 0; r < rows; r++) memcpy(y + r * out + o0, b + o0, (size_t)(o1 - o0) * sizeof *y);
            saa_gemm(0, 1, rows, o1 - o0, in, 1.0f, x, in, W + o0 * in, in, b ? 1.0f : 0.0f, y + o0, out);
        }
    }
}
