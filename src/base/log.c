/*
 * log.c - structured logging to stderr; see log.h.
 */
#include "base/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "inferd.h"

static _Atomic int g_level = LOG_INFO;
static _Atomic int g_json = 1;
static const char *level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level) { g_level = level; }
void log_set_json(int on) { g_json = on; }

int log_parse_level(const char *s, enum log_level *out) {
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return INFERD_EINVAL;
}

static void emit(enum log_level level, const char *msg, size_t msg_len, const char *fields) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[80];
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
    buf b = BUF_INIT;
    if (g_json) {
        buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", ts, level_names[level]);
        buf_json_str(&b, msg, msg_len);
        if (fields && *fields) buf_printf(&b, ",%s", fields);
        buf_puts(&b, "}\n");
    } else {
        buf_printf(&b, "%s %-5s ", ts, level_names[level]);
        buf_append(&b, msg, msg_len);
        if (fields && *fields) buf_printf(&b, " {%s}", fields);
        buf_putc(&b, '\n');
    }
    if (!b.oom) {
        ssize_t w = write(STDERR_FILENO, b.data, b.len);
        (void)w;
    }
    buf_free(&b);
}

void log_msg(enum log_level level, const char *fmt, ...) {
    if ((int)level < g_level) return;
    buf m = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&m, fmt, ap);
    va_end(ap);
    if (!m.oom) emit(level, m.data ? m.data : "", m.len, NULL);
    buf_free(&m);
}

void log_fields(enum log_level level, const char *msg, const char *fields_json) {
    if ((int)level < g_level) return;
    emit(level, msg, strlen(msg), fields_json);
}
