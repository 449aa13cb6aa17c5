/*
 * error.c - the status-code table's messages and err_set().
 */
#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>

const char *inferd_strerror(int status) {
    switch (status) {
#define X(name, value, msg)                                                    \
    case (value):                                                              \
        return msg;
        INFERD_ERRNO_MAP(X)
#undef X
    default:
        return "unknown error";
    }
}

const char *inferd_version(void) { return INFERD_VERSION; }

int err_set(char *err, size_t err_size, int code, const char *fmt, ...) {
    if (err && err_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return code;
}
