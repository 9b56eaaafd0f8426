#include "core/metrics_http.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/httpd_limits.h"
#include "core/listen.h"

/* --metrics-listen: the same request deadline as mock-dcgm's (MHD's own timeout is an idle one
 * that a client trickling its request defeats); a few connections, a few per client */
#define METRICS_CONNS        64
#define METRICS_CONNS_PER_IP 16
#define METRICS_IDLE_S       30
#define METRICS_REQUEST_S    10

struct metrics_http {
	struct MHD_Daemon *d;
	struct httpd_limits *limits; /* owned; outlives d */
	metrics_http_render_fn render;
	void *ud;
	char name[32];
	char address[300];
};

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
	(void)version;
	(void)upload;
	(void)upload_size;
	(void)con_cls;
	struct metrics_http *h = cls;
	struct MHD_Response *r;
	unsigned code = MHD_HTTP_OK;
	httpd_limits_answering(conn); /* answered now, before any body */
	struct strbuf sb;
	strbuf_init(&sb, (size_t)64 << 20);
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		code = MHD_HTTP_METHOD_NOT_ALLOWED;
		strbuf_puts(&sb, "only GET and HEAD\n");
	} else if (strcmp(url, "/metrics") == 0) {
		if (h->render(h->ud, &sb) != 0) {
			code = MHD_HTTP_INTERNAL_SERVER_ERROR;
			strbuf_reset(&sb);
			strbuf_puts(&sb, "cannot render the metrics\n");
		}
	} else if (strcmp(url, "/healthz") == 0) {
		strbuf_puts(&sb, "ok\n");
	} else {
		code = MHD_HTTP_NOT_FOUND;
		strbuf_puts(&sb, "not found: only /metrics and /healthz here\n");
	}
	r = MHD_create_response_from_buffer(sb.len, sb.data ? sb.data : (char *)"",
	                                    MHD_RESPMEM_MUST_COPY);
	strbuf_free(&sb);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, "Allow", "GET, HEAD");
	enum MHD_Result ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

static int metrics_start(struct metrics_http *h, const char *listen_at, char *err, size_t errlen)
{
	int fd = -1;
	int rc = listen_open(listen_at, "--metrics-listen", "9401", 64, &fd, h->address,
	                     sizeof(h->address), err, errlen);
	if (rc)
		return rc;
	struct httpd_limits_params lp = {.name = h->name,
	                                 .request_s = METRICS_REQUEST_S,
	                                 .keepalive_s = METRICS_IDLE_S,
	                                 .idle_s = METRICS_IDLE_S,
	                                 .total = METRICS_CONNS,
	                                 .per_ip = METRICS_CONNS_PER_IP};
	rc = httpd_limits_create(&h->limits, &lp);
	if (rc) {
		snprintf(err, errlen, "--metrics-listen: cannot start the HTTP server on %s: %s",
		         h->address, strerror(-rc));
		goto out;
	}
	struct MHD_OptionItem lim[HTTPD_LIMITS_NOPTS];
	httpd_limits_options(h->limits, lim);
	h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, answer, h,
	                        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_ARRAY, lim,
	                        MHD_OPTION_END);
	if (!h->d) {
		httpd_limits_destroy(h->limits);
		h->limits = NULL;
		rc = -EIO;
		snprintf(err, errlen, "--metrics-listen: cannot start the HTTP server on %s",
		         h->address);
		goto out;
	}
	fd = -1; /* owned by the daemon: MHD_stop_daemon closes it */
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

int metrics_http_start(struct metrics_http **out, const char *listen_at, const char *name,
                       metrics_http_render_fn render, void *ud, char *err, size_t errlen)
{
	struct metrics_http *h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "--metrics-listen: out of memory");
		return -ENOMEM;
	}
	h->render = render;
	h->ud = ud;
	snprintf(h->name, sizeof(h->name), "%s", name);
	int rc = metrics_start(h, listen_at, err, errlen);
	if (rc) {
		free(h);
		return rc;
	}
	*out = h; /* the caller owns it */
	return 0;
}

const char *metrics_http_address(const struct metrics_http *h)
{
	return h->address;
}

void metrics_http_stop(struct metrics_http *h)
{
	if (!h)
		return;
	if (h->d)
		MHD_stop_daemon(h->d);
	httpd_limits_destroy(h->limits); /* after the daemon: it reports each close to it */
	free(h);
}
