#include "core/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Splits "HOST:PORT", ":PORT" or "[V6]:PORT" (a port of at most five digits, <= 65535). */
static int split(const char *text, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *colon;
	if (text[0] == '[') {
		const char *rb = strchr(text, ']');
		if (!rb || rb[1] != ':' || (size_t)(rb - text - 1) >= hostlen)
			return -EINVAL;
		snprintf(host, hostlen, "%.*s", (int)(rb - text - 1), text + 1);
		colon = rb + 1;
	} else {
		colon = strrchr(text, ':');
		if (!colon || (size_t)(colon - text) >= hostlen)
			return -EINVAL;
		snprintf(host, hostlen, "%.*s", (int)(colon - text), text);
	}
	const char *p = colon + 1;
	size_t n = strlen(p);
	if (n == 0 || n >= portlen || n > 5 || strspn(p, "0123456789") != n || atol(p) > 65535)
		return -EINVAL;
	snprintf(port, portlen, "%s", p);
	return 0;
}

/* The address fd is bound to, as "a.b.c.d:port" or "[v6]:port". */
static void bound_address(int fd, char *address, size_t addrlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char h[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &a->sin_addr, h, sizeof(h));
			port = ntohs(a->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &a->sin6_addr, h, sizeof(h));
			port = ntohs(a->sin6_port);
		}
	}
	snprintf(address, addrlen, ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", h, port);
}

int listen_open(const char *text, const char *option, const char *example_port, int backlog,
                int *fd_out, char *address, size_t addrlen, char *err, size_t errlen)
{
	char host[256], port[8];
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	int fd = -1, rc;
	if (split(text, host, sizeof(host), port, sizeof(port)) != 0) {
		snprintf(err, errlen, "%s '%s' is not HOST:PORT (e.g. :%s, 127.0.0.1:%s, [::1]:%s)",
		         option, text, example_port, example_port, example_port);
		return -EINVAL;
	}
	bool any = host[0] == '\0';
	/* The wildcard is "::" (a dual-stack socket: IPv4 too), or every IPv4 address where the
	 * system has no IPv6: "::" does not resolve, or resolves on a kernel without IPv6
	 * (ipv6.disable=1) that opens no socket of its family. */
	int gai, serr = 0;
	for (int family = any ? AF_INET6 : AF_UNSPEC;; family = AF_INET) {
		hints.ai_family = family;
		gai = getaddrinfo(any ? NULL : host, port, &hints, &ai);
		if (gai == 0) {
			fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
			serr = fd < 0 ? errno : 0;
		}
		if (!any || family == AF_INET || (gai == 0 && serr != EAFNOSUPPORT))
			break;
		if (gai == 0) {
			freeaddrinfo(ai);
			ai = NULL;
		}
	}
	if (gai != 0) {
		snprintf(err, errlen, "%s '%s': cannot resolve '%s': %s", option, text, host,
		         gai_strerror(gai));
		return -EINVAL;
	}
	if (fd < 0) {
		rc = -serr;
		snprintf(err, errlen, "%s '%s': socket: %s", option, text, strerror(serr));
		goto out;
	}
	int one = 1, zero = 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ai->ai_family == AF_INET6 && any) /* IPv4 too */
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, backlog) != 0) {
		rc = -errno;
		if (rc == -EADDRINUSE)
			snprintf(err, errlen,
			         "%s: cannot listen on %s: the port is already in use by another "
			         "program (pick another with %s HOST:PORT)",
			         option, text, option);
		else
			snprintf(err, errlen, "%s: cannot listen on %s: %s", option, text,
			         strerror(-rc));
		goto out;
	}
	bound_address(fd, address, addrlen);
	*fd_out = fd; /* the caller's */
	fd = -1;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return rc;
}
