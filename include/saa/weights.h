/* Checkpoint reading: PyTorch .pth (zip + whitelisted pickle) and safetensors, memory-mapped,
 * as one name -> tensor map; and the binding helper models use to declare the tensors they need. */
#ifndef SAA_WEIGHTS_H
#define SAA_WEIGHTS_H

#include "saa/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct saa_weights saa_weights;

/* Opens a .pth (torch.save zip format; a nested {"model": state_dict} is descended into) or a
 * .safetensors file, detected by content. Tensor data stays memory-mapped where it is stored
 * contiguous and aligned; strided views, unaligned storages and converted dtypes are copied. */
int saa_weights_open(const char *path, saa_weights **out);
void saa_weights_close(saa_weights *w);
const char *saa_weights_path(const saa_weights *w);
int saa_weights_count(const saa_weights *w);
const char *saa_weights_name(const saa_weights *w, int i);
/* Tensor in its stored dtype. */
const saa_tensor *saa_weights_at(const saa_weights *w, int i);
const saa_tensor *saa_weights_find(const saa_weights *w, const char *name);
/* The same tensor as float32 (converted once and cached; the stored tensor itself if already f32). */
const saa_tensor *saa_weights_find_f32(saa_weights *w, const char *name);

/* Internal constructors used by the format readers. */
saa_weights *saa_weights_alloc(const char *path);
/* Adds a tensor (takes ownership of t). Returns SAA_OK or an error (duplicate name, ENOMEM). */
int saa_weights_add(saa_weights *w, const char *name, saa_tensor *t);
/* Keeps a mapping alive for the lifetime of w (munmap'd on close). */
void saa_weights_keep_mapping(saa_weights *w, void *addr, size_t len);
int saa_safetensors_read(saa_weights *w, const unsigned char *buf, size_t len);
int saa_pth_read(saa_weights *w, const unsigned char *buf, size_t len, const char *nested_key);

/* Writes tensors as a safetensors file (dtypes as stored). Returns SAA_OK or an error naming the file. */
int saa_safetensors_write(const char *path, int count, const char *const *names, const saa_tensor *const *tensors);

/* ---------- binding ----------
 * A model declares each tensor it needs with its expected shape (entries < 0 mean "any"); every
 * missing or mis-shaped tensor is collected and saa_binder_finish reports them all in one error.
 *
 *   saa_binder *b = saa_binder_new(w, "image_encoder.");
 *   const float *pw = saa_bind(b, 4, (int64_t[]){C, 3, 16, 16}, "patch_embed.proj.weight");
 *   ...
 *   if (saa_binder_finish(b) != SAA_OK) return error;   // pointers are only valid if it succeeds
 */
typedef struct saa_binder saa_binder;
saa_binder *saa_binder_new(saa_weights *w, const char *prefix);
/* Changes the prefix of the names bound next (a model with several parts reports all its problems
 * in one message). */
int saa_binder_set_prefix(saa_binder *b, const char *prefix);
/* Returns float32 data (or NULL when missing/mis-shaped: recorded for finish). */
const float *saa_bind(saa_binder *b, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Same, returning the float32 tensor (so callers can read shapes given as "any"). */
const saa_tensor *saa_bind_tensor(saa_binder *b, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Optional tensor: NULL when absent, without recording an error (shape still checked if present). */
const saa_tensor *saa_bind_optional(saa_binder *b, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Frees b; returns SAA_OK, or SAA_ESHAPE with one message listing every problem. */
int saa_binder_finish(saa_binder *b);

#ifdef __cplusplus
}
#endif
#endif
