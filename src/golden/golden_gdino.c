/* check-golden kind "gdino": not implemented yet. */
#include "golden.h"

int golden_kind_gdino(golden *g)
{
    return saa_set_error(SAA_EUNSUPPORTED, "%s: golden kind \"gdino\" is not implemented yet", g->dir);
}
