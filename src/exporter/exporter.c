#include "exporter/exporter.h"

#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "core/errmsg.h"
#include "core/httpd_limits.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/waiter.h"

#define CONTENT_TYPE_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define CONN_LIMIT           512
#define CONN_PER_IP          64    /* one client cannot take every slot (wrk -c32 fits) */
#define CONN_TIMEOUT_S       15    /* idle: also bounds sending an answer */
#define REQUEST_DEADLINE_S   10    /* a request's head and body, however slowly they come */
#define CONN_MEMORY          32768 /* request line + headers must fit */

/* A snapshot body with what its free callback needs to return it to the pool. */
struct snapbuf {
	struct exporter *ex;
	size_t cap;
	char data[];
};
#define POOL_MAX 2

/* The fixed answers: the index page, /healthz, 404 and 405. */
enum { R_INDEX, R_HEALTH, R_404, R_405, R_COUNT };

struct exporter {
	struct exporter_source src; /* owned; used only by the update thread once started */
	bool have_src;
	struct exporter_params p;
	char *hostname, *host_label, *driver_version, *model_name, *listen; /* owned copies */
	char address[80];

	/* the current snapshot: responses reference-counted by libmicrohttpd. The gzip form is
	 * made on the first request that asks for it (a collector on loopback does not), from
	 * cur_body, the plain response's buffer. gz_mu serializes those builds with the swap of
	 * the snapshot, so cur_body stays alive while it is compressed; order: gz_mu, snap_mu. */
	pthread_mutex_t snap_mu, gz_mu;
	struct MHD_Response *cur_plain, *cur_gzip;
	const char *cur_body; /* owned by cur_plain */
	char cur_simt[32];
	double cur_time;
	size_t cur_plain_len, cur_gzip_len;

	/* static responses */
	struct MHD_Response *fixed[R_COUNT]; /* the answers that never change */

	/* snapshot bodies: a body whose last response is gone goes back to this pool and the next
	 * render writes into it (no 10 MB allocation, page faults and copy per render of 1,024
	 * GPUs); at most POOL_MAX kept */
	pthread_mutex_t pool_mu;
	struct snapbuf *pool[2];
	size_t npool;
	size_t body_cap; /* capacity of the last body rendered */

	struct MHD_Daemon *daemon;
	struct httpd_limits *limits; /* owned; outlives daemon */
	struct waiter wt;            /* the simulation thread, between start and stop */
	struct timespec start;

	atomic_uint_least64_t n_requests, n_metrics, n_gzip, n_404, n_405, n_renders;
	_Atomic double last_render_ms;
};

