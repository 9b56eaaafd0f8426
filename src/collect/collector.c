#include "collect/collector.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/timeutil.h"

struct collector {
	struct scrape *scrape; /* owned */
	struct events *ev;     /* owned */
	struct prom_cache *pc; /* owned: label sets of the last body (prom_parse_cached) */
	struct producer *prod; /* owned; NULL with --output */
	FILE *out;             /* not owned */
	size_t max_body;
	bool once;
	void (*tap)(const json_t *event, void *ud);
	void *tap_ud;
	char *cluster, *datacenter, *rack; /* owned copies */

	char *json; /* owned: one rendered event */
	size_t json_cap;
	struct strbuf lines; /* --output: the lines of one scrape */

	/* a local source in place of the scrape targets (collector_local) */
	bool has_local;
	struct collector_local local;        /* name owned */
	struct strbuf local_body;            /* collector thread only */
	double local_due, interval_s;        /* collector thread only */
	struct scrape_target_stats local_ts; /* guarded by lock */

	pthread_t thread;
	bool started;
	atomic_bool stop;

	pthread_mutex_t lock; /* guards st, pending */
	struct collector_stats st;
	char **pending; /* owned: a target set for the thread to apply */
	size_t npending;
	bool has_pending;
};

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static char **copy_list(const char *const *v, size_t n)
{
	char **c = calloc(n ? n : 1, sizeof(*c));
	if (!c)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!(c[i] = strdup(v[i]))) {
			free_list(c, i);
			return NULL;
		}
	return c;
}

static int render(struct collector *c, size_t i, size_t *len)
{
	for (;;) {
		int rc = events_render(c->ev, i, c->json, c->json_cap, len);
		if (rc != -ENOSPC)
			return rc;
		size_t cap = *len + 1 > c->json_cap * 2 ? *len + 1 : c->json_cap * 2;
		char *j = realloc(c->json, cap);
		if (!j)
			return -ENOMEM;
		c->json = j;
		c->json_cap = cap;
	}
}

