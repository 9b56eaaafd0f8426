#include "api/api.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api_int.h"
#include "api/api_pool.h"
#include "core/errmsg.h"
#include "core/httpd_limits.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "core/timeutil.h"
#include "core/utf8.h"

/* connection limits and deadlines, enforced by httpd_limits */
#define CONN_LIMIT      256 /* all clients together */
#define PER_CLIENT_DEF  32  /* one client address (--max-client-connections) */
#define CONN_TIMEOUT_S  10  /* a connection silent this long is closed; also the keep-alive wait */
#define HEAD_DEADLINE_S 10  /* a request head may take this long (after the keep-alive wait) */
#define MAX_PATH        512 /* bytes in the (decoded) path */
#define TIME_MAX_S      253402300799.0 /* 9999-12-31T23:59:59Z: the last RFC 3339 second */

enum endpoint {
	EP_GPUS,
	EP_GPU,
	EP_GPU_METRICS,
	EP_GPU_HEALTH,
	EP_FLEET,
	EP_ALERTS,
	EP_WORKLOADS,
	EP_HEALTHZ,
	EP_METRICS,
	EP_OTHER,
	EP_COUNT
};
static const char *const ep_names[EP_COUNT] = {
    "gpus",   "gpu",       "gpu_metrics", "gpu_health", "fleet_summary",
    "alerts", "workloads", "healthz",     "metrics",    "other"};

struct api {
	char *listen;
	unsigned threads, per_client;
	char address[80];
	struct MHD_Daemon *daemon;

	struct api_pool *pool; /* threads connections; owned */

	/* the per-client and total connection limits and the head deadline; owned, created by
	 * api_start, destroyed by api_stop after the daemon */
	struct httpd_limits *limits;

	atomic_uint_least64_t n_requests[EP_COUNT], n_2xx, n_4xx, n_5xx;
	atomic_uint_least64_t duration_us[EP_COUNT];
};

/* ---- small helpers */

int api_parse_time(const char *text, double *epoch)
{
	if (!text || !*text)
		return -EINVAL;
	size_t n = strlen(text);
	if (strspn(text, "0123456789.") == n) {
		char *end = NULL;
		double v = strtod(text, &end);
		if (*end || !isfinite(v) || v > TIME_MAX_S)
			return -EINVAL;
		*epoch = v;
		return 0;
	}
	char buf[64];
	if (n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, text, n + 1);
	/* "+hh:mm" arrives as " hh:mm" when a client sent '+' unescaped in the query */
	if (n > 6 && buf[n - 6] == ' ' && buf[n - 3] == ':')
		buf[n - 6] = '+';
	double v = 0;
	if (time_parse_rfc3339(buf, &v) != 0 || !isfinite(v) || v < 0 || v > TIME_MAX_S)
		return -EINVAL; /* before 1970 or after 9999: no sample is there, and the database's
		                   to_timestamp() would refuse some of these */
	*epoch = v;
	return 0;
}

int api_sqlstate_status(const char *sqlstate)
{
	switch (api_pool_classify(sqlstate)) {
	case API_DB_UNREACHABLE: return 503;
	case API_DB_CLIENT: return 400;
	default: return 500;
	}
}

/* ---- requests */

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
	struct api_req *rq = cls;
	for (int i = 0; i < rq->nargs; i++)
		if (strcmp(rq->keys[i], key) == 0) {
			rq->duplicate = true;
			rq->dup_key = rq->keys[i];
			return MHD_YES;
		}
	if (rq->nargs == API_MAX_ARGS) {
		rq->too_many = true;
		return MHD_NO;
	}
	rq->keys[rq->nargs] = key;
	rq->vals[rq->nargs] = value ? value : "";
	rq->nargs++;
	return MHD_YES;
}

