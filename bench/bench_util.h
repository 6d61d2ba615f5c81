/* Small helpers shared by the bench/ programs: wall-clock timer, peak RSS, and the OpenBLAS sgemm
 * GFLOP/s of this machine (the yardstick other benchmarks print their own GFLOP/s next to). */
#ifndef SAA_BENCH_UTIL_H
#define SAA_BENCH_UTIL_H

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "saa/tensor.h"

/* Seconds from an arbitrary origin (monotonic wall clock). */
static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Peak resident set size of this process so far, in MiB (getrusage ru_maxrss is in KiB on Linux). */
static inline double bench_peak_rss_mb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1.0;
    return (double)ru.ru_maxrss / 1024.0;
}

/* GFLOP/s of row-major C[M,N] = A[M,K] B[K,N] with OpenBLAS on `threads` threads (0 = keep the
 * current setting), best of repeated runs for at least min_seconds after one warm-up call.
 * Restores the saa_threads() setting afterwards. Returns -1 if the buffers cannot be allocated. */
static inline double bench_sgemm_gflops(int M, int N, int K, int threads, double min_seconds)
{
    float *a = malloc(sizeof(float) * (size_t)M * K), *b = malloc(sizeof(float) * (size_t)K * N);
    float *c = malloc(sizeof(float) * (size_t)M * N);
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return -1.0;
    }
    for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)((i * 7919u) % 1000u) * 1e-3f - 0.5f;
    for (size_t i = 0; i < (size_t)K * N; i++) b[i] = (float)((i * 104729u) % 1000u) * 1e-3f - 0.5f;
    if (threads > 0) openblas_set_num_threads(threads);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a, K, b, N, 0.0f, c, N);
    double best = 1e30, start = bench_now();
    int reps = 0;
    do {
        double t0 = bench_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a, K, b, N, 0.0f, c, N);
        double t = bench_now() - t0;
        if (t < best) best = t;
        reps++;
    } while (bench_now() - start < min_seconds || reps < 2);
    if (threads > 0) openblas_set_num_threads(saa_threads());
    free(a), free(b), free(c);
    return 2.0 * M * N * K / best * 1e-9;
}

#endif
