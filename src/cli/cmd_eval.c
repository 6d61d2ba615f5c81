/* saa eval: not implemented yet. */
#include <stdio.h>

#include "cli/commands.h"

int cmd_eval(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "saa eval: not implemented yet\n");
    return 1;
}
