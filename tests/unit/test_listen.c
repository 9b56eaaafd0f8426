/* listen: the listening socket the API, the exporter and /metrics share: the accepted forms,
 * the address it reports, a port in use, and messages that name the option and the fix. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/listen.h"

/* socket() as a kernel without IPv6 (booted with ipv6.disable=1) answers while no_ipv6 is set:
 * the test links with -Wl,--wrap=socket (tests/CMakeLists.txt), so listen.c calls this. */
int __real_socket(int domain, int type, int protocol);
int __wrap_socket(int domain, int type, int protocol);
static int no_ipv6;
int __wrap_socket(int domain, int type, int protocol)
{
	if (no_ipv6 && domain == AF_INET6) {
		errno = EAFNOSUPPORT;
		return -1;
	}
	return __real_socket(domain, type, protocol);
}

/* Connects to address ("h:p" or "[h]:p") on loopback of its family: the socket accepts. */
static void connects(const char *address)
{
	int port = atoi(strrchr(address, ':') + 1);
	assert_true(port > 0);
	int fd;
	if (address[0] == '[') {
		struct sockaddr_in6 a = {.sin6_family = AF_INET6,
		                         .sin6_port = htons((uint16_t)port)};
		a.sin6_addr = in6addr_loopback;
		fd = socket(AF_INET6, SOCK_STREAM, 0);
		assert_true(fd >= 0);
		assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	} else {
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		assert_true(fd >= 0);
		assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	}
	close(fd);
}

static void loopback_and_port_zero(void **state)
{
	(void)state;
	char addr[80], err[256];
	int fd = -1;
	assert_int_equal(listen_open("127.0.0.1:0", "--listen", "8080", 16, &fd, addr, sizeof(addr),
	                             err, sizeof(err)),
	                 0);
	assert_true(fd >= 0);
	assert_int_equal(strncmp(addr, "127.0.0.1:", 10), 0);
	assert_true(atoi(addr + 10) > 0); /* the port the kernel picked, not 0 */
	connects(addr);

	/* the same port again: in use, said with the option to change */
	char again[80];
	snprintf(again, sizeof(again), "%s", addr);
	int fd2 = -1;
	assert_int_equal(listen_open(again, "--metrics-listen", "9401", 16, &fd2, addr,
	                             sizeof(addr), err, sizeof(err)),
	                 -EADDRINUSE);
	assert_int_equal(fd2, -1);
	assert_non_null(strstr(err, "already in use"));
	assert_non_null(strstr(err, "--metrics-listen HOST:PORT"));
	assert_non_null(strstr(err, again));
	close(fd);
}

static void every_address(void **state)
{
	(void)state;
	char addr[80], err[256];
	int fd = -1;
	/* ":0": every address, IPv4 too (a dual-stack socket, or IPv4 alone without IPv6) */
	assert_int_equal(
	    listen_open(":0", "--listen", "9400", 16, &fd, addr, sizeof(addr), err, sizeof(err)),
	    0);
	int port = atoi(strrchr(addr, ':') + 1);
	char v4[40];
	snprintf(v4, sizeof(v4), "127.0.0.1:%d", port);
	connects(v4);
	close(fd);
}

/* ":0" on a kernel without IPv6: the wildcard "::" still resolves, the socket does not; every
 * IPv4 address instead, not an error */
static void every_address_without_ipv6(void **state)
{
	(void)state;
	char addr[80], err[256] = "";
	int fd = -1;
	no_ipv6 = 1;
	int rc =
	    listen_open(":0", "--listen", "9400", 16, &fd, addr, sizeof(addr), err, sizeof(err));
	no_ipv6 = 0;
	assert_string_equal(err, "");
	assert_int_equal(rc, 0);
	assert_int_equal(strncmp(addr, "0.0.0.0:", 8), 0);
	int port = atoi(strrchr(addr, ':') + 1);
	char v4[40];
	snprintf(v4, sizeof(v4), "127.0.0.1:%d", port);
	connects(v4);
	close(fd);
	/* an IPv6 literal there is an error that names the text */
	no_ipv6 = 1;
	rc = listen_open("[::1]:0", "--listen", "9400", 16, &fd, addr, sizeof(addr), err,
	                 sizeof(err));
	no_ipv6 = 0;
	assert_int_equal(rc, -EAFNOSUPPORT);
	assert_non_null(strstr(err, "--listen '[::1]:0': socket:"));
}

static void ipv6_literal(void **state)
{
	(void)state;
	char addr[80], err[256];
	int fd = -1;
	int rc = listen_open("[::1]:0", "--listen", "8080", 16, &fd, addr, sizeof(addr), err,
	                     sizeof(err));
	if (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT || rc == -EINVAL) {
		/* a host without IPv6 loopback: the message still names the text */
		assert_non_null(strstr(err, "[::1]:0"));
		return;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(strncmp(addr, "[::1]:", 6), 0);
	connects(addr);
	close(fd);
}

static void refused_forms(void **state)
{
	(void)state;
	static const char *const bad[] = {"nonsense", "8080",    "127.0.0.1:",    ":port",
	                                  ":65536",   ":123456", "[::1]",         "[::1]8080",
	                                  "::1:",     ":-1",     "127.0.0.1:80x", ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char addr[80] = "", err[256] = "";
		int fd = -1;
		assert_int_equal(listen_open(bad[i], "--listen", "9400", 16, &fd, addr,
		                             sizeof(addr), err, sizeof(err)),
		                 -EINVAL);
		assert_int_equal(fd, -1);
		char want[128];
		snprintf(want, sizeof(want), "--listen '%s' is not HOST:PORT (e.g. :9400,", bad[i]);
		assert_non_null(strstr(err, want));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(loopback_and_port_zero),
	    cmocka_unit_test(every_address),
	    cmocka_unit_test(every_address_without_ipv6),
	    cmocka_unit_test(ipv6_literal),
	    cmocka_unit_test(refused_forms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
