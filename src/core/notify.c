#include "core/notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int notify_send_to(const char *socket_name, const char *state)
{
	if (!socket_name || !*socket_name)
		return 0;
	if (!state)
		return -EINVAL;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(socket_name);
	if (n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	if (socket_name[0] != '/' && socket_name[0] != '@')
		return -EAFNOSUPPORT; /* e.g. a vsock address: not supported here */
	memcpy(sa.sun_path, socket_name, n);
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	if (socket_name[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace: no terminating NUL counted */
	else
		len++;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int rc = 0;
	ssize_t w = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
	if (w < 0)
		rc = -errno;
	else if ((size_t)w != strlen(state))
		rc = -EMSGSIZE;
	close(fd);
	return rc;
}

int notify_send(const char *state)
{
	return notify_send_to(getenv("NOTIFY_SOCKET"), state);
}

int notify_status(bool ready, const char *fmt, ...)
{
	if (!getenv("NOTIFY_SOCKET"))
		return 0;
	char buf[512];
	int off = snprintf(buf, sizeof(buf), "%sSTATUS=", ready ? "READY=1\n" : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + off, sizeof(buf) - (size_t)off, fmt, ap);
	va_end(ap);
	return notify_send(buf);
}

uint64_t notify_watchdog_usec(void)
{
	const char *us = getenv("WATCHDOG_USEC");
	if (!us || !*us)
		return 0;
	const char *pid = getenv("WATCHDOG_PID");
	if (pid && *pid) {
		char *end = NULL;
		long p = strtol(pid, &end, 10);
		if (*end || p != (long)getpid())
			return 0;
	}
	char *end = NULL;
	unsigned long long v = strtoull(us, &end, 10);
	if (*end || v == 0)
		return 0;
	return (uint64_t)v;
}

void notify_watchdog_tick(double now_s)
{
	static double last = -1e300;
	static int64_t period_us = -1; /* -1: not read yet */
	if (period_us < 0)
		period_us = (int64_t)notify_watchdog_usec();
	if (period_us == 0)
		return;
	if (now_s - last >= (double)period_us / 2e6) {
		last = now_s;
		notify_send("WATCHDOG=1");
	}
}
