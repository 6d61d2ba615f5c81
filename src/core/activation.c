/* Elementwise activations and row softmax, float32, in place, computed in float as torch's CPU
 * kernels do. */
#include <math.h>

#include "saa/tensor.h"

#define PAR_MIN 65536 /* below this many elements a parallel region costs more than it saves */

/* mirrors aten/src/ATen/native/cpu/Activation.cpp GeluKernelImpl (approximate='none'):
 * x * 0.5 * (1 + erf(x * M_SQRT1_2)). */
void saa_gelu_erf(float *x, int64_t n)
{
    const float alpha = (float)M_SQRT1_2;
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) x[i] = x[i] * 0.5f * (1.0f + erff(x[i] * alpha));
}

/* approximate='tanh': 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))). */
void saa_gelu_tanh(float *x, int64_t n)
{
    const float beta = (float)(M_SQRT2 * M_2_SQRTPI * 0.5), kappa = 0.044715f;
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float v = x[i], inner = beta * (v + kappa * v * v * v);
        x[i] = 0.5f * v * (1.0f + tanhf(inner));
    }
}

void saa_relu(float *x, int64_t n)
{
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++)
        if (x[i] < 0.0f) x[i] = 0.0f; /* NaN stays NaN, as torch.relu */
}

/* torch CPU sigmoid for float: 1 / (1 + exp(-x)). */
void saa_sigmoid(float *x, int64_t n)
{
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) x[i] = 1.0f / (1.0f + expf(-x[i]));
}

/* One row, mirrors aten/src/ATen/native/cpu/SoftMaxKernel.cpp _vec_softmax_lastdim:
 * m = max, e = exp(x - m), y = e * (1 / sum e). A row of only -inf gives NaN (as torch). */
static void softmax_row(float *x, int64_t cols)
{
    float m = -INFINITY;
    for (int64_t j = 0; j < cols; j++)
        if (x[j] > m || isnan(x[j])) m = x[j];
    double sum = 0.0;
    for (int64_t j = 0; j < cols; j++) {
        x[j] = expf(x[j] - m);
        sum += x[j];
    }
    float inv = 1.0f / (float)sum;
    for (int64_t j = 0; j < cols; j++) x[j] *= inv;
}

void saa_softmax_rows(float *x, int64_t rows, int64_t cols)
{
    if (cols <= 0) return;
#pragma omp parallel for if (rows * cols > PAR_MIN) schedule(static)
    for (int64_t r = 0; r < rows; r++) softmax_row(x + r * cols, cols);
}
