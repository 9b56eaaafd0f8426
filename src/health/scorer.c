#include "health/scorer.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus/consumer.h"
#include "bus/sender.h"
#include "core/errmsg.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/metrics_http.h"
#include "core/strbuf.h"
#include "core/timeutil.h"
#include "health/alertmanager.h"
#include "health/alerts.h"
#include "health/health_engine.h"
#include "health/health_metrics.h"
#include "health/predict.h"
#include "health/rules.h"
#include "core/event_check.h"
#include "health/sample.h"
#include "health/scorer_alerts.h"
#include "health/scorer_db.h"
#include "health/scorer_int.h"
#include "health/scorer_rows.h"
#include "health/webhook.h"

#define COPY_MAX_BYTES (256u << 20)
#define BACKOFF_MIN_S 0.5
#define BACKOFF_MAX_S 30.0
#define STOP_DEADLINE_S 10.0
#define RETRY_TELL_S 30.0 /* a batch being retried is told this often */
#define BAD_TELL_S 10.0  /* dead letters are told at most once per this many seconds */

void scorer_set_error(struct scorer *s, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&s->lock);
	snprintf(s->st.last_error, sizeof(s->st.last_error), "%s", msg);
	pthread_mutex_unlock(&s->lock);
}

static void alert_delivered(void *ctx, void *opaque, int err)
{
	(void)opaque;
	struct scorer *s = ctx;
	if (err) {
		STAT_ADD(s, alerts_produce_failed, 1);
		log_warn("scorer: alert not delivered to Kafka: %s", sender_err_str(err));
	} else {
		STAT_ADD(s, alerts_produced, 1);
	}
}

/* The consumer's and the alert sender's errors: a fatal one stops the scorer. */
static void kafka_error(void *ctx, bool fatal, const char *text)
{
	struct scorer *s = ctx;
	scorer_set_error(s, "%s", text);
	if (!fatal)
		return;
	pthread_mutex_lock(&s->lock);
	s->st.failed = true;
	pthread_mutex_unlock(&s->lock);
	atomic_store(&s->w.stop, true);
}

/* ---- one evaluation: score, prediction, recommendation, alerts into the batch */

static size_t key_hash(const char *k)
{
	/* FNV-1a from our basis; where size_t is 32 bits, the low half the loop here gave */
	return (size_t)hash_fnv1a64_str_more(HASH_FNV1A64_GH_BASIS, k);
}

/* The slot of key (found, or the free one it would take); NULL when the table is empty. */
static struct written *written_slot(struct scorer *s, const char *key)
{
	if (!s->capwritten)
		return NULL;
	size_t i = key_hash(key) & (s->capwritten - 1);
	while (s->written[i].key && strcmp(s->written[i].key, key) != 0)
		i = (i + 1) & (s->capwritten - 1);
	return &s->written[i];
}

/* Keeps the table at most half full. Returns 0 or -ENOMEM. */
static int written_grow(struct scorer *s)
{
	if ((s->nwritten + 1) * 2 <= s->capwritten)
		return 0;
	size_t cap = s->capwritten ? s->capwritten * 2 : 1024;
	struct written *old = s->written, *t = calloc(cap, sizeof(*t));
	if (!t)
		return -ENOMEM;
	size_t oldcap = s->capwritten;
	s->written = t;
	s->capwritten = cap;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].key)
			*written_slot(s, old[i].key) = old[i];
	free(old);
	return 0;
}

/* Whether r's rows are written: the first of its GPU, a change of status, recommendation or
 * score band, or health_row_interval_s since the last; notes what is written. A GPU that
 * cannot be tracked (out of memory) is written every time. */
static bool row_due(struct scorer *s, const struct health_result *r, const char *rec)
{
	if (s->o.health_row_interval_s <= 0)
		return true;
	struct written *w = written_grow(s) ? NULL : written_slot(s, r->key);
	if (!w)
		return true;
	int band = r->score / 10;
	if (w->key && w->status == r->status && w->band == band &&
	    (w->rec == rec || (w->rec && rec && strcmp(w->rec, rec) == 0)) &&
	    r->time - w->time < s->o.health_row_interval_s && r->time >= w->time)
		return false;
	if (!w->key) {
		if (!(w->key = strdup(r->key)))
			return true;
		s->nwritten++;
	}
	w->status = r->status;
	w->rec = rec;
	w->band = band;
	w->time = r->time;
	return true;
}

