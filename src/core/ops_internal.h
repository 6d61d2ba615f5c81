/* Internal knobs of the core ops, shared with their unit tests only. */
#ifndef SAA_OPS_INTERNAL_H
#define SAA_OPS_INTERNAL_H

#include <stddef.h>

/* saa_conv2d tiles over output rows when the im2col buffer of one group would exceed this many
 * bytes (default 16 MB); tests lower it to exercise the tiling on small images. 0 selects the
 * unbuffered direct loops (the low-memory fallback) for every conv that is not a 1x1 GEMM. */
extern size_t saa_conv_im2col_limit_bytes;

#endif
