/* metrics_http: a --metrics-listen HOST:PORT server of Prometheus text on /metrics (and "ok" on
 * /healthz), on libmicrohttpd with the request deadlines and connection limits of
 * core/httpd_limits.h. The text comes from a callback, called from the server's thread. */
#ifndef GPUHEALTH_CORE_METRICS_HTTP_H
#define GPUHEALTH_CORE_METRICS_HTTP_H

#include <stddef.h>

#include "core/strbuf.h"

/* Appends the exposition to out; 0 or -errno (answered 500). */
typedef int (*metrics_http_render_fn)(void *ud, struct strbuf *out);

struct metrics_http;

/* Listens on listen_at (HOST:PORT, [V6]:PORT, :PORT). name is for messages ("scorer").
 * Returns 0, -EINVAL (not HOST:PORT, unresolvable) or -errno with a message in err naming
 * --metrics-listen; *out owned by the caller (metrics_http_stop). */
int metrics_http_start(struct metrics_http **out, const char *listen_at, const char *name,
                       metrics_http_render_fn render, void *ud, char *err, size_t errlen);
/* The address bound, e.g. "127.0.0.1:9401". */
const char *metrics_http_address(const struct metrics_http *h);
/* Stops the server and frees it. Takes NULL. */
void metrics_http_stop(struct metrics_http *h);

#endif