bool exporter_accepts_gzip(const char *ae)
{
	if (!ae)
		return false;
	const char *p = ae;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *tok = p;
		while (*p && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
			p++;
		size_t n = (size_t)(p - tok);
		bool match =
		    (n == 4 && strncasecmp(tok, "gzip", 4) == 0) || (n == 1 && *tok == '*');
		double q = 1.0;
		/* parameters up to the next comma */
		while (*p && *p != ',') {
			if (*p == ';') {
				p++;
				while (*p == ' ' || *p == '\t')
					p++;
				if ((p[0] == 'q' || p[0] == 'Q') && p[1] == '=')
					q = strtod(p + 2, NULL);
			} else {
				p++;
			}
		}
		if (match && n)
			return q > 0;
	}
	return false;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* The simulator as a source. */
static int sim_src_update(void *ud, double t)
{
	return sim_advance(ud, t);
}
static void sim_src_view(void *ud, struct exporter_view *out)
{
	*out = (struct exporter_view){sim_gpus(ud), sim_gpu_count(ud), sim_time(ud)};
}
static void sim_src_destroy(void *ud)
{
	sim_destroy(ud);
}

int exporter_create(struct exporter **out, struct sim *sim, const struct exporter_params *params,
                    char *err, size_t errlen)
{
	if (!sim) {
		*out = NULL;
		snprintf(err, errlen, "exporter: bad parameters");
		return -EINVAL;
	}
	struct exporter_source src = {sim_src_update, sim_src_view, sim_src_destroy, sim};
	return exporter_create_source(out, &src, params, err, errlen); /* owns sim now */
}

static void source_destroy(struct exporter_source *src)
{
	if (src && src->destroy)
		src->destroy(src->ud);
}

int exporter_create_source(struct exporter **out, const struct exporter_source *source,
                           const struct exporter_params *params, char *err, size_t errlen)
{
	int rc = -ENOMEM;
	struct exporter *ex = NULL;
	struct exporter_source src = {0};
	if (source)
		src = *source;
	if (!source || !src.update || !src.view || !params || !(params->speed > 0) ||
	    !(params->poll_interval > 0) || !params->render.hostname ||
	    !params->render.host_label || !params->render.driver_version ||
	    !params->render.model_name) {
		snprintf(err, errlen, "exporter: bad parameters");
		rc = -EINVAL;
		goto fail;
	}
	ex = waiter_calloc(sizeof(*ex), offsetof(struct exporter, wt));
	if (!ex)
		goto fail;
	ex->src = src;
	ex->have_src = true;
	src.destroy = NULL; /* owned by ex now */
	pthread_mutex_init(&ex->snap_mu, NULL);
	pthread_mutex_init(&ex->gz_mu, NULL);
	pthread_mutex_init(&ex->pool_mu, NULL);
	ex->p = *params;
	ex->hostname = dup_or_null(params->render.hostname);
	ex->host_label = dup_or_null(params->render.host_label);
	ex->driver_version = dup_or_null(params->render.driver_version);
	ex->model_name = dup_or_null(params->render.model_name);
	ex->listen = strdup(params->listen ? params->listen : ":9400");
	if (!ex->hostname || !ex->host_label || !ex->driver_version || !ex->model_name ||
	    !ex->listen)
		goto fail;
	ex->p.render = (struct render_opts){ex->hostname, ex->host_label, ex->driver_version,
	                                    ex->model_name, params->render.k8s};
	ex->p.listen = ex->listen;

	static const char index_html[] =
	    "<html><head><title>gpuhealth mock-dcgm</title></head><body>"
	    "<h1>gpuhealth mock-dcgm</h1><p>Simulated GPUs in the format of NVIDIA "
	    "dcgm-exporter.</p><p><a href=\"/metrics\">Metrics</a> &middot; "
	    "<a href=\"/healthz\">Health</a></p></body></html>\n";
	static const struct {
		const char *body, *type;
	} fixed[R_COUNT] = {
	    [R_INDEX] = {index_html, "text/html; charset=utf-8"},
	    [R_HEALTH] = {"ok\n", "text/plain; charset=utf-8"},
	    [R_404] = {"404 page not found\n", "text/plain; charset=utf-8"},
	    [R_405] = {"405 method not allowed: use GET or HEAD\n", "text/plain; charset=utf-8"},
	};
	for (int i = 0; i < R_COUNT; i++) {
		ex->fixed[i] = MHD_create_response_from_buffer(
		    strlen(fixed[i].body), (void *)fixed[i].body, MHD_RESPMEM_PERSISTENT);
		if (!ex->fixed[i])
			goto fail;
		MHD_add_response_header(ex->fixed[i], "Content-Type", fixed[i].type);
	}
	MHD_add_response_header(ex->fixed[R_405], "Allow", "GET, HEAD");
	*out = ex; /* caller owns: exporter_destroy */
	return 0;
fail:
	source_destroy(&src);
	exporter_destroy(ex);
	return errmsg_oom(rc, err, errlen, "the exporter");
}

/* ---- snapshots */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* gzip of in[0..n) into a new buffer (caller frees). Returns NULL on failure. */
static char *gzip_buf(const char *in, size_t n, size_t *out_len)
{
	z_stream z = {0};
	char *out = NULL;
	if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return NULL;
	size_t cap = deflateBound(&z, (uLong)n) + 32;
	out = malloc(cap);
	if (!out)
		goto fail;
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)n;
	z.next_out = (Bytef *)out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		goto fail;
	*out_len = z.total_out;
	deflateEnd(&z);
	return out;
fail:
	deflateEnd(&z);
	free(out);
	return NULL;
}

