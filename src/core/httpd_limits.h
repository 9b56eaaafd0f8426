/* httpd_limits: a deadline for each request's head and body, and per-client connection
 * limits, for the libmicrohttpd servers (mock-dcgm's /metrics, the collector's
 * --metrics-listen).
 *
 * libmicrohttpd's MHD_OPTION_CONNECTION_TIMEOUT is an idle timeout: a client that trickles a
 * request head one byte at a time holds its connection (a slot of the connection limit)
 * forever. Here every connection carries an absolute deadline while a request is on its way
 * in: request_s after the connection opened, or keepalive_s + request_s after the previous
 * answer on a kept-alive connection. A sweep thread shuts down the socket of a connection
 * past its deadline (libmicrohttpd then sees the end of the stream and closes it). The
 * deadline stops when the access handler calls httpd_limits_answering(): sending the answer
 * is bounded by the idle timeout only.
 *
 * Use:
 *   struct httpd_limits *l;  httpd_limits_create(&l, &params);
 *   struct MHD_OptionItem opts[HTTPD_LIMITS_NOPTS];  httpd_limits_options(l, opts);
 *   d = MHD_start_daemon(..., MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
 *   in the access handler, once the request is whole: httpd_limits_answering(connection);
 *   MHD_stop_daemon(d); httpd_limits_destroy(l);
 * The daemon must not use MHD_OPTION_NOTIFY_CONNECTION or MHD_OPTION_NOTIFY_COMPLETED
 * itself. */
#ifndef GPUHEALTH_HTTPD_LIMITS_H
#define GPUHEALTH_HTTPD_LIMITS_H

#include <stdarg.h>

#include <microhttpd.h>

struct httpd_limits;

struct httpd_limits_params {
	const char *name;   /* for log lines, e.g. "mock-dcgm" */
	double request_s;   /* a request's head and body must be in within this; > 0 */
	double keepalive_s; /* extra wait allowed for the next request on a kept-alive
	                     * connection, before its own request_s */
	unsigned idle_s;    /* libmicrohttpd's idle timeout (also bounds sending) */
	unsigned total;     /* connections at once */
	unsigned per_ip;    /* connections at once from one client address */
};

#define HTTPD_LIMITS_NOPTS 7

/* Starts the sweep thread. Returns 0 or -errno; *out owned by the caller (httpd_limits_destroy). */
int httpd_limits_create(struct httpd_limits **out, const struct httpd_limits_params *p);

/* libmicrohttpd's error lines at debug level, "NAME: http: ...": the daemon's
 * MHD_OPTION_EXTERNAL_LOGGER, httpd_limits_log, l (with MHD_USE_ERROR_LOG). */
__attribute__((format(printf, 2, 0))) void httpd_limits_log(void *l, const char *fmt, va_list ap);

/* Fills opts[HTTPD_LIMITS_NOPTS] (ends with MHD_OPTION_END) for MHD_OPTION_ARRAY. */
void httpd_limits_options(struct httpd_limits *l, struct MHD_OptionItem *opts);

/* From the access handler: the request is whole; its deadline no longer applies. */
void httpd_limits_answering(struct MHD_Connection *c);

/* Connections closed for a missed deadline so far. */
unsigned long long httpd_limits_closed(struct httpd_limits *l);

/* After MHD_stop_daemon. Takes NULL. */
void httpd_limits_destroy(struct httpd_limits *l);

#endif