/* One verdict of the engine: health_metrics, the rows, the alert changes into the batch. */
static int judged(const struct health_verdict *v, void *ud)
{
	struct scorer *s = ud;
	const struct health_result *r = &v->r;
	int rc = 0;
	if (!r->missing) { /* the sample's own verdict, not a silent GPU's */
		if (s->am && s->cur_event &&
		    alertmanager_note_event(s->am, r->key, s->cur_event, s->cur_len, false))
			return -ENOMEM; /* a GPU seen for the first time: its labels, for when it falls
					 * silent */
		if (s->hm && s->cur_event &&
		    health_metrics_note_event(s->hm, r->key, s->cur_event, s->cur_len))
			return -ENOMEM;
	}
	char ts[40];
	time_format_rfc3339(r->time, ts, sizeof(ts));
	const char *rec = v->recommended ? health_action_name(v->e.best) : NULL;
	if (s->hm)
		rc = health_metrics_set(s->hm, r->key, r->score, r->status, v->p.probability,
		                        v->action, time_mono());
	if (rc)
		return rc;
	if (row_due(s, r, rec)) {
		json_t *pj = scorer_rows_prediction_json(&v->p, &v->e, v->required, v->recommended);
		rc = pj ? 0 : -ENOMEM;
		rc = rc ? rc : scorer_rows_score(&s->scores, r, ts);
		rc = rc ? rc : scorer_rows_prediction(&s->preds, r, &v->p, ts, pj, rec);
		json_decref(pj);
		if (rc)
			return rc;
	}
	s->nrows++;
	for (size_t i = 0; i < v->nalerts && !rc; i++)
		rc = scorer_alerts_add(s, &v->alerts[i], r, &v->p, rec, ts);
	pthread_mutex_lock(&s->lock);
	s->st.scored++;
	s->st.predictions++;
	s->st.pass += r->status == HEALTH_PASS;
	s->st.warn += r->status == HEALTH_WARN;
	s->st.fail += r->status == HEALTH_FAIL;
	s->st.gpus = health_engine_gpu_count(s->engine);
	s->st.open_alerts = health_engine_open_alerts(s->engine);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* consumer_hooks.take: one event scored into the open batch (the message freed here). */
static void take_msg(struct scorer *s, const struct bus_msg *m)
{
	if (s->nrows == 0 && s->nops == 0 && s->offs.n == 0)
		s->batch_started = time_mono();
	bus_offsets_note(&s->offs, m->partition, m->offset);
	STAT_ADD(s, consumed, 1);
	struct health_sample smp;
	char err[256];
	/* "now" is this host's clock: no event's time moves it */
	double wall = time_now();
	struct event_check_opts co = {.now = wall, .max_age_s = s->max_age_s,
				      .max_skew_s = s->o.max_skew_s};
	if (!m->payload ||
	    health_sample_parse_checked(m->payload, m->len, &co, &smp, err, sizeof(err))) {
		STAT_ADD(s, bad_events, 1);
		/* the sink dead-letters the same event with the same reason; told once per interval
		 * here, at warning level, with the count */
		s->bad_since_told++;
		if (wall - s->bad_told_at >= BAD_TELL_S) {
			log_warn("scorer: %llu dead letter%s skipped (not scored) in the last %.0f s; "
				 "the last at %s[%d]@%lld: %s",
				 (unsigned long long)s->bad_since_told, s->bad_since_told == 1 ? "" : "s",
				 BAD_TELL_S, m->topic,
				 (int)m->partition, (long long)m->offset, m->payload ? err : "empty");
			s->bad_told_at = wall;
			s->bad_since_told = 0;
		}
		return;
	}
	s->cur_event = m->payload;
	s->cur_len = m->len;
	/* the sample's verdict, then (on live data) those of its host's silent GPUs */
	int rc = health_engine_sample(s->engine, &smp, wall, judged, s);
	s->cur_event = NULL;
	if (rc == -EALREADY) {
		STAT_ADD(s, redelivered, 1);
		return;
	}
	if (rc) {
		log_error("scorer: out of memory evaluating a sample");
		pthread_mutex_lock(&s->lock);
		s->st.failed = true;
		pthread_mutex_unlock(&s->lock);
		atomic_store(&s->w.stop, true);
	}
}

static void batch_clear(struct scorer *s)
{
	strbuf_reset(&s->scores);
	strbuf_reset(&s->preds);
	for (size_t i = 0; i < s->nops; i++)
		scorer_alerts_free(&s->ops[i]);
	s->nops = 0;
	s->nrows = 0;
	s->offs.n = 0;
}

static void poll_producer(void *ctx)
{
	struct scorer *s = ctx;
	sender_poll(s->producer, 0);
}

/* Sleeps for the attempt's backoff unless stopping past the deadline. Returns false to give up. */
static bool backoff(struct scorer *s, int attempt, double deadline)
{
	return worker_backoff(&s->w, attempt, BACKOFF_MIN_S, BACKOFF_MAX_S, deadline, poll_producer,
	                      s);
}

/* Ends the batch: the transaction (retried while the database is away), then the offsets,
 * then the alert announcements. When stopping, gives up after the deadline: nothing stored,
 * so Kafka redelivers it. */
static int flush(struct scorer *s)
{
	if (!s->nrows && !s->nops && !s->offs.n)
		return 0;
	double deadline = time_mono() + STOP_DEADLINE_S;
	int attempt = 0;
	if (s->scores.overflow || s->preds.overflow) {
		log_error("scorer: a batch outgrew its buffers");
		goto abandon;
	}
	if (s->nrows || s->nops) {
		double told = 0;
		while (scorer_db_write(s)) {
			STAT_ADD(s, db_errors, 1);
			/* told at warning level once per RETRY_TELL_S, with the count and the age of
			 * the oldest message held */
			if (time_mono() - told >= RETRY_TELL_S) {
				told = time_mono();
				log_warn("scorer: retrying a batch of %zu scores and %zu alert changes, the "
					 "oldest held %.0f s, attempt %d (%s)",
					 s->nrows, s->nops, time_mono() - s->batch_started, attempt + 1,
					 s->st.last_error);
			}
			if (!backoff(s, attempt++, deadline))
				goto abandon;
		}
		if (attempt)
			log_info("scorer: database back after %d attempts", attempt);
	}
	consumer_store(s->consumer, &s->offs); /* only now: the batch is durable */
	uint64_t raised = 0, cleared = 0;
	for (size_t i = 0; i < s->nops; i++) {
		scorer_alerts_announce(s, &s->ops[i]);
		raised += s->ops[i].action != ALERT_CLEAR;
		cleared += s->ops[i].action == ALERT_CLEAR;
	}
	pthread_mutex_lock(&s->lock);
	s->st.batches++;
	s->st.alerts_raised += raised;
	s->st.alerts_cleared += cleared;
	pthread_mutex_unlock(&s->lock);
	batch_clear(s);
	return 0;
abandon:
	log_warn("scorer: stopping with an unwritten batch of %zu scores; not acknowledged, so "
		 "Kafka redelivers it",
		 s->nrows);
	batch_clear(s);
	return -EIO;
}

/* The senders' counters into st: both read first, then one lock. */
static void update_webhook_stats(struct scorer *s)
{
	struct webhook_stats w = {0};
	struct alertmanager_stats a = {0};
	if (s->hook)
		webhook_stats(s->hook, &w);
	if (s->am)
		alertmanager_stats(s->am, &a);
	pthread_mutex_lock(&s->lock);
	s->st.webhook_sent = w.sent;
	s->st.webhook_failed = w.failed;
	s->st.webhook_dropped = w.dropped;
	s->st.am_sent = a.sent;
	s->st.am_failed = a.failed;
	s->st.am_dropped = a.dropped;
	s->st.am_pending = a.pending;
	pthread_mutex_unlock(&s->lock);
}

static void take(void *ctx, struct bus_msg *m)
{
	take_msg(ctx, m);
	bus_msg_free(m);
}

/* consumer_hooks.tick: the alert reports, the senders' stats twice a second. */
static void tick(void *ctx, double now)
{
	struct scorer *s = ctx;
	/* the alert producer's delivery reports every 5 ms, not once per message (an idle loop
	 * still comes by every consumer poll) */
	if (now - s->last_poll >= 0.005 || now < s->last_poll) {
		sender_poll(s->producer, 0);
		s->last_poll = now;
	}
	if (now - s->last_stats >= 0.5) {
		update_webhook_stats(s);
		s->last_stats = now;
	}
}

/* consumer_hooks.due: the open batch is full, too large, or old enough. */
static bool due(void *ctx, double now)
{
	struct scorer *s = ctx;
	return s->nrows >= (size_t)s->o.batch_size || s->scores.len >= COPY_MAX_BYTES / 4 ||
	       ((s->nrows || s->nops || s->offs.n) && now - s->batch_started >= s->o.batch_timeout_s);
}

static void flush_hook(void *ctx)
{
	flush(ctx);
}

/* consumer_hooks.revoked: what is held is written before the partitions move on. */
static void revoked(void *ctx)
{
	flush(ctx);
}

static void *scorer_main(void *arg)
{
	struct scorer *s = arg;
	int attempt = 0;
	while (!worker_stopping(&s->w) && scorer_db_ensure(s)) {
		if (attempt == 0)
			log_warn("scorer: %s; retrying", s->st.last_error);
		backoff(s, attempt++, 0);
	}
	if (!worker_stopping(&s->w))
		log_info("scorer: connected to PostgreSQL");
	s->last_stats = 0;
	consumer_run(s->consumer, &s->w.stop);
	flush(s);
	consumer_close(s->consumer);
	if (s->producer) {
		int left = sender_flush(s->producer, 10000);
		if (left)
			log_warn("scorer: %d alert message(s) not delivered to Kafka at stop", left);
	}
	scorer_db_close(s);
	update_webhook_stats(s);
	pthread_mutex_lock(&s->lock);
	s->st.running = false;
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static char *dup_or_null(const char *p) { return p && *p ? strdup(p) : NULL; }

void scorer_destroy(struct scorer *s)
{
	if (!s)
		return;
	scorer_stop(s);
	health_metrics_destroy(s->hm); /* after the listener that renders it (scorer_stop) */
	free(s->metrics_listen);
	batch_clear(s);
	free(s->ops);
	for (size_t i = 0; i < s->capwritten; i++)
		free(s->written[i].key);
	free(s->written);
	strbuf_free(&s->scores);
	strbuf_free(&s->preds);
	consumer_destroy(s->consumer);
	sender_destroy(s->producer);
	webhook_destroy(s->hook);
	alertmanager_destroy(s->am);
	if (s->curl_inited)
		curl_global_cleanup();
	scorer_db_close(s);
	pgconn_destroy(s->pg);
	health_engine_destroy(s->engine);
	free(s->brokers);
	free(s->topic);
	free(s->group);
	free(s->alerts_topic);
	free(s->conninfo);
	free(s->webhook_url);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int scorer_create(struct scorer **out, const struct scorer_options *o, char *err, size_t errlen)
{
	int rc = -ENOMEM;
	struct scorer *s = calloc(1, sizeof(*s));
	if (!s)
		goto fail;
	pthread_mutex_init(&s->lock, NULL);
	strbuf_init(&s->scores, COPY_MAX_BYTES);
	strbuf_init(&s->preds, COPY_MAX_BYTES);
	rc = -EINVAL;
	if (!o->brokers || !*o->brokers) {
		snprintf(err, errlen, "the scorer needs Kafka: give --brokers HOST:PORT or "
				      "KAFKA_BOOTSTRAP_SERVERS");
		goto fail;
	}
	if (o->batch_size < 1 || !(o->batch_timeout_s > 0) || !(o->horizon_h > 0) ||
	    !(o->risk_level > 0 && o->risk_level <= 1)) {
		snprintf(err, errlen, "batch size, batch timeout, horizon and risk level must be positive "
				      "(risk level at most 1)");
		goto fail;
	}
	struct econ_result probe;
	struct econ_inputs ein = o->econ;
	ein.horizon_h = o->horizon_h;
	if (econ_evaluate(&ein, 0.5, false, ACT_RESET, &probe)) {
		snprintf(err, errlen, "economic inputs out of range (see 'gpuhealth scorer --help')");
		goto fail;
	}
	s->o = *o;
	if (!(s->o.max_skew_s > 0))
		s->o.max_skew_s = EVENT_CHECK_MAX_SKEW_S;
	s->max_age_s = o->max_age_s > 0 ? o->max_age_s : 7 * 86400;
	rc = -ENOMEM;
	s->brokers = strdup(o->brokers);
	s->topic = strdup(o->topic ? o->topic : "gpu-metrics-raw");
	s->group = strdup(o->group ? o->group : "gpuhealth-scorer");
	s->alerts_topic = dup_or_null(o->alerts_topic);
	s->conninfo = dup_or_null(o->conninfo);
	s->webhook_url = dup_or_null(o->webhook_url);
	if (!s->brokers || !s->topic || !s->group || (o->alerts_topic && *o->alerts_topic && !s->alerts_topic) ||
	    (o->conninfo && *o->conninfo && !s->conninfo) ||
	    (o->webhook_url && *o->webhook_url && !s->webhook_url))
		goto fail;
	if (!(s->pg = pgconn_create(s->conninfo, "gpuhealth-scorer")))
		goto fail;
	/* given, even "": metrics_http_start says what is wrong with it */
	if (o->metrics_listen &&
	    (!(s->metrics_listen = strdup(o->metrics_listen)) || health_metrics_create(&s->hm, 0)))
		goto fail;
	s->o.brokers = s->o.topic = s->o.group = s->o.alerts_topic = s->o.conninfo = NULL;
	s->o.metrics_listen = NULL;
	s->o.webhook_url = NULL;
	s->o.kafka_props = NULL;
	struct health_engine_opts eo = {.interval_s = o->interval_s,
					.missing_intervals = o->missing_intervals,
					.horizon_h = o->horizon_h,
					.risk_level = o->risk_level,
					.econ = &o->econ,
					.raise_after = o->raise_after,
					.clear_after = o->clear_after};
	if (health_engine_create(&s->engine, &eo))
		goto fail;

	if (s->webhook_url || o->nalertmanager_urls) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			snprintf(err, errlen, "cannot initialise libcurl");
			rc = -EIO;
			goto fail;
		}
		s->curl_inited = true;
	}
	if (o->nalertmanager_urls) {
		struct alertmanager_opts amo = {.urls = o->alertmanager_urls,
						.nurls = o->nalertmanager_urls,
					       .resend_s = o->alertmanager_resend_s,
					       .timeout_s = 10,
					       .api_url = o->api_url};
		rc = alertmanager_create(&s->am, &amo, err, errlen);
		if (rc)
			goto fail;
	}
	s->o.alertmanager_urls = NULL; /* alertmanager_create copied them */
	s->o.api_url = NULL;
	if (s->webhook_url) {
		struct webhook_opts wo = {.url = s->webhook_url, .timeout_s = o->webhook_timeout_s,
					  .retries = o->webhook_retries, .backoff_s = 0.5};
		rc = webhook_create(&s->hook, &wo, err, errlen);
		if (rc)
			goto fail;
	}

	const struct consumer_options co = {.who = "scorer",
					    .brokers = s->brokers,
					    .topic = s->topic,
					    .group = s->group,
					    .kafka_props = o->kafka_props,
					    .nkafka_props = o->nkafka_props};
	const struct consumer_hooks hooks = {.ctx = s,
					     .take = take,
					     .tick = tick,
					     .due = due,
					     .flush = flush_hook,
					     .revoked = revoked,
					     .error = kafka_error};
	rc = consumer_create(&s->consumer, &co, &hooks, err, errlen);
	if (rc)
		goto fail;
	if (s->alerts_topic &&
	    (rc = sender_create_beside(&s->producer, &co, &hooks, 0, alert_delivered, err, errlen)))
		goto fail;
	*out = s; /* caller owns */
	return 0;
fail:
	scorer_destroy(s);
	return errmsg_oom(rc, err, errlen, "the scorer");
}

/* --metrics-listen: the scorer's own counters, then each GPU's verdict (health_metrics.h) */
static int render_metrics(void *ud, struct strbuf *b)
{
	struct scorer *s = ud;
	struct scorer_stats st;
	scorer_stats(s, &st);
	const struct {
		const char *name, *type, *help;
		double v;
	} c[] = {
#define SCORER_METRIC(name, type, help, value) {name, type, help, (double)(value)},
#include "health/scorer_metrics.def"
#undef SCORER_METRIC
	};
	int rc = 0;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]) && !rc; i++)
		rc = strbuf_printf(b,
		                   "# HELP gpuhealth_scorer_%s %s\n# TYPE gpuhealth_scorer_%s %s\n"
		                   "gpuhealth_scorer_%s %.17g\n",
		                   c[i].name, c[i].help, c[i].name, c[i].type, c[i].name, c[i].v);
	rc = rc ? rc
	        : strbuf_printf(b,
	                        "# HELP gpuhealth_scorer_evaluations_total Evaluations written, by "
	                        "status.\n# TYPE gpuhealth_scorer_evaluations_total counter\n"
	                        "gpuhealth_scorer_evaluations_total{status=\"pass\"} %" PRIu64 "\n"
	                        "gpuhealth_scorer_evaluations_total{status=\"warn\"} %" PRIu64 "\n"
	                        "gpuhealth_scorer_evaluations_total{status=\"fail\"} %" PRIu64 "\n",
	                        st.pass, st.warn, st.fail);
	return rc ? rc : health_metrics_render(s->hm, b, time_mono());
}