/* Prometheus text of the API's own counters; returns a malloc'd string. */
static char *metrics_text(struct api *api)
{
	struct strbuf sb;
	strbuf_init(&sb, 0);
	strbuf_printf(&sb, "# HELP gpuhealth_api_requests_total HTTP requests by endpoint.\n"
	                   "# TYPE gpuhealth_api_requests_total counter\n");
	for (int e = 0; e < EP_COUNT; e++)
		strbuf_printf(&sb, "gpuhealth_api_requests_total{endpoint=\"%s\"} %llu\n",
		              ep_names[e], (unsigned long long)atomic_load(&api->n_requests[e]));
	strbuf_printf(&sb, "# HELP gpuhealth_api_request_seconds_total Time spent answering, by "
	                   "endpoint.\n# TYPE gpuhealth_api_request_seconds_total counter\n");
	for (int e = 0; e < EP_COUNT; e++)
		strbuf_printf(&sb, "gpuhealth_api_request_seconds_total{endpoint=\"%s\"} %.6f\n",
		              ep_names[e], (double)atomic_load(&api->duration_us[e]) / 1e6);
	strbuf_printf(&sb,
	              "# HELP gpuhealth_api_responses_total HTTP responses by status class.\n"
	              "# TYPE gpuhealth_api_responses_total counter\n"
	              "gpuhealth_api_responses_total{class=\"2xx\"} %llu\n"
	              "gpuhealth_api_responses_total{class=\"4xx\"} %llu\n"
	              "gpuhealth_api_responses_total{class=\"5xx\"} %llu\n",
	              (unsigned long long)atomic_load(&api->n_2xx),
	              (unsigned long long)atomic_load(&api->n_4xx),
	              (unsigned long long)atomic_load(&api->n_5xx));
	struct api_stats st;
	api_stats(api, &st);
	strbuf_printf(&sb,
	              "# HELP gpuhealth_api_db_errors_total Failed database connections and "
	              "queries (not those a request's values caused).\n"
	              "# TYPE gpuhealth_api_db_errors_total counter\n"
	              "gpuhealth_api_db_errors_total %llu\n"
	              "# HELP gpuhealth_api_db_connections Open pooled database connections.\n"
	              "# TYPE gpuhealth_api_db_connections gauge\n"
	              "gpuhealth_api_db_connections %u\n"
	              "# HELP gpuhealth_api_head_timeouts_total Connections closed because no "
	              "whole request head came within %d s.\n"
	              "# TYPE gpuhealth_api_head_timeouts_total counter\n"
	              "gpuhealth_api_head_timeouts_total %llu\n",
	              (unsigned long long)st.db_errors, st.db_connections, HEAD_DEADLINE_S,
	              api->limits ? httpd_limits_closed(api->limits) : 0ULL);
	if (sb.overflow || !sb.data) {
		strbuf_free(&sb);
		return NULL;
	}
	return sb.data; /* caller frees */
}

static enum endpoint route(struct api_req *rq, const char *url, char *key, size_t keylen)
{
	static const char gpus[] = "/api/v1/gpus/";
	bool under_gpus = strncmp(url, gpus, sizeof(gpus) - 1) == 0;
	size_t ulen = strlen(url);
	/* the decoded path: UTF-8 and bounded before anything else looks at it */
	if (!utf8_valid(url) || ulen > MAX_PATH) {
		api_req_set(
		    rq, 400,
		    api_req_error("bad_parameter", under_gpus ? "uuid" : "path",
		                  ulen > MAX_PATH
		                      ? "the path is %zu bytes long: at most %d"
		                      : "the path is not valid UTF-8 (%zu bytes, at most %d): "
		                        "percent-encode UTF-8 text",
		                  ulen, MAX_PATH));
		return under_gpus ? EP_GPU : EP_OTHER;
	}
	static const struct {
		const char *path;
		enum endpoint ep;
	} fixed[] = {{"/api/v1/gpus", EP_GPUS},     {"/api/v1/fleet/summary", EP_FLEET},
	             {"/api/v1/alerts", EP_ALERTS}, {"/api/v1/workloads", EP_WORKLOADS},
	             {"/healthz", EP_HEALTHZ},      {"/metrics", EP_METRICS}};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (strcmp(url, fixed[i].path) == 0)
			return fixed[i].ep;
	if (strncmp(url, gpus, sizeof(gpus) - 1) != 0)
		return EP_OTHER;
	const char *rest = url + sizeof(gpus) - 1;
	size_t n = strlen(rest);
	enum endpoint ep = EP_GPU;
	if (n > 8 && strcmp(rest + n - 8, "/metrics") == 0) {
		ep = EP_GPU_METRICS;
		n -= 8;
	} else if (n > 7 && strcmp(rest + n - 7, "/health") == 0) {
		ep = EP_GPU_HEALTH;
		n -= 7;
	}
	/* the key may hold one '/' (a MIG instance, UUID/GPU_I_ID, escaped or not) */
	snprintf(key, keylen, "%.*s", (int)(n < keylen ? n : keylen - 1), rest);
	if (n >= keylen || !api_req_valid_key(key)) {
		api_req_set(
		    rq, 400,
		    api_req_error("bad_parameter", "uuid",
		                  "'%.64s' is not a GPU key: use the GPU's UUID (GPU-...) or "
		                  "UUID/GPU_I_ID for a MIG instance",
		                  n < keylen ? key : "(too long)"));
	}
	return ep;
}