/* A body of at least cap bytes: from the pool when one is big enough, else new. */
static struct snapbuf *pool_take(struct exporter *ex, size_t cap)
{
	struct snapbuf *sb = NULL;
	pthread_mutex_lock(&ex->pool_mu);
	for (size_t i = 0; i < ex->npool && !sb; i++)
		if (ex->pool[i]->cap >= cap) {
			sb = ex->pool[i];
			ex->pool[i] = ex->pool[--ex->npool];
		}
	pthread_mutex_unlock(&ex->pool_mu);
	if (!sb && (sb = malloc(sizeof(*sb) + cap))) {
		sb->ex = ex;
		sb->cap = cap;
	}
	return sb;
}

/* libmicrohttpd's free callback of a snapshot body (any thread); also takes NULL. */
static void pool_give(void *cls)
{
	struct snapbuf *sb = cls;
	if (!sb)
		return;
	struct exporter *ex = sb->ex;
	pthread_mutex_lock(&ex->pool_mu);
	if (ex->npool < POOL_MAX) {
		ex->pool[ex->npool++] = sb;
		sb = NULL;
	}
	pthread_mutex_unlock(&ex->pool_mu);
	free(sb);
}

/* Renders the simulator's current state and makes it the snapshot the HTTP threads serve.
 * Runs on the simulation thread (or in start, before there is one). */
static int publish(struct exporter *ex)
{
	int rc = -ENOMEM;
	struct snapbuf *sb = NULL;
	struct MHD_Response *rp = NULL;
	struct exporter_view v;
	ex->src.view(ex->src.ud, &v);
	size_t n = v.count, len = 0;
	size_t bound = render_bound(n, &ex->p.render);

	size_t want = ex->body_cap ? ex->body_cap : 65536 + n * 12288;
	if (want > bound)
		want = bound;
	sb = pool_take(ex, want);
	if (!sb)
		goto out;
	while ((rc = render_exposition(v.gpus, n, &ex->p.render, sb->data, sb->cap, &len)) ==
	       -ENOSPC) {
		size_t cap = sb->cap * 2 < bound ? sb->cap * 2 : bound;
		struct snapbuf *p = cap > sb->cap ? realloc(sb, sizeof(*sb) + cap) : NULL;
		if (!p) {
			rc = -ENOMEM;
			goto out;
		}
		sb = p;
		sb->cap = cap;
	}
	if (rc)
		goto out;
	ex->body_cap = sb->cap;
	rc = -ENOMEM;
	/* the response returns its body to the pool when libmicrohttpd drops its last reference */
	rp = MHD_create_response_from_buffer_with_free_callback_cls(len, sb->data, pool_give, sb);
	if (!rp)
		goto out;
	const char *body_ref = sb->data;
	sb = NULL; /* owned by rp */
	/* the snapshot's simulated time, for tests and debugging (not part of dcgm-exporter) */
	char simt[32];
	snprintf(simt, sizeof(simt), "%.3f", v.time);
	if (MHD_add_response_header(rp, "Content-Type", CONTENT_TYPE_METRICS) != MHD_YES ||
	    MHD_add_response_header(rp, "Vary", "Accept-Encoding") != MHD_YES ||
	    MHD_add_response_header(rp, "X-Gpuhealth-Simulated-Time", simt) != MHD_YES)
		goto out;

	pthread_mutex_lock(&ex->gz_mu); /* no gzip build is reading the old body now */
	pthread_mutex_lock(&ex->snap_mu);
	struct MHD_Response *old_p = ex->cur_plain, *old_g = ex->cur_gzip;
	ex->cur_plain = rp;
	ex->cur_body = body_ref;
	ex->cur_gzip = NULL; /* made on the first request for it */
	memcpy(ex->cur_simt, simt, sizeof(simt));
	ex->cur_time = v.time;
	ex->cur_plain_len = len;
	ex->cur_gzip_len = 0;
	pthread_mutex_unlock(&ex->snap_mu);
	pthread_mutex_unlock(&ex->gz_mu);
	rp = NULL;
	/* drop the snapshot's own reference; requests still sending it hold theirs */
	if (old_p)
		MHD_destroy_response(old_p);
	if (old_g)
		MHD_destroy_response(old_g);
	atomic_fetch_add(&ex->n_renders, 1);
	rc = 0;
out:
	if (rp)
		MHD_destroy_response(rp);
	pool_give(sb);
	return rc;
}

