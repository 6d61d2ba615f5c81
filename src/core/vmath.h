/* Branch-free float32 exp for loops the compiler vectorises (#pragma omp simd), used by softmax,
 * GELU and sigmoid. Accuracy ~1 ulp over the whole range, like the Sleef expf PyTorch's vectorised
 * CPU kernels call; glibc's expf is similar in accuracy but a scalar call per element. */
#ifndef SAA_VMATH_H
#define SAA_VMATH_H

#include <stdint.h>
#include <string.h>

/* A hot loop function compiled for x86-64-v4 (AVX-512), v3 (AVX2 + FMA) and baseline x86-64 and
 * picked at load time (the library is built without -march): the omp simd loops inside get the
 * wide vectors and fmaf() is one instruction. Reductions (omp simd reduction) then sum in a
 * different lane order per machine, as PyTorch's do; a * b + c is never contracted (-std=c11). */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define SAA_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SAA_SIMD_CLONES
#endif

/* 2^n for n in [-126, 127] from the exponent bits. */
static inline float saa_pow2i(int32_t n)
{
    int32_t bits = (n + 127) << 23;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* exp(x): n = round(x / ln 2), r = x - n ln 2 (Cody-Waite split), e^r by a degree-6 polynomial
 * (Cephes expf coefficients), times 2^n applied as two factors so results down to the denormal
 * range and up to FLT_MAX stay exact in the exponent. exp(-inf) = 0, exp(+inf) = inf, NaN -> NaN. */
static inline float saa_expf(float x)
{
    const float hi = 88.72283935546875f, lo = -103.972084045410f;
    float xc = x > hi ? hi : x;
    xc = xc < lo ? lo : xc;
    xc = xc == xc ? xc : 0.0f; /* NaN: computed on 0, replaced below */
    const float round_magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float nf = (xc * 1.44269504088896341f + round_magic) - round_magic;
    float r = xc - nf * 0.693359375f;
    r = r - nf * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t n = (int32_t)nf, n1 = n / 2, n2 = n - n1;
    float y = p * saa_pow2i(n1) * saa_pow2i(n2);
    y = x > hi ? __builtin_inff() : y;
    return x == x ? y : x;
}

#endif