int scorer_start(struct scorer *s, char *err, size_t errlen)
{
	if (s->metrics_listen) {
		int rc = metrics_http_start(&s->http, s->metrics_listen, "scorer", render_metrics,
		                            s, err, errlen);
		if (rc)
			return rc;
		log_info("scorer: own metrics and each GPU's health on http://%s/metrics",
		         metrics_http_address(s->http));
	}
	pthread_mutex_lock(&s->lock);
	s->st.running = true;
	pthread_mutex_unlock(&s->lock);
	int rc = worker_start(&s->w, scorer_main, s);
	if (rc) {
		s->st.running = false;
		metrics_http_stop(s->http);
		s->http = NULL;
		snprintf(err, errlen, "cannot start the scorer thread: %s", strerror(-rc));
		return rc == -EINVAL ? -EIO : rc;
	}
	return 0;
}

int scorer_describe(const struct scorer *s, bool detail, char *buf, size_t len)
{
	if (!detail)
		return snprintf(buf, len, "consuming %s as group %s", s->topic, s->group);
	char ams[64] = "";
	if (s->o.nalertmanager_urls)
		snprintf(ams, sizeof(ams), " and %zu Alertmanager(s)", s->o.nalertmanager_urls);
	return snprintf(
	    buf, len,
	    "consuming %s as group %s; alerts to %s%s%s; horizon %g h, risk alert at %.2f",
	    s->topic, s->group, s->alerts_topic ? s->alerts_topic : "(no topic)",
	    s->webhook_url ? " and a webhook" : "", ams, s->o.horizon_h, s->o.risk_level);
}

/* The listener first: it reads the stats and the verdicts until it is gone. */
static void stop(struct scorer *s, bool now)
{
	if (!s)
		return;
	metrics_http_stop(s->http);
	s->http = NULL;
	worker_stop(&s->w, now);
}

void scorer_stop(struct scorer *s)
{
	stop(s, false);
}

void scorer_stop_now(struct scorer *s)
{
	stop(s, true);
}

void scorer_stats(struct scorer *s, struct scorer_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->st;
	pthread_mutex_unlock(&s->lock);
}
