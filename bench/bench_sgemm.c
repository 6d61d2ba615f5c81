/* OpenBLAS sgemm throughput on this machine, 1 thread and saa_threads() threads, for square and
 * ViT-H-like shapes. Usage: bench_sgemm [min_seconds_per_entry] (default 1). */
#include "bench_util.h"

int main(int argc, char **argv)
{
    double min_s = argc > 1 ? atof(argv[1]) : 1.0;
    saa_threads_init();
    int nt = saa_threads();
    static const struct {
        int M, N, K;
        const char *what;
    } shapes[] = {
        {2048, 2048, 2048, "square"},
        {4096, 1024, 1024, "tall"},
        {4096, 3840, 1280, "ViT-H qkv (64x64 tokens)"},
        {4096, 5120, 1280, "ViT-H MLP fc1"},
        {196, 196, 80, "ViT-H window attention q k^T (one head)"},
    };
    printf("OpenBLAS sgemm, row-major C[M,N] = A[M,K] B[K,N], best of >= %.1f s per entry\n", min_s);
    char head[32];
    snprintf(head, sizeof head, "%d thr GF/s", nt);
    printf("%-6s %-6s %-6s  %11s  %11s  %s\n", "M", "N", "K", "1 thr GF/s", head, "shape");
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        double g1 = bench_sgemm_gflops(shapes[i].M, shapes[i].N, shapes[i].K, 1, min_s);
        double gn = nt > 1 ? bench_sgemm_gflops(shapes[i].M, shapes[i].N, shapes[i].K, nt, min_s) : g1;
        printf("%-6d %-6d %-6d  %11.1f  %11.1f  %s\n", shapes[i].M, shapes[i].N, shapes[i].K, g1, gn, shapes[i].what);
    }
    printf("peak RSS %.1f MiB\n", bench_peak_rss_mb());
    return 0;
}
