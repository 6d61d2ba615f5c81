/* PyTorch checkpoint reader (torch.save zip format). Placeholder until the whitelisted pickle
 * reader lands. */
#include "saa/weights.h"

int saa_pth_read(saa_weights *w, const unsigned char *buf, size_t len, const char *nested_key)
{
    (void)buf;
    (void)len;
    (void)nested_key;
    return saa_set_error(SAA_EUNSUPPORTED, "%s: .pth reading is not implemented yet", saa_weights_path(w));
}
