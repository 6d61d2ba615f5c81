/* saa segment: not implemented yet. */
#include <stdio.h>

#include "cli/commands.h"

int cmd_segment(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "saa segment: not implemented yet\n");
    return 1;
}
