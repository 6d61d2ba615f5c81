/* check-golden kind "sam": not implemented yet. */
#include "golden.h"

int golden_kind_sam(golden *g)
{
    return saa_set_error(SAA_EUNSUPPORTED, "%s: golden kind \"sam\" is not implemented yet", g->dir);
}
