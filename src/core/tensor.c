/* The saa_tensor container: allocation, dtype conversion, element access. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saa/tensor.h"

size_t saa_dtype_size(saa_dtype t)
{
    switch (t) {
    case SAA_F64: case SAA_I64: return 8;
    case SAA_F32: case SAA_I32: return 4;
    case SAA_F16: case SAA_BF16: case SAA_I16: case SAA_U16: return 2;
    case SAA_I8: case SAA_U8: case SAA_BOOL: return 1;
    }
    return 0;
}

const char *saa_dtype_name(saa_dtype t)
{
    static const char *names[] = {"float32", "float16", "bfloat16", "float64", "int64", "int32",
                                  "int16",   "int8",    "uint8",    "uint16",  "bool"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

int64_t saa_tensor_numel(const saa_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t saa_tensor_nbytes(const saa_tensor *t) { return (size_t)saa_tensor_numel(t) * saa_dtype_size(t->dtype); }

static saa_tensor *tensor_header(saa_dtype dtype, int ndim, const int64_t *shape)
{
    if (ndim < 0 || ndim > SAA_MAX_DIMS) {
        saa_set_error(SAA_ESHAPE, "tensor rank %d exceeds the supported %d", ndim, SAA_MAX_DIMS);
        return NULL;
    }
    saa_tensor *t = calloc(1, sizeof *t);
    if (!t) {
        saa_set_error(SAA_ENOMEM, "out of memory");
        return NULL;
    }
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            free(t);
            saa_set_error(SAA_ESHAPE, "negative tensor dimension %lld", (long long)shape[i]);
            return NULL;
        }
        t->shape[i] = shape[i];
    }
    return t;
}

saa_tensor *saa_tensor_new(saa_dtype dtype, int ndim, const int64_t *shape)
{
    saa_tensor *t = tensor_header(dtype, ndim, shape);
    if (!t) return NULL;
    size_t n = saa_tensor_nbytes(t);
    t->data = calloc(n ? n : 1, 1);
    if (!t->data) {
        free(t);
        saa_set_error(SAA_ENOMEM, "out of memory allocating %zu bytes", n);
        return NULL;
    }
    t->owns_data = 1;
    return t;
}

saa_tensor *saa_tensor_wrap(saa_dtype dtype, int ndim, const int64_t *shape, void *data)
{
    saa_tensor *t = tensor_header(dtype, ndim, shape);
    if (t) t->data = data;
    return t;
}

saa_tensor *saa_tensor_copy(const saa_tensor *src)
{
    saa_tensor *t = saa_tensor_new(src->dtype, src->ndim, src->shape);
    if (t && saa_tensor_nbytes(src)) memcpy(t->data, src->data, saa_tensor_nbytes(src));
    return t;
}

void saa_tensor_free(saa_tensor *t)
{
    if (!t) return;
    if (t->owns_data) free(t->data);
    free(t);
}

float saa_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) {
                mant <<= 1;
                exp--;
            }
            mant &= 0x3ff;
            bits = sign | (exp << 23) | (mant << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float saa_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

double saa_tensor_get(const saa_tensor *t, int64_t i)
{
    const unsigned char *p = (const unsigned char *)t->data + (size_t)i * saa_dtype_size(t->dtype);
    switch (t->dtype) {
    case SAA_F32: { float v; memcpy(&v, p, 4); return v; }
    case SAA_F64: { double v; memcpy(&v, p, 8); return v; }
    case SAA_F16: { uint16_t v; memcpy(&v, p, 2); return saa_f16_to_f32(v); }
    case SAA_BF16: { uint16_t v; memcpy(&v, p, 2); return saa_bf16_to_f32(v); }
    case SAA_I64: { int64_t v; memcpy(&v, p, 8); return (double)v; }
    case SAA_I32: { int32_t v; memcpy(&v, p, 4); return v; }
    case SAA_I16: { int16_t v; memcpy(&v, p, 2); return v; }
    case SAA_U16: { uint16_t v; memcpy(&v, p, 2); return v; }
    case SAA_I8: return (double)*(const int8_t *)p;
    case SAA_U8: return *p;
    case SAA_BOOL: return *p ? 1.0 : 0.0;
    }
    return 0;
}

saa_tensor *saa_tensor_to_f32(const saa_tensor *src)
{
    saa_tensor *t = saa_tensor_new(SAA_F32, src->ndim, src->shape);
    if (!t) return NULL;
    float *d = t->data;
    int64_t n = saa_tensor_numel(src);
    if (src->dtype == SAA_F32) {
        if (n) memcpy(d, src->data, (size_t)n * 4);
    } else {
        for (int64_t i = 0; i < n; i++) d[i] = (float)saa_tensor_get(src, i);
    }
    return t;
}

const char *saa_shape_str(const saa_tensor *t, char *buf, size_t n)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < t->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

int saa_shape_eq(const saa_tensor *t, int ndim, const int64_t *shape)
{
    if (t->ndim != ndim) return 0;
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] != shape[i]) return 0;
    return 1;
}
