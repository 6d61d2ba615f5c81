/* check-golden kind "checkpoint": not implemented yet. */
#include "golden.h"

int golden_kind_checkpoint(golden *g)
{
    return saa_set_error(SAA_EUNSUPPORTED, "%s: golden kind \"checkpoint\" is not implemented yet", g->dir);
}
