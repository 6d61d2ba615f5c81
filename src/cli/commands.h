/* Sub-commands of the saa CLI; each returns the process exit status (0 ok, 1 error, 2 usage). */
#ifndef SAA_CLI_COMMANDS_H
#define SAA_CLI_COMMANDS_H

int cmd_segment(int argc, char **argv);
int cmd_eval(int argc, char **argv);

#endif
