/*
 * error.h - status codes and detail messages.
 *
 * Codes come from INFERD_ERRNO_MAP in include/inferd.h. A function that can
 * fail takes (char *err, size_t err_size), owned by the caller, and writes a
 * message naming the thing and the value (STYLE rule 15) with err_set().
 */
#ifndef BASE_ERROR_H
#define BASE_ERROR_H

#include <stddef.h>

#include "inferd.h"

/* Formats a message into err (if err is non-NULL and err_size > 0) and
 * returns code, so a failing path reads: return err_set(err, n, INFERD_EINVAL, ...). */
int err_set(char *err, size_t err_size, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
