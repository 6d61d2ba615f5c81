/* check-golden kind "wrn_saliency": not implemented yet. */
#include "golden.h"

int golden_kind_wrn_saliency(golden *g)
{
    return saa_set_error(SAA_EUNSUPPORTED, "%s: golden kind \"wrn_saliency\" is not implemented yet", g->dir);
}
