/* listen: the TCP listening socket of an HTTP server (the API, the exporter, /metrics). */
#ifndef GPUHEALTH_LISTEN_H
#define GPUHEALTH_LISTEN_H

#include <stddef.h>

/*
 * Opens a listening socket on text, "HOST:PORT", ":PORT" (every address: IPv6 and IPv4 on one
 * dual-stack socket, IPv4 alone where the host has no IPv6) or "[V6]:PORT"; port 0 lets the
 * kernel pick. option names the setting in messages ("--listen"), example_port is the port
 * its examples show. On success *fd_out is the socket (close-on-exec; the caller owns it) and
 * address the address it is bound to ("127.0.0.1:9400", "[::]:8080"). Returns 0, -EINVAL (text
 * is not an address, or does not resolve) or -errno of socket/bind/listen, with err naming the
 * text and the fix.
 */
int listen_open(const char *text, const char *option, const char *example_port, int backlog,
                int *fd_out, char *address, size_t addrlen, char *err, size_t errlen);

#endif
