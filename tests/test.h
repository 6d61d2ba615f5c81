/* Minimal test harness: CHECK macros count failures; TEST_MAIN_END prints "N passed, N failed". */
#ifndef SAA_TEST_H
#define SAA_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static int test_passed, test_failed;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (cond) {                                                                    \
            test_passed++;                                                             \
        } else {                                                                       \
            test_failed++;                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
        }                                                                              \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                         \
    do {                                                                                              \
        double a_ = (a), b_ = (b);                                                                    \
        if (fabs(a_ - b_) <= (tol)) {                                                                 \
            test_passed++;                                                                            \
        } else {                                                                                      \
            test_failed++;                                                                            \
            fprintf(stderr, "%s:%d: %s = %.9g, expected %s = %.9g (tol %g)\n", __FILE__, __LINE__, #a, \
                    a_, #b, b_, (double)(tol));                                                       \
        }                                                                                             \
    } while (0)

/* Returns 1 if path exists. */
static inline int test_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

#define TEST_MAIN_END()                                                  \
    do {                                                                 \
        printf("%d passed, %d failed\n", test_passed, test_failed);      \
        return test_failed ? 1 : 0;                                      \
    } while (0)

#endif
