/* check-golden kind "tokenizer": not implemented yet. */
#include "golden.h"

int golden_kind_tokenizer(golden *g)
{
    return saa_set_error(SAA_EUNSUPPORTED, "%s: golden kind \"tokenizer\" is not implemented yet", g->dir);
}
