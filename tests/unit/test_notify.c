/* The readiness protocol: datagrams to $NOTIFY_SOCKET (path and abstract names), no-ops without
 * it, the watchdog period read from the environment. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/notify.h"

/* A receiver bound to name ('/path' or '@abstract'); returns the socket. */
static int receiver(const char *name)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(name);
	assert_true(n < sizeof(sa.sun_path));
	memcpy(sa.sun_path, name, n);
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	else
		len++;
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
	struct timeval tv = {2, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Receives one datagram into buf (NUL-terminated); returns its length or -1. */
static ssize_t recv_one(int fd, char *buf, size_t cap)
{
	ssize_t n = recv(fd, buf, cap - 1, 0);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

static void test_path_socket(void **state)
{
	char dir[] = "/tmp/gh-notify.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128];
	snprintf(path, sizeof(path), "%s/notify", dir);
	int fd = receiver(path);
	setenv("NOTIFY_SOCKET", path, 1);
	char buf[1024];
	assert_int_equal(notify_send("READY=1"), 0);
	assert_int_equal(recv_one(fd, buf, sizeof(buf)), 7);
	assert_string_equal(buf, "READY=1");
	assert_int_equal(notify_status(true, "consuming %s, %d rows", "gpu-metrics-raw", 42), 0);
	recv_one(fd, buf, sizeof(buf));
	assert_string_equal(buf, "READY=1\nSTATUS=consuming gpu-metrics-raw, 42 rows");
	assert_int_equal(notify_status(false, "stopping"), 0);
	recv_one(fd, buf, sizeof(buf));
	assert_string_equal(buf, "STATUS=stopping");
	assert_int_equal(notify_send("STOPPING=1"), 0);
	recv_one(fd, buf, sizeof(buf));
	assert_string_equal(buf, "STOPPING=1");
	close(fd);
	unlink(path);
	rmdir(dir);
	/* the receiver is gone: the error is reported, not hidden */
	assert_true(notify_send("READY=1") < 0);
	unsetenv("NOTIFY_SOCKET");
}

static void test_abstract_socket(void **state)
{
	char name[64];
	snprintf(name, sizeof(name), "@gh-notify-test-%d", (int)getpid());
	int fd = receiver(name);
	setenv("NOTIFY_SOCKET", name, 1);
	char buf[256];
	assert_int_equal(notify_send("WATCHDOG=1"), 0);
	assert_int_equal(recv_one(fd, buf, sizeof(buf)), 10);
	assert_string_equal(buf, "WATCHDOG=1");
	/* and the explicit form, as notify_send uses it */
	assert_int_equal(notify_send_to(name, "STATUS=x"), 0);
	recv_one(fd, buf, sizeof(buf));
	assert_string_equal(buf, "STATUS=x");
	close(fd);
	unsetenv("NOTIFY_SOCKET");
}

static void test_no_socket_is_a_noop(void **state)
{
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(notify_send("READY=1"), 0);
	assert_int_equal(notify_status(true, "x"), 0);
	assert_int_equal(notify_send_to("", "READY=1"), 0);
	/* an address family other than AF_UNIX is refused, not sent somewhere else */
	assert_int_equal(notify_send_to("vsock:2:1234", "READY=1"), -EAFNOSUPPORT);
	char longname[200];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[0] = '/';
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(notify_send_to(longname, "READY=1"), -ENAMETOOLONG);
}

static void test_watchdog_env(void **state)
{
	unsetenv("WATCHDOG_PID");
	unsetenv("WATCHDOG_USEC");
	assert_int_equal(notify_watchdog_usec(), 0);
	setenv("WATCHDOG_USEC", "30000000", 1);
	assert_int_equal(notify_watchdog_usec(), 30000000);
	char pid[32];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(notify_watchdog_usec(), 30000000);
	setenv("WATCHDOG_PID", "1", 1); /* meant for another process */
	assert_int_equal(notify_watchdog_usec(), 0);
	setenv("WATCHDOG_PID", pid, 1);
	setenv("WATCHDOG_USEC", "soon", 1);
	assert_int_equal(notify_watchdog_usec(), 0);

	/* the tick pings at half the period */
	char name[64];
	snprintf(name, sizeof(name), "@gh-notify-wd-%d", (int)getpid());
	int fd = receiver(name);
	setenv("NOTIFY_SOCKET", name, 1);
	setenv("WATCHDOG_USEC", "2000000", 1);
	notify_watchdog_tick(100.0); /* first call: ping */
	notify_watchdog_tick(100.5); /* 0.5 s < 1 s: none */
	notify_watchdog_tick(101.0); /* 1 s: ping */
	char buf[64];
	assert_int_equal(recv_one(fd, buf, sizeof(buf)), 10);
	assert_int_equal(recv_one(fd, buf, sizeof(buf)), 10);
	struct timeval tv = {0, 100000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(recv_one(fd, buf, sizeof(buf)), -1);
	close(fd);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_path_socket),
	    cmocka_unit_test(test_abstract_socket),
	    cmocka_unit_test(test_no_socket_is_a_noop),
	    cmocka_unit_test(test_watchdog_env),
	};
	return cmocka_run_group_tests_name("sd_notify protocol", tests, NULL, NULL);
}