/* Queues the gzip form of the current snapshot, compressing it first if no request has
 * asked for it since the last render. Falls back to the plain form if compression fails. */
static enum MHD_Result queue_gzip(struct exporter *ex, struct MHD_Connection *c,
                                  unsigned int status)
{
	enum MHD_Result ret;
	char *gz = NULL;
	size_t gz_len = 0;
	struct MHD_Response *rg = NULL;

	pthread_mutex_lock(&ex->snap_mu);
	if (ex->cur_gzip) {
		ret = MHD_queue_response(c, status, ex->cur_gzip);
		pthread_mutex_unlock(&ex->snap_mu);
		return ret;
	}
	pthread_mutex_unlock(&ex->snap_mu);

	pthread_mutex_lock(&ex->gz_mu); /* the snapshot cannot be swapped while this is held */
	pthread_mutex_lock(&ex->snap_mu);
	const char *body = ex->cur_body;
	size_t len = ex->cur_plain_len;
	bool built = ex->cur_gzip != NULL; /* by another request while this one waited */
	pthread_mutex_unlock(&ex->snap_mu);
	if (!built) {
		gz = gzip_buf(body, len, &gz_len);
		if (gz)
			rg = MHD_create_response_from_buffer_with_free_callback(gz_len, gz, free);
		if (rg)
			gz = NULL; /* owned by rg */
		if (rg &&
		    (MHD_add_response_header(rg, "X-Gpuhealth-Simulated-Time", ex->cur_simt) !=
		         MHD_YES ||
		     MHD_add_response_header(rg, "Content-Type", CONTENT_TYPE_METRICS) != MHD_YES ||
		     MHD_add_response_header(rg, "Content-Encoding", "gzip") != MHD_YES ||
		     MHD_add_response_header(rg, "Vary", "Accept-Encoding") != MHD_YES)) {
			MHD_destroy_response(rg);
			rg = NULL;
		}
		if (!rg)
			log_warn("mock-dcgm: could not compress the snapshot (out of memory); "
			         "answering uncompressed");
	}
	pthread_mutex_lock(&ex->snap_mu);
	if (rg) {
		ex->cur_gzip = rg; /* the snapshot's reference */
		ex->cur_gzip_len = gz_len;
	}
	ret = MHD_queue_response(c, status, ex->cur_gzip ? ex->cur_gzip : ex->cur_plain);
	pthread_mutex_unlock(&ex->snap_mu);
	pthread_mutex_unlock(&ex->gz_mu);
	free(gz);
	return ret;
}

static void *sim_main(void *arg)
{
	struct exporter *ex = arg;
	double period = ex->p.poll_interval / ex->p.speed; /* real seconds between renders */
	double t0 = (double)ex->start.tv_sec + (double)ex->start.tv_nsec * 1e-9;
	uint64_t k = 0;

	pthread_mutex_lock(&ex->wt.lock);
	while (!ex->wt.stop) {
		k++;
		double now = now_s();
		/* behind by more than a period (too fast a --speed): skip to the present */
		uint64_t present = (uint64_t)floor((now - t0) / period);
		if (present > k)
			k = present;
		if (!waiter_sleep_until_locked(&ex->wt, t0 + (double)k * period))
			break;
		pthread_mutex_unlock(&ex->wt.lock);
		double r0 = now_s();
		int rc = ex->src.update(ex->src.ud, (double)k * ex->p.poll_interval);
		if (rc == 0)
			rc = publish(ex);
		if (rc)
			log_warn("mock-dcgm: cannot publish the snapshot at %.0f s: %s",
			         (double)k * ex->p.poll_interval, strerror(-rc));
		atomic_store(&ex->last_render_ms, (now_s() - r0) * 1e3);
		pthread_mutex_lock(&ex->wt.lock);
	}
	pthread_mutex_unlock(&ex->wt.lock);
	return NULL;
}

