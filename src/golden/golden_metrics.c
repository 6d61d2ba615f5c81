/* check-golden kind "metrics": not implemented yet. */
#include "golden.h"

int golden_kind_metrics(golden *g)
{
    return saa_set_error(SAA_EUNSUPPORTED, "%s: golden kind \"metrics\" is not implemented yet", g->dir);
}