static void count_status(struct api *api, int status)
{
	if (status < 300)
		atomic_fetch_add(&api->n_2xx, 1);
	else if (status < 500)
		atomic_fetch_add(&api->n_4xx, 1);
	else
		atomic_fetch_add(&api->n_5xx, 1);
}

/* Sends body with status, or a 500 when there is no body to send; counts the status sent. */
static enum MHD_Result send_json(struct api *api, struct MHD_Connection *c, int status,
                                 json_t *body)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (!text) {
		log_error("api: no JSON for a %d answer: out of memory or not UTF-8", status);
		count_status(api, 500);
		static const char oom[] = "{\"error\":\"internal\",\"message\":\"out of memory\"}";
		struct MHD_Response *r = MHD_create_response_from_buffer(
		    sizeof(oom) - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(r, "Content-Type", "application/json");
		enum MHD_Result ret = MHD_queue_response(c, 500, r);
		MHD_destroy_response(r);
		return ret;
	}
	size_t n = strlen(text);
	struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(n, text, free);
	if (!r) {
		free(text);
		count_status(api, 500);
		return MHD_NO;
	}
	count_status(api, status);
	MHD_add_response_header(r, "Content-Type", "application/json");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	if (status == 405)
		MHD_add_response_header(r, "Allow", "GET, HEAD");
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Sends JSON text rendered by a handler; takes *text (set to NULL); counts the status sent. */
static enum MHD_Result send_text(struct api *api, struct MHD_Connection *c, int status, char **text)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer_with_free_callback(strlen(*text), *text, free);
	if (!r) {
		count_status(api, 500);
		return MHD_NO; /* *text is still ours: answer frees it */
	}
	*text = NULL; /* owned by r */
	count_status(api, status);
	MHD_add_response_header(r, "Content-Type", "application/json");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
	struct api *api = cls;
	double t0 = time_mono();
	struct api_req rq = {.pool = api->pool, .status = 0};
	httpd_limits_answering(c); /* a GET has no body: the request is whole, its deadline ends */
	char key[API_MAX_KEY + 2] = "";
	enum endpoint ep = route(&rq, url, key, sizeof(key));
	atomic_fetch_add(&api->n_requests[ep], 1);
	enum MHD_Result ret;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		api_req_set(&rq, 405,
		            api_req_error("method_not_allowed", NULL,
		                          "%s is not allowed: this API is read-only (use GET)",
		                          method));
	} else if (rq.status == 0) {
		MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, &rq);
		switch (ep) {
		case EP_GPUS: api_page_gpus(&rq); break;
		case EP_GPU: api_ep_gpu(&rq, key); break;
		case EP_GPU_METRICS: api_ep_gpu_metrics(&rq, key); break;
		case EP_GPU_HEALTH: api_ep_gpu_health(&rq, key); break;
		case EP_FLEET: api_ep_fleet(&rq); break;
		case EP_ALERTS: api_ep_alerts(&rq); break;
		case EP_WORKLOADS: api_page_workloads(&rq); break;
		case EP_HEALTHZ: api_ep_healthz(&rq); break;
		case EP_METRICS: {
			char *text = metrics_text(api);
			if (!text) {
				api_req_set(&rq, 500,
				            api_req_error("internal", NULL, "out of memory"));
				break;
			}
			struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(
			    strlen(text), text, free);
			if (!r) {
				free(text);
				ret = MHD_NO;
				goto out;
			}
			MHD_add_response_header(r, "Content-Type",
			                        "text/plain; version=0.0.4; charset=utf-8");
			ret = MHD_queue_response(c, 200, r);
			MHD_destroy_response(r);
			count_status(api, 200);
			goto out;
		}
		default:
			api_req_set(&rq, 404,
			            api_req_error(
			                "not_found", NULL,
			                "no such endpoint '%.200s': see docs/openapi.yaml (GET "
			                "/api/v1/gpus, /api/v1/fleet/summary, /api/v1/alerts, ...)",
			                url));
		}
	}
	if (rq.status == 0)
		api_req_set(&rq, 500, api_req_error("internal", NULL, "no answer was produced"));
	ret = rq.text ? send_text(api, c, rq.status, &rq.text)
	              : send_json(api, c, rq.status, rq.body);
