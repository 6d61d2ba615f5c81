/* saa tensor runtime: a small tensor type for I/O and checking, plus raw-pointer ops.
 *
 * Ops work on plain contiguous row-major float arrays with explicit sizes (the way
 * whisper.cpp-style model code calls them); saa_tensor is the owning/borrowing container
 * used for checkpoints, golden files and public results. */
#ifndef SAA_TENSOR_H
#define SAA_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------- status ----------
 * Library functions return SAA_OK (0) or a negative SAA_E* code and set a thread-local message
 * (one line, naming the file and the expectation) that the CLI prints. Library code never prints
 * or exits. */
enum { SAA_OK = 0, SAA_EINVAL = -1, SAA_EIO = -2, SAA_EFORMAT = -3, SAA_ENOMEM = -4, SAA_ESHAPE = -5,
       SAA_EUNSUPPORTED = -6 };
int saa_set_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *saa_last_error(void);
void saa_clear_error(void);

/* ---------- tensor ---------- */
#define SAA_MAX_DIMS 8
typedef enum {
    SAA_F32 = 0, SAA_F16, SAA_BF16, SAA_F64, SAA_I64, SAA_I32, SAA_I16, SAA_I8, SAA_U8, SAA_U16, SAA_BOOL
} saa_dtype;

typedef struct saa_tensor {
    saa_dtype dtype;
    int ndim;
    int64_t shape[SAA_MAX_DIMS];
    void *data;     /* contiguous, row-major */
    int owns_data;  /* free(data) on saa_tensor_free */
} saa_tensor;

size_t saa_dtype_size(saa_dtype t);
const char *saa_dtype_name(saa_dtype t); /* "float32", "int64", ... (torch/numpy names) */
int64_t saa_tensor_numel(const saa_tensor *t);
size_t saa_tensor_nbytes(const saa_tensor *t);
/* Allocates (zeroed) an owned tensor; returns NULL and sets the error on failure. */
saa_tensor *saa_tensor_new(saa_dtype dtype, int ndim, const int64_t *shape);
/* Borrows data (not freed by saa_tensor_free). */
saa_tensor *saa_tensor_wrap(saa_dtype dtype, int ndim, const int64_t *shape, void *data);
saa_tensor *saa_tensor_copy(const saa_tensor *t);
/* Converts any numeric dtype to a new owned float32 tensor (exact for f16/bf16/small ints). */
saa_tensor *saa_tensor_to_f32(const saa_tensor *t);
void saa_tensor_free(saa_tensor *t);
/* Element i (flat index) as double, whatever the dtype. */
double saa_tensor_get(const saa_tensor *t, int64_t i);
/* "[1, 3, 160, 160]" into buf. */
const char *saa_shape_str(const saa_tensor *t, char *buf, size_t n);
int saa_shape_eq(const saa_tensor *t, int ndim, const int64_t *shape);

float saa_f16_to_f32(uint16_t h);
float saa_bf16_to_f32(uint16_t h);

/* ---------- threads ---------- */
/* Thread count from SAA_THREADS (default: all cores); applied to OpenMP and OpenBLAS. */
int saa_threads(void);
void saa_threads_init(void);

/* ---------- ops (all float32, contiguous, row-major) ---------- */

/* C[M,N] = alpha * op(A) op(B) + beta * C, op = transpose if trans. lda/ldb/ldc as in BLAS row-major. */
void saa_gemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
              int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
/* Batched: count independent GEMMs with strides between consecutive matrices. */
void saa_gemm_batched(int64_t count, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                      const float *A, int64_t lda, int64_t stride_a, const float *B, int64_t ldb,
                      int64_t stride_b, float beta, float *C, int64_t ldc, int64_t stride_c);
/* y = alpha * op(A) x + beta * y, A[M,N] row-major (lda), op = transpose if trans; x and y contiguous.
 * A matrix times one vector: far cheaper than saa_gemm with one row, which packs all of A. */
void saa_gemv(int trans, int64_t M, int64_t N, float alpha, const float *A, int64_t lda, const float *x,
              float beta, float *y);
