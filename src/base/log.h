/*
 * log.h - structured logs: one JSON object per line on stderr
 * ({"ts":..., "level":..., "msg":..., extra fields}), or plain text when
 * log_set_json(0). Thread-safe; a line is written with one write(2).
 */
#ifndef BASE_LOG_H
#define BASE_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

void log_set_level(enum log_level level);
void log_set_json(int on);
/* Parses "debug|info|warn|error"; returns 0 or INFERD_EINVAL. */
int log_parse_level(const char *s, enum log_level *out);
/* Logs msg (printf format). */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Logs msg with extra JSON fields: fields_json is the inside of an object
 * ("\"k\":1,\"s\":\"v\""), already escaped, or NULL. */
void log_fields(enum log_level level, const char *msg, const char *fields_json);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
