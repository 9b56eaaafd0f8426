/* log: levelled messages to stderr, safe to call from any thread. */
#ifndef GPUHEALTH_LOG_H
#define GPUHEALTH_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Parses "error", "warn", "info" or "debug" (case-insensitive). Returns 0 or -EINVAL. */
int log_level_parse(const char *text, enum log_level *out);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Prefix every line with an ISO-8601 UTC time (daemons) or not (command-line tools). */
void log_set_timestamps(int on);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