/* ---- HTTP */

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_size, void **con_cls)
{
	struct exporter *ex = cls;
	enum MHD_Result ret;
	unsigned status = MHD_HTTP_OK;
	enum path { P_METRICS, P_INDEX, P_HEALTH, P_NONE } path = P_NONE;

	static int marker;
	bool get =
	    strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	/* A GET is answered on the second call, once the whole request is in, so that the
	 * connection can be kept alive (a reply queued earlier makes libmicrohttpd close it).
	 * Anything else is answered at once, before any request body is read. */
	if (get && *con_cls == NULL) {
		*con_cls = &marker;
		return MHD_YES;
	}
	if (get && *upload_size) { /* a GET with a body: ignore the body */
		*upload_size = 0;
		return MHD_YES;
	}
	httpd_limits_answering(c); /* the request is whole: no deadline while it is answered */
	atomic_fetch_add(&ex->n_requests, 1);
	static const struct {
		const char *url;
		enum path p;
	} paths[] = {{"/metrics", P_METRICS}, {"/", P_INDEX}, {"/healthz", P_HEALTH}};
	for (size_t i = 0; path == P_NONE && i < sizeof(paths) / sizeof(paths[0]); i++)
		if (strcmp(url, paths[i].url) == 0)
			path = paths[i].p;

	if (path == P_NONE) {
		atomic_fetch_add(&ex->n_404, 1);
		return MHD_queue_response(c, MHD_HTTP_NOT_FOUND, ex->fixed[R_404]);
	}
	if (!get) {
		/* answered before any request body is read; libmicrohttpd then closes */
		atomic_fetch_add(&ex->n_405, 1);
		return MHD_queue_response(c, MHD_HTTP_METHOD_NOT_ALLOWED, ex->fixed[R_405]);
	}
	if (path == P_INDEX)
		return MHD_queue_response(c, status, ex->fixed[R_INDEX]);
	if (path == P_HEALTH)
		return MHD_queue_response(c, status, ex->fixed[R_HEALTH]);

	bool gz = exporter_accepts_gzip(
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING));
	/* pick the current snapshot and queue it; queueing takes a reference, so the sim thread
	 * may replace it right after */
	if (gz) {
		ret = queue_gzip(ex, c, status);
	} else {
		pthread_mutex_lock(&ex->snap_mu);
		ret = MHD_queue_response(c, status, ex->cur_plain);
		pthread_mutex_unlock(&ex->snap_mu);
	}
	atomic_fetch_add(&ex->n_metrics, 1);
	if (gz)
		atomic_fetch_add(&ex->n_gzip, 1);
	return ret;
}

