/*
 * inferd.h - the public C API of inferd.
 *
 * Status codes: every function that can fail returns an int, 0 on success or
 * a negative INFERD_E* code from the table below; inferd_strerror() gives the
 * code's message. Functions that can say more write a detail message into a
 * caller-owned buffer (char *err, size_t err_size).
 *
 * The engine API (inferd_engine_*) is added by the engine layer; see
 * docs/api-c.md.
 */
#ifndef INFERD_H
#define INFERD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, message): the one table of status codes. */
#define INFERD_ERRNO_MAP(X)                                                    \
    X(OK, 0, "success")                                                        \
    X(NOMEM, -1, "out of memory")                                              \
    X(INVAL, -2, "invalid argument")                                           \
    X(IO, -3, "input/output error")                                            \
    X(FORMAT, -4, "malformed file or data")                                    \
    X(UNSUPPORTED, -5, "unsupported feature or type")                          \
    X(RANGE, -6, "value out of range")                                         \
    X(NOTFOUND, -7, "not found")                                               \
    X(FULL, -8, "capacity exhausted")                                          \
    X(TOOLONG, -9, "input too long")                                           \
    X(AGAIN, -10, "try again later")                                           \
    X(CANCELED, -11, "operation canceled")                                     \
    X(INTERNAL, -12, "internal error")

enum inferd_status {
#define INFERD_X_ENUM(name, value, msg) INFERD_E##name = (value),
    INFERD_ERRNO_MAP(INFERD_X_ENUM)
#undef INFERD_X_ENUM
};

/* Returns the static message of a status code ("unknown error" for others). */
const char *inferd_strerror(int status);

#define INFERD_VERSION "0.1.0"

/* Returns INFERD_VERSION. */
const char *inferd_version(void);

#ifdef __cplusplus
}
#endif
#endif /* INFERD_H */