out:
	if (rq.pc)
		api_pool_put(api->pool, rq.pc);
	free(rq.text);
	json_decref(rq.body);
	atomic_fetch_add(&api->duration_us[ep], (uint64_t)((time_mono() - t0) * 1e6));
	return ret;
}

/* ---- lifecycle */

int api_create(struct api **out, const struct api_params *params, char *err, size_t errlen)
{
	struct api *api = calloc(1, sizeof(*api));
	if (!api)
		goto oom;
	api->threads = params->threads ? params->threads : 4;
	if (api->threads > 64) {
		snprintf(err, errlen, "api: %u worker threads is too many (at most 64)",
		         api->threads);
		api_destroy(api);
		return -EINVAL;
	}
	api->per_client = params->per_client ? params->per_client : PER_CLIENT_DEF;
	if (api->per_client > CONN_LIMIT) {
		snprintf(err, errlen,
		         "api: %u connections per client is more than the %d of all clients "
		         "together",
		         api->per_client, CONN_LIMIT);
		api_destroy(api);
		return -EINVAL;
	}
	api->listen = strdup(params->listen ? params->listen : ":8080");
	if (!api->listen || api_pool_create(&api->pool, api->threads,
	                                    params->conninfo ? params->conninfo : "") != 0)
		goto oom;
	*out = api; /* caller owns: api_destroy */
	return 0;
oom:
	api_destroy(api);
	return errmsg_oom(-ENOMEM, err, errlen, "the api");
}

int api_start(struct api *api, char *err, size_t errlen)
{
	int fd = -1;
	if (api->daemon)
		return -EALREADY;
	int rc = listen_open(api->listen, "--listen", "8080", 511, &fd, api->address,
	                     sizeof(api->address), err, errlen);
	if (rc)
		return rc;
	struct httpd_limits_params lp = {.name = "api",
	                                 .request_s = HEAD_DEADLINE_S,
	                                 .keepalive_s = CONN_TIMEOUT_S,
	                                 .idle_s = CONN_TIMEOUT_S,
	                                 .total = CONN_LIMIT,
	                                 .per_ip = api->per_client};
	rc = httpd_limits_create(&api->limits, &lp);
	if (rc) {
		close(fd);
		snprintf(err, errlen, "cannot start the API's deadline thread: %s", strerror(-rc));
		return rc;
	}
	struct MHD_OptionItem lim[HTTPD_LIMITS_NOPTS];
	httpd_limits_options(api->limits, lim);
	/* a thread per connection: a slow answer (a page of GPUs) holds up only its own client;
	 * /healthz is never queued behind pages on a shared worker thread. A connection past its
	 * head deadline has its socket shut down by httpd_limits: its thread's poll sees the
	 * end of the stream and MHD closes it (and the per-client count drops). */
	api->daemon = MHD_start_daemon(
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0,
	    NULL, NULL, answer, api, MHD_OPTION_EXTERNAL_LOGGER, httpd_limits_log, api->limits,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_ARRAY, lim, MHD_OPTION_END);
	if (!api->daemon) {
		close(fd);
		httpd_limits_destroy(api->limits);
		api->limits = NULL;
		snprintf(err, errlen, "cannot start the HTTP server on %s", api->address);
		return -EIO;
	}
	return 0; /* fd is owned by the daemon: MHD_stop_daemon closes it */
}

const char *api_address(const struct api *api)
{
	return api->address;
}

void api_stop(struct api *api)
{
	if (api && api->daemon) {
		MHD_stop_daemon(api->daemon); /* closes every connection: the list empties */
		api->daemon = NULL;
	}
	if (api) {
		httpd_limits_destroy(
		    api->limits); /* after the daemon: it reports each close to it */
		api->limits = NULL;
	}
}

void api_stats(struct api *api, struct api_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (int e = 0; e < EP_COUNT; e++)
		out->requests += atomic_load(&api->n_requests[e]);
	out->responses_2xx = atomic_load(&api->n_2xx);
	out->responses_4xx = atomic_load(&api->n_4xx);
	out->responses_5xx = atomic_load(&api->n_5xx);
	out->db_errors = api_pool_errors(api->pool);
	out->db_connections = api_pool_open(api->pool);
}

void api_destroy(struct api *api)
{
	if (!api)
		return;
	api_stop(api);
	api_pool_destroy(api->pool);
	free(api->listen);
	free(api);
}
