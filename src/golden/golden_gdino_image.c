/* check-golden, kind "gdino": the image stage (not implemented yet). */
#include "golden.h"

int golden_gdino_image_stage(golden *g)
{
    (void)g;
    return SAA_OK;
}
