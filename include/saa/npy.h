/* NumPy .npy files (used for anomaly maps): float32, float64 and uint8 arrays, C order, little endian. */
#ifndef SAA_NPY_H
#define SAA_NPY_H

#include <stdint.h>

#include "saa/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Writes data[prod(shape)] as a format-1.0 .npy, byte-identical to numpy.save of the same array
 * ('<f4' / '<f8' / '|u1', fortran_order False, header padded to 64 bytes). ndim 0..SAA_MAX_DIMS. */
int saa_npy_save_f32(const char *path, const float *data, int ndim, const int64_t *shape);
int saa_npy_save_f64(const char *path, const double *data, int ndim, const int64_t *shape);
int saa_npy_save_u8(const char *path, const uint8_t *data, int ndim, const int64_t *shape);

/* Reads a .npy (format 1.x, 2.x or 3.x) holding '<f4', '<f8', '|u1' or '|b1' in C order into a new owned
 * tensor (SAA_F32, SAA_F64, SAA_U8 or SAA_BOOL). Anything else (other dtypes, Fortran order, big endian, truncated
 * data) is an error naming the file. */
int saa_npy_load(const char *path, saa_tensor **out);

#ifdef __cplusplus
}
#endif
#endif
