/* Thread-local last-error message: library functions set it and return a status; the CLI prints it. */
#include <stdarg.h>
#include <stdio.h>

#include "saa/tensor.h"

static _Thread_local char error_message[2048];

int saa_set_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    return code;
}

const char *saa_last_error(void) { return error_message[0] ? error_message : "unknown error"; }

void saa_clear_error(void) { error_message[0] = 0; }
