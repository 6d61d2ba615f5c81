/* The two OpenCV resizes of the SAA+ evaluation protocol (eval_utils.specify_resolution):
 * cv2.INTER_CUBIC on float64 maps and cv2.INTER_NEAREST on uint8 masks, through the bit-exact OpenCV
 * kernels of image.h (the metrics golden checks both on every case). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "saa/image.h"
#include "saa/metrics.h"
#include "saa/tensor.h"

void saa_eval_resize_cubic_f64(const double *src, int w, int h, double *dst, int ow, int oh)
{
    if (saa_resize_cv_f64(src, w, h, 1, dst, ow, oh, SAA_CV_INTER_CUBIC) != SAA_OK)
        for (size_t i = 0; i < (size_t)ow * oh; i++) dst[i] = NAN; /* no error channel: visible downstream */
}

void saa_eval_resize_nearest_u8(const uint8_t *src, int w, int h, uint8_t *dst, int ow, int oh)
{
    if (saa_resize_cv_u8(src, w, h, 1, dst, ow, oh, SAA_CV_INTER_NEAREST) != SAA_OK)
        memset(dst, 0, (size_t)ow * oh);
}