/* One scrape body -> events -> output. Runs on the collector thread (scrape callback). */
static int on_scrape(void *ud, size_t target, const char *url, const char *body, size_t len,
                     const struct timespec *when, struct scrape_result *res)
{
	(void)target;
	struct collector *c = ud;
	char t[EVENTS_TIME_LEN];
	struct prom_stats pst;
	struct prom_limits lim;
	prom_limits_default(&lim);
	lim.max_body = c->max_body;
	if (events_format_time(when, t) != 0 || events_begin(c->ev, t) != 0) {
		snprintf(res->error, sizeof(res->error), "cannot format the scrape time");
		return -EINVAL;
	}
	int rc = prom_parse_cached(body, len, &lim, events_prom_cb, c->ev, &pst, c->pc);
	res->samples = pst.samples;
	res->bad_lines = pst.bad_lines;
	const struct events_stats *es = events_stats(c->ev);
	uint64_t unusable = es->no_uuid + es->bad_key + es->duplicates + es->too_many_gpus;
	size_t n = events_count(c->ev);
	if (rc) {
		snprintf(res->error, sizeof(res->error), "cannot parse the body: %s",
		         strerror(-rc));
	} else if (pst.samples == 0) {
		rc = -EBADMSG;
		if (pst.nbad)
			snprintf(res->error, sizeof(res->error),
			         "no Prometheus samples in %zu bytes (%zu bad lines; line %zu: %s)",
			         len, pst.bad_lines, pst.bad[0].line,
			         prom_strerror(pst.bad[0].reason));
		else
			snprintf(res->error, sizeof(res->error),
			         "no Prometheus samples in %zu bytes", len);
	} else if (n == 0) {
		rc = -EBADMSG;
		snprintf(res->error, sizeof(res->error),
		         "no GPU in %zu samples: no DCGM_FI_* series with a UUID label (is this a "
		         "dcgm-exporter?)",
		         pst.samples);
	}
	if (pst.bad_lines && pst.nbad)
		log_debug("collector: %s: %zu bad lines, first at line %zu: %s", url, pst.bad_lines,
		          pst.bad[0].line, prom_strerror(pst.bad[0].reason));
	uint64_t produced = 0, out_err = 0;
	if (!rc) {
		strbuf_reset(&c->lines);
		for (size_t i = 0; i < n; i++) {
			size_t jl = 0;
			if (c->tap)
				c->tap(events_json(c->ev, i), c->tap_ud);
			int r = render(c, i, &jl);
			if (r) {
				log_error("collector: %s: cannot render event %zu: %s", url, i,
				          strerror(-r));
				continue;
			}
			if (c->out) {
				if (strbuf_append(&c->lines, c->json, jl) ||
				    strbuf_append(&c->lines, "\n", 1)) {
					out_err++;
					continue;
				}
			} else {
				const char *key = events_key(c->ev, i);
				r = producer_send(c->prod, key, strlen(key), c->json, jl);
				if (r) {
					log_error("collector: %s: event for %s not queued: %s", url,
					          key, strerror(-r));
					continue;
				}
			}
			produced++;
		}
		if (c->out && c->lines.len) {
			if (fwrite(c->lines.data, 1, c->lines.len, c->out) != c->lines.len ||
			    fflush(c->out) != 0) {
				out_err++;
				produced = 0;
				pthread_mutex_lock(&c->lock);
				snprintf(c->st.last_error, sizeof(c->st.last_error),
				         "cannot write to --output: %s", strerror(errno));
				c->st.failed = true;
				pthread_mutex_unlock(&c->lock);
				atomic_store(&c->stop, true);
			}
		}
		if (c->prod) /* the journal (with --spool-dir) before the scrape counts as done */
			producer_sync(c->prod);
		log_debug("collector: scraped %s at %s: %zu samples, %" PRIu64 " events", url, t,
		          pst.samples, produced);
	}
	pthread_mutex_lock(&c->lock);
	c->st.samples += pst.samples;
	c->st.bad_lines += pst.bad_lines;
	c->st.unusable += unusable;
	c->st.events += produced;
	c->st.bytes += len;
	c->st.output_errors += out_err;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* The targets' records: the scraper's, or the local source's one. */
static size_t target_count(struct collector *c)
{
	return c->has_local ? 1 : scrape_count(c->scrape);
}

static size_t target_stats(struct collector *c, struct scrape_target_stats *out, size_t max)
{
	if (!c->has_local)
		return scrape_target_stats(c->scrape, out, max);
	if (out && max) {
		pthread_mutex_lock(&c->lock);
		out[0] = c->local_ts;
		pthread_mutex_unlock(&c->lock);
	}
	return 1;
}

/* One read of the local source when it is due, else a nap until then (at most 0.1 s). */
static void local_step(struct collector *c)
{
	double now = time_mono();
	if (now < c->local_due) {
		double nap = c->local_due - now < 0.1 ? c->local_due - now : 0.1;
		struct timespec ts = {(time_t)nap, (long)((nap - (double)(time_t)nap) * 1e9)};
		nanosleep(&ts, NULL);
		return;
	}
	/* every interval after the time it was due; whole intervals skipped when late */
	c->local_due += c->interval_s;
	if (c->local_due <= now)
		c->local_due = now + c->interval_s;
	struct scrape_result res = {0};
	char err[256] = "";
	strbuf_reset(&c->local_body);
	double t0 = time_now();
	int rc = c->local.read(c->local.ud, &c->local_body, err, sizeof(err));
	struct timespec when;
	clock_gettime(CLOCK_REALTIME, &when);
	if (rc)
		snprintf(res.error, sizeof(res.error), "%s", err[0] ? err : strerror(-rc));
	else
		rc = on_scrape(c, 0, c->local.name, c->local_body.data ? c->local_body.data : "",
		               c->local_body.len, &when, &res);
	double t1 = time_now();
	pthread_mutex_lock(&c->lock);
	struct scrape_target_stats *t = &c->local_ts;
	t->last_attempt = t1;
	t->last_duration_s = t1 - t0;
	if (rc) {
		t->failed++;
		t->consecutive_failures++;
		t->last_error_time = t1;
		snprintf(t->last_error, sizeof(t->last_error), "%s", res.error);
		log_warn("collector: %s: %s", c->local.name, res.error);
	} else {
		t->ok++;
		t->consecutive_failures = 0;
		t->last_success = t1;
		t->last_bytes = c->local_body.len;
		t->last_samples = res.samples;
	}
	t->samples += res.samples;
	t->bad_lines += res.bad_lines;
	pthread_mutex_unlock(&c->lock);
}

static void refresh_stats(struct collector *c)
{
	struct producer_stats ps;
	if (c->prod)
		producer_stats(c->prod, &ps);
	size_t n = target_count(c), down = 0;
	struct scrape_target_stats *ts = n ? calloc(n, sizeof(*ts)) : NULL;
	if (ts) {
		n = target_stats(c, ts, n);
		for (size_t i = 0; i < n; i++)
			down += ts[i].consecutive_failures > 0;
	}
	uint64_t ok = 0, failed = 0, missed = 0;
	for (size_t i = 0; ts && i < n; i++) {
		ok += ts[i].ok;
		failed += ts[i].failed;
		missed += ts[i].missed;
	}
	free(ts);
	pthread_mutex_lock(&c->lock);
	if (c->prod)
		c->st.producer = ps;
	c->st.targets = n;
	c->st.targets_down = down;
	c->st.scrapes_ok = ok;
	c->st.scrapes_failed = failed;
	c->st.scrapes_missed = missed;
	pthread_mutex_unlock(&c->lock);
}

static void *run(void *arg)
{
	struct collector *c = arg;
	double last_refresh = 0;
	while (!atomic_load(&c->stop)) {
		char **pend = NULL;
		size_t npend = 0;
		bool has = false;
		pthread_mutex_lock(&c->lock);
		if (c->has_pending) {
			pend = c->pending; /* ours now */
			npend = c->npending;
			c->pending = NULL;
			c->npending = 0;
			c->has_pending = false;
			has = true;
		}
		pthread_mutex_unlock(&c->lock);
		if (has) {
			if (scrape_set_targets(c->scrape, (const char *const *)pend, npend) != 0)
				log_error("collector: out of memory applying %zu targets; keeping "
				          "the old "
				          "set",
				          npend);
			free_list(pend, npend);
		}
		if (c->has_local) {
			local_step(c);
		} else if (scrape_run(c->scrape, 0.1) != 0) {
			pthread_mutex_lock(&c->lock);
			snprintf(c->st.last_error, sizeof(c->st.last_error),
			         "libcurl multi failure");
			c->st.failed = true;
			pthread_mutex_unlock(&c->lock);
			log_error("collector: libcurl multi interface failed; stopping");
			break;
		}
		if (c->prod)
			producer_poll(c->prod, 0);
		double now = time_mono();
		if (now - last_refresh >= 0.25) {
			refresh_stats(c);
			last_refresh = now;
		}
		if (c->once && (c->has_local ? c->local_ts.ok + c->local_ts.failed > 0
		                             : scrape_once_done(c->scrape)))
			break; /* local_ts is written by this thread only: read without the lock */
	}
	if (c->prod)
		producer_close(c->prod); /* flush, then spool what is left */
	if (c->out)
		fflush(c->out);
	refresh_stats(c);
	pthread_mutex_lock(&c->lock);
	c->st.running = false;
	c->st.done = true;
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int collector_create(struct collector **out, const struct collector_options *o, char *err,
                     size_t errlen)
{
	*out = NULL;
	int rc = -ENOMEM;
	struct collector *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	c->out = o->out;
	c->once = o->once;
	c->max_body = o->max_body;
	c->tap = o->tap;
	c->tap_ud = o->tap_ud;
	strbuf_init(&c->lines, 0);
	strbuf_init(&c->local_body, 0);
	c->interval_s = o->interval_s;
	if (o->local) {
		if (!o->local->read || !o->local->name || o->ntargets) {
			snprintf(err, errlen,
			         "collector: a local source needs a read function and a "
			         "name, and no targets");
			rc = -EINVAL;
			goto fail;
		}
		c->has_local = true;
		c->local = *o->local;
		if (!(c->local.name = strdup(o->local->name)))
			goto fail;
		snprintf(c->local_ts.url, sizeof(c->local_ts.url), "%s", o->local->name);
	}
	c->json_cap = 16384;
	if (!(c->json = malloc(c->json_cap)))
		goto fail;
	if ((o->enrich.cluster && !(c->cluster = strdup(o->enrich.cluster))) ||
	    (o->enrich.datacenter && !(c->datacenter = strdup(o->enrich.datacenter))) ||
	    (o->enrich.rack && !(c->rack = strdup(o->enrich.rack))))
		goto fail;
	struct events_enrich en = {c->cluster, c->datacenter, c->rack};
	if ((rc = events_create(&c->ev, &en)) != 0)
		goto fail;
	if (!(c->pc = prom_cache_new()))
		goto fail;
	struct scrape_options so = {
	    .interval_s = o->interval_s,
	    .timeout_s = o->timeout_s,
	    .max_body = o->max_body,
	    .gzip = o->gzip,
	    .once = o->once,
	    .first_now = o->first_now,
	    .cb = on_scrape,
	    .ud = c,
	};
	if ((rc = scrape_create(&c->scrape, &so, err, errlen)) != 0)
		goto fail;
	if ((rc = scrape_set_targets(c->scrape, o->targets, o->ntargets)) != 0)
		goto fail;
	if (!c->out) {
		if ((rc = producer_create(&c->prod, &o->kafka, err, errlen)) != 0)
			goto fail;
		c->st.kafka = true;
	}
	c->st.targets = o->ntargets;
	*out = c; /* caller owns */
	return 0;
fail:
	if (rc == -ENOMEM && !err[0])
		snprintf(err, errlen, "out of memory");
	collector_destroy(c);
	return rc;
}

int collector_start(struct collector *c)
{
	pthread_mutex_lock(&c->lock);
	c->st.running = true;
	pthread_mutex_unlock(&c->lock);
	int rc = pthread_create(&c->thread, NULL, run, c);
	if (rc) {
		pthread_mutex_lock(&c->lock);
		c->st.running = false;
		pthread_mutex_unlock(&c->lock);
		return -rc;
	}
	c->started = true;
	return 0;
}

int collector_set_targets(struct collector *c, const char *const *urls, size_t n)
{
	char **copy = copy_list(urls, n);
	if (!copy)
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	free_list(c->pending, c->npending);
	c->pending = copy; /* owned by c until the thread takes it */
	c->npending = n;
	c->has_pending = true;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

void collector_stop(struct collector *c)
{
	if (!c->started)
		return;
	atomic_store(&c->stop, true);
	pthread_join(c->thread, NULL);
	c->started = false;
}

void collector_stats(struct collector *c, struct collector_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->st;
	pthread_mutex_unlock(&c->lock);
}

size_t collector_targets(struct collector *c, struct scrape_target_stats *out, size_t max)
{
	return target_stats(c, out, max);
}

/* A label value with \ " and newline escaped. */
static int put_label(struct strbuf *sb, const char *v)
{
	int rc = 0;
	for (const char *p = v; *p && !rc; p++) {
		if (*p == '\\')
			rc = strbuf_puts(sb, "\\\\");
		else if (*p == '"')
			rc = strbuf_puts(sb, "\\\"");
		else if (*p == '\n')
			rc = strbuf_puts(sb, "\\n");
		else
			rc = strbuf_append(sb, p, 1);
	}
	return rc;
}

static int family(struct strbuf *sb, const char *name, const char *type, const char *help)
{
	return strbuf_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int per_target(struct strbuf *sb, const struct scrape_target_stats *ts, size_t n,
                      const char *name, const char *type, const char *help, const char *extra_label,
                      double (*get)(const struct scrape_target_stats *, double now), double now)
{
	int rc = family(sb, name, type, help);
	for (size_t i = 0; i < n && !rc; i++) {
		double v = get(&ts[i], now);
		if (isnan(v))
			continue; /* not known (never succeeded): no series */
		rc = strbuf_printf(sb, "%s{target=\"", name);
		rc = rc ? rc : put_label(sb, ts[i].url);
		rc =
		    rc ? rc : strbuf_printf(sb, "\"%s} %.17g\n", extra_label ? extra_label : "", v);
	}
	return rc;
}

static double g_too_large(const struct scrape_target_stats *t, double now)
{
	(void)now;
	return (double)t->too_large;
}
static double g_up(const struct scrape_target_stats *t, double now)
{
	(void)now;
	if (!t->last_attempt)
		return NAN;
	return t->consecutive_failures == 0 ? 1 : 0;
}
static double g_consec(const struct scrape_target_stats *t, double now)
{
	(void)now;
	return t->consecutive_failures;
}
static double g_last_ok(const struct scrape_target_stats *t, double now)
{
	(void)now;
	return t->last_success ? t->last_success : NAN;
}
static double g_stale(const struct scrape_target_stats *t, double now)
{
	return t->last_success ? now - t->last_success : NAN;
}
static double g_dur(const struct scrape_target_stats *t, double now)
{
	(void)now;
	return t->last_attempt ? t->last_duration_s : NAN;
}
static double g_samples(const struct scrape_target_stats *t, double now)
{
	(void)now;
	return (double)t->samples;
}
static double g_bad(const struct scrape_target_stats *t, double now)
{
	(void)now;
	return (double)t->bad_lines;
}

int collector_render_metrics(struct collector *c, struct strbuf *sb)
{
	struct collector_stats st;
	collector_stats(c, &st);
	size_t n = target_count(c);
	struct scrape_target_stats *ts = calloc(n ? n : 1, sizeof(*ts));
	if (!ts)
		return -ENOMEM;
	size_t got = target_stats(c, ts, n);
	if (got < n)
		n = got;
	double now = time_now();
	int rc = 0;
#define TGT(name, type, help, label, fn)                                                           \
	if (!rc)                                                                                   \
	rc = per_target(sb, ts, n, name, type, help, label, fn, now)
	rc = family(sb, "gpuhealth_collector_scrapes_total", "counter",
	            "Scrapes per target by result.");
	for (size_t i = 0; i < n && !rc; i++) {
		for (int r = 0; r < 2 && !rc; r++) {
			rc = strbuf_puts(sb, "gpuhealth_collector_scrapes_total{target=\"");
			rc = rc ? rc : put_label(sb, ts[i].url);
			rc = rc ? rc
			        : strbuf_printf(sb, "\",result=\"%s\"} %" PRIu64 "\n",
			                        r ? "failed" : "ok", r ? ts[i].failed : ts[i].ok);
		}
	}
	TGT("gpuhealth_collector_scrapes_too_large_total", "counter",
	    "Scrapes aborted because the body passed --max-body.", NULL, g_too_large);
	TGT("gpuhealth_collector_target_up", "gauge",
	    "1 when the last scrape of the target succeeded, else 0.", NULL, g_up);
	TGT("gpuhealth_collector_target_consecutive_failures", "gauge", "Failed scrapes in a row.",
	    NULL, g_consec);
	TGT("gpuhealth_collector_target_last_success_timestamp_seconds", "gauge",
	    "Wall-clock time of the last successful scrape.", NULL, g_last_ok);
	TGT("gpuhealth_collector_target_staleness_seconds", "gauge",
	    "Seconds since the last successful scrape.", NULL, g_stale);
	TGT("gpuhealth_collector_target_scrape_duration_seconds", "gauge",
	    "Duration of the last scrape.", NULL, g_dur);
	TGT("gpuhealth_collector_target_samples_total", "counter",
	    "Samples parsed from the target.", NULL, g_samples);
	TGT("gpuhealth_collector_target_bad_lines_total", "counter",
	    "Lines of the target's bodies that the parser skipped.", NULL, g_bad);
#undef TGT
	free(ts);
	const struct producer_stats *p = &st.producer;
	struct {
		const char *name, *type, *help;
		double v;
		bool kafka;
	} rows[] = {
	    {"gpuhealth_collector_targets", "gauge", "Targets in the current set.",
	     (double)st.targets, false},
	    {"gpuhealth_collector_targets_down", "gauge", "Targets whose last scrape failed.",
	     (double)st.targets_down, false},
	    {"gpuhealth_collector_scrapes_missed_total", "counter",
	     "Scrape intervals skipped because the collector was late (samples never taken).",
	     (double)st.scrapes_missed, false},
	    {"gpuhealth_collector_samples_total", "counter", "Samples parsed.", (double)st.samples,
	     false},
	    {"gpuhealth_collector_bad_lines_total", "counter", "Lines the parser skipped.",
	     (double)st.bad_lines, false},
	    {"gpuhealth_collector_unusable_samples_total", "counter",
	     "DCGM samples that could not be put on a GPU (no UUID, duplicate, ...).",
	     (double)st.unusable, false},
	    {"gpuhealth_collector_events_total", "counter",
	     "Events built and handed to the output.", (double)st.events, false},
	    {"gpuhealth_collector_scraped_bytes_total", "counter",
	     "Decoded bytes of scrape bodies.", (double)st.bytes, false},
	    {"gpuhealth_collector_events_produced_total", "counter",
	     "Events given to the Kafka producer.", (double)p->produced, true},
	    {"gpuhealth_collector_events_delivered_total", "counter",
	     "Events the broker acknowledged.", (double)p->delivered, true},
	    {"gpuhealth_collector_events_failed_total", "counter",
	     "Events whose delivery failed for good.", (double)p->failed, true},
	    {"gpuhealth_collector_events_retried_total", "counter",
	     "Events produced again after a failed, not persisted delivery.", (double)p->retried,
	     true},
	    {"gpuhealth_collector_events_dropped_total", "counter",
	     "Oldest events dropped past the buffer bounds.", (double)p->dropped, true},
	    {"gpuhealth_collector_events_spooled_total", "counter",
	     "Events written to the disk spool.", (double)p->spooled, true},
	    {"gpuhealth_collector_events_unspooled_total", "counter",
	     "Events read back from the disk spool.", (double)p->unspooled, true},
	    {"gpuhealth_collector_spool_errors_total", "counter",
	     "Spool I/O errors and damaged records.", (double)p->spool_errors, true},
	    {"gpuhealth_collector_spool_bytes", "gauge", "Bytes waiting in the disk spool.",
	     (double)p->spool_bytes, true},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]) && !rc; i++) {
		if (rows[i].kafka && !st.kafka)
			continue;
		rc = family(sb, rows[i].name, rows[i].type, rows[i].help);
		rc = rc ? rc : strbuf_printf(sb, "%s %.17g\n", rows[i].name, rows[i].v);
	}
	if (!rc && st.kafka) {
		rc = family(sb, "gpuhealth_collector_buffer_events", "gauge",
		            "Events waiting for the broker, by where they wait.");
		rc = rc ? rc
		        : strbuf_printf(
		              sb,
		              "gpuhealth_collector_buffer_events{where=\"librdkafka\"} %" PRIu64
		              "\ngpuhealth_collector_buffer_events{where=\"memory\"} %" PRIu64
		              "\ngpuhealth_collector_buffer_events{where=\"spool\"} %" PRIu64 "\n",
		              p->in_flight, p->queued, p->spool_events);
	}
	return rc;
}

void collector_destroy(struct collector *c)
{
	if (!c)
		return;
	collector_stop(c);
	producer_destroy(c->prod);
	scrape_destroy(c->scrape);
	events_destroy(c->ev);
	prom_cache_free(c->pc);
	free(c->json);
	strbuf_free(&c->lines);
	strbuf_free(&c->local_body);
	free((char *)c->local.name);
	free_list(c->pending, c->npending);
	free(c->cluster);
	free(c->datacenter);
	free(c->rack);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