/* torch nn.Linear: y[rows,out] = x[rows,in] W[out,in]^T + b[out] (b may be NULL). y must not alias x. */
void saa_linear(const float *x, int64_t rows, int64_t in, const float *W, const float *b, int64_t out,
                float *y);
/* The same with the outputs split over nthreads OpenMP threads, one sgemm call each: for callers that
 * keep OpenBLAS single-threaded, with few rows (a row split would pack all of W once per thread). */
void saa_linear_cols(const float *x, int64_t rows, int64_t in, const float *W, const float *b, int64_t out, float *y,
                     int nthreads);

/* conv2d, NCHW: x[N,C,H,W], w[O,C/groups,KH,KW], b[O] or NULL -> y[N,O,OH,OW],
 * OH = (H + 2*pad_h - dil_h*(KH-1) - 1)/stride_h + 1 (torch semantics, zero padding).
 * im2col + sgemm per group (1x1 stride-1 convs: sgemm on x directly; depthwise: direct loops); the
 * im2col buffer is tiled over output rows to stay <= 16 MB. groups/dil <= 0 are read as 1. */
typedef struct {
    int stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups;
} saa_conv_params;
void saa_conv2d(const float *x, int64_t N, int64_t C, int64_t H, int64_t W, const float *w, int64_t O,
                int64_t KH, int64_t KW, const float *b, saa_conv_params p, float *y);
int64_t saa_conv_out_size(int64_t in, int k, int stride, int pad, int dil);
/* conv_transpose2d (torch semantics, groups 1, no output_padding): w[C,O,KH,KW] -> y[N,O,OH,OW],
 * OH = (H-1)*stride - 2*pad + dil*(KH-1) + 1. */
void saa_conv_transpose2d(const float *x, int64_t N, int64_t C, int64_t H, int64_t W, const float *w,
                          int64_t O, int64_t KH, int64_t KW, const float *b, int stride, int pad, float *y);

/* LayerNorm over the last dim: x[rows,dim]; w/b may be NULL. In-place allowed (y == x). */
void saa_layer_norm(const float *x, int64_t rows, int64_t dim, const float *w, const float *b, float eps,
                    float *y);
/* SAM LayerNorm2d: normalise over channels per pixel, x[C,HW] (one image). In-place allowed. */
void saa_layer_norm2d(const float *x, int64_t C, int64_t HW, const float *w, const float *b, float eps,
                      float *y);
/* GroupNorm, x[C,HW] (one image). In-place allowed. */
void saa_group_norm(const float *x, int64_t C, int64_t HW, int64_t groups, const float *w, const float *b,
                    float eps, float *y);
/* Eval BatchNorm, x[C,HW] (one image) in place. */
void saa_batch_norm(float *x, int64_t C, int64_t HW, const float *mean, const float *var, const float *w,
                    const float *b, float eps);
/* Folds eval BatchNorm into the preceding bias-free conv: w[O,...] (per_out elements each) scaled in
 * place, b[O] written (its input content is ignored). */
void saa_fold_batch_norm(float *w, float *b, int64_t O, int64_t per_out, const float *mean,
                         const float *var, const float *gamma, const float *beta, float eps);

/* GELU 'none': x * 0.5 * (1 + erf(x / sqrt 2)) with the Abramowitz-Stegun erf (|err| <= 1.5e-7) that
 * PyTorch's vectorised CPU kernel uses. */
void saa_gelu_erf(float *x, int64_t n);
void saa_gelu_tanh(float *x, int64_t n);
void saa_relu(float *x, int64_t n);
void saa_sigmoid(float *x, int64_t n); /* 1 / (1 + exp(-x)) in float */
/* Softmax along rows of x[rows,cols], in place, max-subtracted (torch semantics; -inf entries give 0,
 * a row of only -inf or with a NaN gives NaN, as torch.softmax). Parallel over rows; inside an
 * OpenMP parallel region it runs on the calling thread. */
void saa_softmax_rows(float *x, int64_t rows, int64_t cols);
/* The same down each column of x[rows,cols] (softmax over dim -2), vectorised across columns. */
void saa_softmax_cols(float *x, int64_t rows, int64_t cols);

