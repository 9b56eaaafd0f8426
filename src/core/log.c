#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>

static atomic_int g_level = LOG_INFO;
static atomic_int g_timestamps = 0;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_level_parse(const char *text, enum log_level *out)
{
	for (int i = LOG_ERROR; i <= LOG_DEBUG; i++) {
		if (strcasecmp(text, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(text, "warning") == 0) {
		*out = LOG_WARN;
		return 0;
	}
	return -EINVAL;
}

void log_set_level(enum log_level level) { atomic_store(&g_level, (int)level); }
enum log_level log_get_level(void) { return (enum log_level)atomic_load(&g_level); }
void log_set_timestamps(int on) { atomic_store(&g_timestamps, on ? 1 : 0); }

void log_msg(enum log_level level, const char *fmt, ...)
{
	if ((int)level > atomic_load(&g_level))
		return;
	char line[2048];
	size_t off = 0;
	if (atomic_load(&g_timestamps)) {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		off = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		int n = snprintf(line + off, sizeof(line) - off, ".%03ldZ %-5s ", ts.tv_nsec / 1000000L,
				 level_names[level]);
		if (n > 0)
			off += (size_t)n;
	} else {
		int n = snprintf(line, sizeof(line), "gpuhealth: %s%s", level == LOG_ERROR ? "error: " : "",
				 level == LOG_WARN ? "warning: " : "");
		if (n > 0)
			off = (size_t)n;
	}
	va_list ap;
	va_start(ap, fmt);
	if (off < sizeof(line))
		vsnprintf(line + off, sizeof(line) - off, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&g_lock);
	fputs(line, stderr);
	fputc('\n', stderr);
	fflush(stderr);
	pthread_mutex_unlock(&g_lock);
}
