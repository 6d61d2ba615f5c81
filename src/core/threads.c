/* Thread count: SAA_THREADS, default all cores; applied to OpenMP and OpenBLAS once. */
#include <stdlib.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <cblas.h>

#include "saa/tensor.h"

void openblas_set_num_threads(int num_threads);

int saa_threads(void)
{
    const char *s = getenv("SAA_THREADS");
    if (s && *s) {
        int n = atoi(s);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void saa_threads_init(void)
{
    int n = saa_threads();
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    openblas_set_num_threads(n);
}
