/* check-golden, kind "gdino": the text stage (not implemented yet). */
#include "golden.h"

int golden_gdino_text_stage(golden *g)
{
    (void)g;
    return SAA_OK;
}