int exporter_start(struct exporter *ex, char *err, size_t errlen)
{
	int rc, fd = -1;
	if (ex->daemon)
		return -EALREADY;
	rc = publish(ex); /* the first scrape already has data */
	if (rc) {
		snprintf(err, errlen, "cannot render the first snapshot: %s", strerror(-rc));
		return rc;
	}
	rc = listen_open(ex->listen, "--listen", "9400", 511, &fd, ex->address, sizeof(ex->address),
	                 err, errlen);
	if (rc)
		return rc;
	unsigned threads = ex->p.http_threads;
	if (threads == 0) {
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		threads = ncpu < 2 ? 2 : ncpu > 16 ? 16 : (unsigned)ncpu;
	}
	/* MHD's timeout is an idle one, which a client trickling its request defeats: the
	 * request deadline closes such a connection (and frees its slot) after 10 s */
	struct httpd_limits_params lp = {.name = "mock-dcgm",
	                                 .request_s = REQUEST_DEADLINE_S,
	                                 .keepalive_s = CONN_TIMEOUT_S,
	                                 .idle_s = CONN_TIMEOUT_S,
	                                 .total = CONN_LIMIT,
	                                 .per_ip = CONN_PER_IP};
	rc = httpd_limits_create(&ex->limits, &lp);
	if (rc) {
		close(fd);
		snprintf(err, errlen, "cannot start the HTTP server on %s: %s", ex->address,
		         strerror(-rc));
		return rc;
	}
	struct MHD_OptionItem lim[HTTPD_LIMITS_NOPTS];
	httpd_limits_options(ex->limits, lim);
	ex->daemon = MHD_start_daemon(
	    MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, answer, ex,
	    MHD_OPTION_EXTERNAL_LOGGER, httpd_limits_log, ex->limits, MHD_OPTION_LISTEN_SOCKET,
	    (MHD_socket)fd, MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_ARRAY, lim,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY, MHD_OPTION_END);
	if (!ex->daemon) {
		httpd_limits_destroy(ex->limits);
		ex->limits = NULL;
		close(fd);
		snprintf(err, errlen, "cannot start the HTTP server on %s", ex->address);
		return -EIO;
	}
	/* fd is owned by the daemon now: MHD_stop_daemon closes it */
	clock_gettime(CLOCK_MONOTONIC, &ex->start);
	rc = waiter_start(&ex->wt, sim_main, ex);
	if (rc) {
		MHD_stop_daemon(ex->daemon);
		ex->daemon = NULL;
		httpd_limits_destroy(ex->limits);
		ex->limits = NULL;
		snprintf(err, errlen, "cannot start the simulation thread: %s", strerror(-rc));
		return rc;
	}
	return 0;
}

const char *exporter_address(const struct exporter *ex)
{
	return ex->address;
}

void exporter_stop(struct exporter *ex)
{
	if (!ex)
		return;
	waiter_stop(&ex->wt);
	if (ex->daemon) {
		MHD_stop_daemon(ex->daemon);
		ex->daemon = NULL;
	}
	httpd_limits_destroy(ex->limits); /* after the daemon: it reports each close to it */
	ex->limits = NULL;
}

void exporter_get_stats(struct exporter *ex, struct exporter_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->requests = atomic_load(&ex->n_requests);
	out->metrics = atomic_load(&ex->n_metrics);
	out->gzip = atomic_load(&ex->n_gzip);
	out->not_found = atomic_load(&ex->n_404);
	out->not_allowed = atomic_load(&ex->n_405);
	out->renders = atomic_load(&ex->n_renders);
	out->last_render_ms = atomic_load(&ex->last_render_ms);
	pthread_mutex_lock(&ex->snap_mu);
	out->sim_time = ex->cur_time;
	out->body_bytes = ex->cur_plain_len;
	out->gzip_bytes = ex->cur_gzip_len;
	pthread_mutex_unlock(&ex->snap_mu);
}

void exporter_destroy(struct exporter *ex)
{
	if (!ex)
		return;
	exporter_stop(ex);
	if (ex->cur_plain)
		MHD_destroy_response(ex->cur_plain);
	if (ex->cur_gzip)
		MHD_destroy_response(ex->cur_gzip);
	for (int i = 0; i < R_COUNT; i++)
		if (ex->fixed[i])
			MHD_destroy_response(ex->fixed[i]);
	pthread_mutex_destroy(&ex->snap_mu);
	pthread_mutex_destroy(&ex->gz_mu);
	/* every response is gone: their bodies are back in the pool */
	for (size_t i = 0; i < ex->npool; i++)
		free(ex->pool[i]);
	pthread_mutex_destroy(&ex->pool_mu);
	waiter_destroy(&ex->wt);
	if (ex->have_src)
		source_destroy(&ex->src);
	free(ex->hostname);
	free(ex->host_label);
	free(ex->driver_version);
	free(ex->model_name);
	free(ex->listen);
	free(ex);
}
