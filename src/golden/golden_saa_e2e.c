/* check-golden kind "saa_e2e": not implemented yet. */
#include "golden.h"

int golden_kind_saa_e2e(golden *g)
{
    return saa_set_error(SAA_EUNSUPPORTED, "%s: golden kind \"saa_e2e\" is not implemented yet", g->dir);
}