/* Scaled dot-product attention for ONE head: out[Lq,dv] = softmax(scale * q k^T + mask) v.
 * q[Lq,d] with row stride ldq, k[Lk,d] stride ldk, v[Lk,dv] stride ldv, out stride ldo;
 * mask: additive [Lq,Lk] or NULL. scores: caller-provided scratch of Lq*Lk floats
 * (one head's score matrix per thread). */
void saa_attention_head(const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v,
                        int64_t ldv, int64_t Lq, int64_t Lk, int64_t d, int64_t dv, float scale,
                        const float *mask, float *out, int64_t ldo, float *scores);

/* torch F.interpolate(mode='bilinear') on x[C,H,W] -> y[C,OH,OW], exactly as PyTorch's CPU kernel
 * (scale computed in float32, source index in double; see sam_tiny README M2). */
void saa_interp_bilinear(const float *x, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                         int align_corners, float *y);
/* Only the top-left out_h x out_w window of that OH x OW resampling (same values): y[C,out_h,out_w]. */
void saa_interp_bilinear_window(const float *x, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                int align_corners, int64_t out_h, int64_t out_w, float *y);
/* The same resampling as PyTorch 1.13 computes it when the input tensor is channels-last contiguous
 * (size-1 dims ignored): weights l_h * l_w in float, four products summed in double. Results differ
 * from saa_interp_bilinear by <= 1-2 ulp; use it where torch's input is channels-last contiguous to
 * be bit-exact. For Sam.postprocess_masks of masks[:, k:k+1] ([B,1,...] slices, C = 1) that means:
 * first interpolation (low-res -> padded S x S) iff B == 1; second (crop [:h, :w] -> original size)
 * iff B == 1 and w == S (the crop keeps whole rows). A [B,C>1,...] slice and B > 1 take the generic
 * kernel (saa_interp_bilinear). Checked bit-exact on sam_tiny post.a-d. */
void saa_interp_bilinear_cl(const float *x, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                            int align_corners, float *y);
/* torch F.interpolate(mode='linear', align_corners=False) on x[C,L] -> y[C,OL]. */
void saa_interp_linear1d(const float *x, int64_t C, int64_t L, int64_t OL, float *y);
/* torch F.interpolate(mode='nearest'): src = floor(dst * (float)in/out), clamped. */
void saa_interp_nearest(const float *x, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW, float *y);

/* max_pool2d (torch semantics, -inf padding, floor mode): x[C,H,W] -> y[C,OH,OW]. */
void saa_max_pool2d(const float *x, int64_t C, int64_t H, int64_t W, int k, int stride, int pad, float *y);
/* adaptive_avg_pool2d (torch semantics). */
void saa_adaptive_avg_pool2d(const float *x, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                             float *y);

/* grid_sample(mode='bilinear', padding_mode='zeros', align_corners=False) of ONE point on
 * value[H,W,C] (channels last, row stride W*C): gx, gy in [-1,1]; adds weight*sample to out[C].
 * As torch's vectorised CPU kernel: x = (gx + 1) * (W / 2) - 0.5 in float, corners outside the
 * image contribute 0. */
void saa_grid_sample_accum(const float *value, int64_t H, int64_t W, int64_t C, float gx, float gy,
                           float weight, float *out);

/* torch.topk(x, k) on CPU (largest, sorted): indices of the k largest values, descending, NaN ranking
 * highest, and exactly equal values in torch 1.13's own order (its std::partial_sort / std::nth_element
 * + std::sort, transcribed from libstdc++). idx[k]; vals may be NULL. k > n is clamped to n. */
void saa_topk(const float *x, int64_t n, int64_t k, int64_t *idx, float *vals);
/* Stable ascending argsort (descending if desc). Ascending puts NaN last (numpy), descending
 * first (torch's descending sort). */
void saa_argsort(const float *x, int64_t n, int desc, int64_t *idx);
int64_t saa_argmax(const float *x, int64_t n); /* first maximum; first NaN if any; -1 if n == 0 */

#ifdef __cplusplus
}
#endif
#endif
