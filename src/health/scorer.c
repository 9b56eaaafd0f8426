#include "health/scorer.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <libpq-fe.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus/kafka_conf.h"
#include "core/log.h"
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
#include "health/webhook.h"
#include "store/pg.h"

#define COPY_MAX_BYTES (256u << 20)
#define BACKOFF_MIN_S 0.5
#define BACKOFF_MAX_S 30.0
#define STOP_DEADLINE_S 10.0
#define MAX_PARTS 256
#define RETRY_TELL_S 30.0 /* a batch being retried is told this often */
#define BAD_TELL_S 10.0  /* dead letters are told at most once per this many seconds */

static const char *const KIND_HEALTH = HEALTH_KIND_HEALTH;
static const char *const KIND_RISK = HEALTH_KIND_RISK;

/* One alert change of the open batch: written in the transaction, then announced. */
struct alert_op {
	enum alert_action action;
	char key[HS_KEY_MAX];
	char host[HS_HOST_MAX];
	const char *kind;
	enum health_status sev;
	char *message; /* owned */
	char *details; /* owned, JSON */
	char *body;    /* owned, the JSON for Kafka and the webhook */
	char *wl[3];   /* owned: the workload's namespace, pod, container when raised; NULL none */
	struct alertmanager_alert *am; /* owned; NULL without Alertmanager */
	double time;
};

struct part_off {
	int32_t partition;
	int64_t next;
};

/* The last health row written for a GPU: a new one is written when one of these changes or
 * health_row_interval_s has passed (issue #21: the health tables grew by a row per sample). */
struct written {
	char *key; /* owned; NULL: free slot */
	enum health_status status;
	const char *rec; /* a static action name, or NULL */
	int band;        /* score / 10 */
	double time;     /* sample time of the row */
};

struct scorer {
	struct scorer_options o; /* strings below are owned copies */
	char *brokers, *topic, *group, *alerts_topic, *conninfo, *webhook_url;

	rd_kafka_t *consumer; /* owned */
	rd_kafka_t *producer; /* owned; NULL without an alerts topic */
	struct webhook *hook; /* owned; NULL without a webhook */
	struct alertmanager *am; /* owned; NULL without --alertmanager */
	bool has_alert_workload; /* alerts has namespace/pod/container (schema 013) */
	bool has_fleet_now;      /* gpuhealth_fleet_now_merge (schema 014) */
	const char *cur_event; /* the event being judged (take() only), for Alertmanager's labels */
	size_t cur_len;
	PGconn *db;           /* the scorer thread's */
	struct health_engine *engine; /* the verdicts (the console's fleet runs the same) */
	/* the last statement failed with a SQLSTATE a new connection may get past (a read-only
	 * server, a shutdown: pg_sqlstate_reconnect): closed, not rolled back */
	bool reconnect;
	bool alerts_loaded;
	bool curl_inited;
	double max_age_s;         /* the retention: the event validator's oldest time */
	double bad_told_at;       /* time_now() of the last dead-letter warning */
	uint64_t bad_since_told;  /* dead letters since */

	pthread_t thread;
	bool started;
	atomic_bool stop;
	atomic_bool stop_now; /* at stop, give up a batch the database does not take at once */

	/* the open batch (scorer thread only) */
	struct strbuf scores, preds;
	size_t nrows;
	struct alert_op *ops;
	size_t nops, capops;
	struct part_off offs[MAX_PARTS];
	int noffs;
	double batch_started;

	/* what was last written for each GPU (scorer thread only): an open-addressing table */
	struct written *written;
	size_t nwritten, capwritten;

	pthread_mutex_t lock; /* guards st */
	struct scorer_stats st;
};

static void set_error(struct scorer *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct scorer *s, const char *fmt, ...)
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

#define STAT_ADD(s, field, n)                                                                      \
	do {                                                                                       \
		pthread_mutex_lock(&(s)->lock);                                                    \
		(s)->st.field += (n);                                                              \
		pthread_mutex_unlock(&(s)->lock);                                                  \
	} while (0)

static void alert_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	struct scorer *s = opaque;
	if (m->err) {
		STAT_ADD(s, alerts_produce_failed, 1);
		log_warn("scorer: alert not delivered to Kafka: %s", rd_kafka_err2str(m->err));
	} else {
		STAT_ADD(s, alerts_produced, 1);
	}
}

static void kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct scorer *s = opaque;
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		char buf[256];
		rd_kafka_fatal_error(rk, buf, sizeof(buf));
		set_error(s, "kafka fatal: %s", buf);
		log_error("scorer: kafka fatal error: %s", buf);
		pthread_mutex_lock(&s->lock);
		s->st.failed = true;
		pthread_mutex_unlock(&s->lock);
		atomic_store(&s->stop, true);
		return;
	}
	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT)
		set_error(s, "kafka: %s", reason);
	log_debug("scorer: kafka: %s", reason);
}

/* ---- COPY text */

/* Appends text escaped for COPY's text format. */
static int copy_text(struct strbuf *b, const char *t)
{
	int rc = 0;
	for (const char *p = t; *p && !rc; p++) {
		switch (*p) {
		case '\\':
			rc = strbuf_puts(b, "\\\\");
			break;
		case '\t':
			rc = strbuf_puts(b, "\\t");
			break;
		case '\n':
			rc = strbuf_puts(b, "\\n");
			break;
		case '\r':
			rc = strbuf_puts(b, "\\r");
			break;
		default:
			rc = strbuf_append(b, p, 1);
		}
	}
	return rc;
}

static json_t *reasons_json(const struct health_result *r)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < r->nreasons; i++) {
		const struct health_reason *x = &r->reasons[i];
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "code", x->code,
						   "component", health_component_name(x->comp),
						   "severity", x->sev == HEALTH_PASS ? "info" : health_status_name(x->sev),
						   "remedy", health_action_name(x->remedy), "event",
						   x->event, "text", x->text));
	}
	return a;
}

static int append_score(struct scorer *s, const struct health_result *r, const char *ts)
{
	json_t *j = reasons_json(r);
	char *txt = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!txt)
		return -ENOMEM;
	int rc = strbuf_printf(&s->scores, "%s\t", ts);
	rc = rc ? rc : copy_text(&s->scores, r->key);
	rc = rc ? rc : strbuf_printf(&s->scores, "\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t", r->score,
				     health_status_name(r->status), r->comp[HC_THERMAL],
				     r->comp[HC_MEMORY], r->comp[HC_POWER], r->comp[HC_INTERCONNECT],
				     r->comp[HC_XID]);
	rc = rc ? rc : copy_text(&s->scores, txt);
	rc = rc ? rc : strbuf_puts(&s->scores, "\n");
	free(txt);
	return rc;
}

/* The prediction's reasons: model terms, and the costs of each action when recommended. */
static json_t *prediction_json(const struct prediction *p, const struct econ_result *e,
			       enum health_action required, bool recommended)
{
	json_t *terms = json_array();
	for (int i = 0; terms && i < p->nterms; i++)
		json_array_append_new(terms, json_pack("{s:s, s:f, s:f}", "name", p->terms[i].name,
						       "x", p->terms[i].x, "contribution",
						       p->terms[i].contribution));
	json_t *j = json_pack("{s:f, s:o, s:b}", "z", p->z, "terms", terms, "failing", p->failing);
	if (j && recommended) {
		json_t *costs = json_object();
		json_t *res = json_array();
		for (int a = 0; costs && res && a < ACT_COUNT; a++) {
			json_object_set_new(costs, health_action_name((enum health_action)a),
					    json_real(round(e->cost[a] * 100) / 100));
			if (e->resolves[a])
				json_array_append_new(res, json_string(health_action_name((enum health_action)a)));
		}
		json_object_set_new(j, "required", json_string(health_action_name(required)));
		json_object_set_new(j, "costs", costs);
		json_object_set_new(j, "resolved_by", res);
		json_object_set_new(j, "job_loss", json_real(round(e->job_loss * 100) / 100));
	}
	return j;
}

static int append_prediction(struct scorer *s, const struct health_result *r,
			     const struct prediction *p, const char *ts, json_t *reasons,
			     const char *rec)
{
	char *txt = json_dumps(reasons, JSON_COMPACT | JSON_REAL_PRECISION(6));
	if (!txt)
		return -ENOMEM;
	int rc = strbuf_printf(&s->preds, "%s\t", ts);
	rc = rc ? rc : copy_text(&s->preds, r->key);
	rc = rc ? rc : strbuf_printf(&s->preds, "\t%g\t%.17g\t%s\t", p->horizon_h, p->probability,
				     PREDICT_MODEL_VERSION);
	rc = rc ? rc : copy_text(&s->preds, txt);
	rc = rc ? rc : strbuf_printf(&s->preds, "\t%s\n", rec ? rec : "\\N");
	free(txt);
	return rc;
}

/* ---- alerts */

static void op_free(struct alert_op *op)
{
	free(op->message);
	free(op->details);
	free(op->body);
	for (int i = 0; i < 3; i++)
		free(op->wl[i]);
	alertmanager_alert_free(op->am);
	memset(op, 0, sizeof(*op));
}

/* The Alertmanager form of op (sent after COMMIT, from announce). Returns 0 or -ENOMEM. */
static int am_prepare(struct scorer *s, struct alert_op *op, const struct health_result *r,
		      const struct prediction *p, const char *rec)
{
	bool firing = op->action != ALERT_CLEAR;
	/* a raise carries the labels (the workload) of the sample that raised it */
	if (firing && !r->missing && s->cur_event &&
	    alertmanager_note_event(s->am, r->key, s->cur_event, s->cur_len, true))
		return -ENOMEM;
	struct strbuf d;
	strbuf_init(&d, 4096);
	int rc = 0;
	for (size_t i = 0; i < r->nreasons && !rc; i++)
		if (r->reasons[i].sev != HEALTH_PASS)
			rc = strbuf_printf(&d, "%s%s (%s, %s): %s", d.len ? "; " : "", r->reasons[i].code,
					   health_component_name(r->reasons[i].comp),
					   health_status_name(r->reasons[i].sev), r->reasons[i].text);
	if (!rc && op->kind == KIND_RISK && firing)
		rc = strbuf_printf(&d, "%s%.0f %% probability of failure within %g h", d.len ? "; " : "",
				   100 * p->probability, p->horizon_h);
	if (!rc && !d.len)
		rc = strbuf_puts(&d, firing ? "no reason recorded" : op->message);
	struct alertmanager_change c = {
		.key = op->key,
		.kind = op->kind,
		.firing = firing,
		.critical = op->sev == HEALTH_FAIL,
		.time = op->time,
		.hostname = op->host,
		.summary = op->message,
		.description = d.data ? d.data : "",
		.remedy = health_action_name(r->remedy),
		.recommended_action = rec,
		.failure_probability = p->probability,
	};
	if (!rc)
		op->am = alertmanager_alert_new(s->am, &c);
	strbuf_free(&d);
	return rc || !op->am ? -ENOMEM : 0;
}

/* The workload of the event being judged (s->cur_event), when the alert is that event's GPU's
 * (r->missing: a GPU that fell silent is judged while another GPU's event is taken, and must
 * not get that GPU's workload): op->wl[] set to its non-empty namespace/pod/container, and the
 * JSON object for the alert's body (a new reference), or json_null(). */
static json_t *op_workload(struct scorer *s, struct alert_op *op, const struct health_result *r)
{
	static const char *const names[3] = {"namespace", "pod", "container"};
	if (!s->cur_event || r->missing)
		return json_null();
	json_t *ev = json_loadb(s->cur_event, s->cur_len, 0, NULL);
	json_t *w = json_object_get(ev, "workload");
	json_t *out = NULL;
	for (int i = 0; i < 3; i++) {
		const char *v = json_string_value(json_object_get(w, names[i]));
		if (!v || !*v)
			continue;
		if (!out)
			out = json_pack("{s:n, s:n, s:n}", names[0], names[1], names[2]);
		op->wl[i] = strdup(v);
		if (out)
			json_object_set_new(out, names[i], json_string(v));
	}
	json_decref(ev);
	return out ? out : json_null();
}

static int add_op(struct scorer *s, const struct health_alert_change *c,
		  const struct health_result *r, const struct prediction *p, const char *rec,
		  const char *ts)
{
	if (s->nops == s->capops) {
		size_t cap = s->capops ? s->capops * 2 : 64;
		struct alert_op *n = realloc(s->ops, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		s->ops = n;
		s->capops = cap;
	}
	enum alert_action act = c->action;
	const char *kind = strcmp(c->kind, KIND_RISK) == 0 ? KIND_RISK : KIND_HEALTH;
	enum health_status sev = c->severity;
	struct alert_op *op = &s->ops[s->nops];
	memset(op, 0, sizeof(*op));
	op->action = act;
	op->kind = kind;
	op->sev = sev;
	op->time = r->time;
	snprintf(op->key, sizeof(op->key), "%s", r->key);
	snprintf(op->host, sizeof(op->host), "%s", r->host);
	char msg[512];
	health_engine_alert_message(msg, sizeof(msg), r->key, r->host, c->summary);
	json_t *details = json_pack("{s:i, s:s, s:f, s:o, s:s?}", "score", r->score, "status",
				    health_status_name(r->status), "probability", p->probability,
				    "reasons", reasons_json(r), "recommendation", rec);
	json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:O?, s:o}", "schema",
				 "gpu-health-alert-v1", "action", alert_action_name(act), "time", ts,
				 "gpu_key", r->key, "hostname", r->host, "kind", kind, "severity",
				 act == ALERT_CLEAR ? "info" : health_status_name(sev), "message", msg,
				 "details", details, "workload", op_workload(s, op, r));
	op->message = strdup(msg);
	op->details = details ? json_dumps(details, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
	op->body = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
	json_decref(details);
	json_decref(body);
	if (!op->message || !op->details || !op->body || (s->am && am_prepare(s, op, r, p, rec))) {
		op_free(op);
		return -ENOMEM;
	}
	s->nops++;
	if (act == ALERT_CLEAR)
		log_info("scorer: alert cleared: %s", msg);
	else
		log_warn("scorer: alert %s: %s", act == ALERT_RAISE ? "raised" : "escalated", msg);
	return 0;
}

/* ---- one evaluation: score, prediction, recommendation, alerts into the batch */

static size_t key_hash(const char *k)
{
	size_t h = 1469598103934665603u;
	for (; *k; k++)
		h = (h ^ (unsigned char)*k) * 1099511628211u;
	return h;
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
		if (s->o.metrics && s->cur_event &&
		    health_metrics_note_event(s->o.metrics, r->key, s->cur_event, s->cur_len))
			return -ENOMEM;
	}
	char ts[40];
	time_format_rfc3339(r->time, ts, sizeof(ts));
	const char *rec = v->recommended ? health_action_name(v->e.best) : NULL;
	if (s->o.metrics)
		rc = health_metrics_set(s->o.metrics, r->key, r->score, r->status, v->p.probability,
					v->action, time_mono());
	if (rc)
		return rc;
	if (row_due(s, r, rec)) {
		json_t *pj = prediction_json(&v->p, &v->e, v->required, v->recommended);
		rc = pj ? 0 : -ENOMEM;
		rc = rc ? rc : append_score(s, r, ts);
		rc = rc ? rc : append_prediction(s, r, &v->p, ts, pj, rec);
		json_decref(pj);
		if (rc)
			return rc;
	}
	s->nrows++;
	for (size_t i = 0; i < v->nalerts && !rc; i++)
		rc = add_op(s, &v->alerts[i], r, &v->p, rec, ts);
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

static void record_offset(struct scorer *s, int32_t p, int64_t off)
{
	for (int i = 0; i < s->noffs; i++)
		if (s->offs[i].partition == p) {
			if (off + 1 > s->offs[i].next)
				s->offs[i].next = off + 1;
			return;
		}
	if (s->noffs < MAX_PARTS) {
		s->offs[s->noffs].partition = p;
		s->offs[s->noffs].next = off + 1;
		s->noffs++;
	}
}

static void take(struct scorer *s, rd_kafka_message_t *m)
{
	if (m->err) {
		if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			set_error(s, "kafka: %s", rd_kafka_message_errstr(m));
			log_warn("scorer: consumer: %s", rd_kafka_message_errstr(m));
		}
		return;
	}
	if (s->nrows == 0 && s->nops == 0 && s->noffs == 0)
		s->batch_started = time_mono();
	record_offset(s, m->partition, m->offset);
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
				 BAD_TELL_S, m->rkt ? rd_kafka_topic_name(m->rkt) : "?",
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
		atomic_store(&s->stop, true);
	}
}

/* ---- the database */

static void db_close(struct scorer *s)
{
	if (s->db)
		PQfinish(s->db);
	s->db = NULL;
	pthread_mutex_lock(&s->lock);
	s->st.db_connected = false;
	pthread_mutex_unlock(&s->lock);
}

/* Connects, creates the staging tables, and (once) reads the alerts left open. */
static int db_ensure(struct scorer *s)
{
	char err[512];
	if (s->db && PQstatus(s->db) == CONNECTION_OK && !s->reconnect)
		return 0;
	db_close(s);
	s->reconnect = false;
	s->db = pg_connect(s->conninfo, "gpuhealth-scorer", err, sizeof(err));
	if (!s->db) {
		set_error(s, "%s", err);
		return -EIO;
	}
	if (pg_session_read_only(s->db)) {
		/* a standby, or a primary fenced read-only: retried, like a server that is away */
		set_error(s,
			  "the database server at %s:%s (--db) is read-only (a standby, or "
			  "default_transaction_read_only on): list every host in --db and add "
			  "target_session_attrs=read-write",
			  PQhost(s->db), PQport(s->db));
		db_close(s);
		return -EIO;
	}
	if (pg_exec(s->db,
		    "CREATE TEMP TABLE IF NOT EXISTS scorer_scores (LIKE gpu_health_scores) "
		    "ON COMMIT DELETE ROWS; "
		    "CREATE TEMP TABLE IF NOT EXISTS scorer_predictions (LIKE gpu_failure_predictions) "
		    "ON COMMIT DELETE ROWS",
		    err, sizeof(err))) {
		set_error(s, "database not ready (%s): run 'gpuhealth db migrate'", err);
		db_close(s);
		return -EIO;
	}
	PGresult *rr = PQexec(s->db, "SELECT extract(epoch FROM value::interval) FROM "
				     "gpuhealth_settings WHERE key = 'retention'");
	if (PQresultStatus(rr) == PGRES_TUPLES_OK && PQntuples(rr) == 1 && !(s->o.max_age_s > 0))
		s->max_age_s = strtod(PQgetvalue(rr, 0, 0), NULL);
	PQclear(rr);
	/* alerts.namespace/pod/container: schema 013 */
	rr = PQexec(s->db, "SELECT 1 FROM pg_attribute WHERE attrelid = 'alerts'::regclass AND "
			   "attname = 'pod' AND NOT attisdropped");
	s->has_alert_workload = PQresultStatus(rr) == PGRES_TUPLES_OK && PQntuples(rr) == 1;
	PQclear(rr);
	/* fleet_gpu_now, fleet_host_now: schema 14 */
	rr = PQexec(s->db, "SELECT to_regprocedure('gpuhealth_fleet_now_merge(text[])') IS NOT NULL");
	s->has_fleet_now = PQresultStatus(rr) == PGRES_TUPLES_OK && PQntuples(rr) == 1 &&
			   PQgetvalue(rr, 0, 0)[0] == 't';
	PQclear(rr);
	if (!s->has_alert_workload)
		log_warn("scorer: the database schema is older than version 13: alerts are stored "
			 "without their workload; run 'gpuhealth db migrate'");
	if (!s->alerts_loaded) {
		PGresult *r = PQexecParams(s->db,
					   "SELECT gpu_key, kind, severity, hostname, message, details::text, "
					   "extract(epoch FROM raised_at) FROM alerts WHERE cleared_at IS NULL "
					   "AND kind IN ($1, $2)",
					   2, NULL, (const char *const[]){KIND_HEALTH, KIND_RISK}, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			set_error(s, "reading open alerts: %s", PQresultErrorMessage(r));
			PQclear(r);
			db_close(s);
			return -EIO;
		}
		for (int i = 0; i < PQntuples(r); i++) {
			const char *kind = strcmp(PQgetvalue(r, i, 1), KIND_RISK) == 0 ? KIND_RISK : KIND_HEALTH;
			enum health_status sev = strcmp(PQgetvalue(r, i, 2), "fail") == 0 ? HEALTH_FAIL
											      : HEALTH_WARN;
			health_engine_restore_alert(s->engine, PQgetvalue(r, i, 0), kind, sev);
			if (s->am && alertmanager_restore(s->am, PQgetvalue(r, i, 0), kind,
							  sev == HEALTH_FAIL, atof(PQgetvalue(r, i, 6)),
							  PQgetvalue(r, i, 3), PQgetvalue(r, i, 4),
							  PQgetisnull(r, i, 5) ? NULL : PQgetvalue(r, i, 5)))
				log_warn("scorer: out of memory: an open alert is not re-sent to Alertmanager");
		}
		if (PQntuples(r))
			log_info("scorer: %d alert(s) open in the database", PQntuples(r));
		PQclear(r);
		s->alerts_loaded = true;
	}
	pthread_mutex_lock(&s->lock);
	s->st.db_connected = true;
	s->st.open_alerts = health_engine_open_alerts(s->engine);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int check(struct scorer *s, PGresult *r, const char *what)
{
	ExecStatusType st = PQresultStatus(r);
	int rc = 0;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		set_error(s, "%s: %s", what, PQresultErrorMessage(r));
		rc = -EIO;
		if (pg_sqlstate_reconnect(PQresultErrorField(r, PG_DIAG_SQLSTATE)))
			s->reconnect = true; /* e.g. the server is read-only now: another */
	}
	PQclear(r);
	return rc;
}

static int copy_in(struct scorer *s, const char *sql, const struct strbuf *b)
{
	PGresult *r = PQexec(s->db, sql);
	if (PQresultStatus(r) != PGRES_COPY_IN)
		return check(s, r, "COPY");
	PQclear(r);
	for (size_t off = 0; off < b->len;) {
		size_t n = b->len - off > (1u << 20) ? (1u << 20) : b->len - off;
		if (PQputCopyData(s->db, b->data + off, (int)n) != 1) {
			set_error(s, "COPY: %s", PQerrorMessage(s->db));
			return -EIO;
		}
		off += n;
	}
	if (PQputCopyEnd(s->db, NULL) != 1) {
		set_error(s, "COPY end: %s", PQerrorMessage(s->db));
		return -EIO;
	}
	int rc = check(s, PQgetResult(s->db), "COPY");
	while ((r = PQgetResult(s->db)))
		PQclear(r);
	return rc;
}

static int write_op(struct scorer *s, const struct alert_op *op)
{
	char ts[40];
	time_format_rfc3339(op->time, ts, sizeof(ts));
	if (op->action == ALERT_CLEAR) {
		const char *p[3] = {op->key, op->kind, ts};
		return check(s,
			     PQexecParams(s->db,
					  "UPDATE alerts SET cleared_at = $3 WHERE gpu_key = $1 AND kind = $2 "
					  "AND cleared_at IS NULL",
					  3, NULL, p, NULL, NULL, 0),
			     "clearing an alert");
	}
	const char *p[10] = {op->key, op->host[0] ? op->host : NULL, op->kind,
			     health_status_name(op->sev), op->message, op->details, ts,
			     op->wl[0], op->wl[1], op->wl[2]};
	/* one open alert per GPU and kind (partial unique index): raising again updates it, and
	 * keeps the workload that held the GPU when the fault came */
	if (s->has_alert_workload)
		return check(s,
			     PQexecParams(s->db,
					  "INSERT INTO alerts (gpu_key, hostname, kind, severity, message, "
					  "details, raised_at, namespace, pod, container) VALUES ($1, $2, "
					  "$3, $4, $5, $6::jsonb, $7, $8, $9, $10) "
					  "ON CONFLICT (gpu_key, kind) WHERE cleared_at IS NULL DO UPDATE SET "
					  "severity = EXCLUDED.severity, message = EXCLUDED.message, "
					  "details = EXCLUDED.details",
					  10, NULL, p, NULL, NULL, 0),
			     "raising an alert");
	return check(s,
		     PQexecParams(s->db,
				  "INSERT INTO alerts (gpu_key, hostname, kind, severity, message, details, "
				  "raised_at) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) "
				  "ON CONFLICT (gpu_key, kind) WHERE cleared_at IS NULL DO UPDATE SET "
				  "severity = EXCLUDED.severity, message = EXCLUDED.message, "
				  "details = EXCLUDED.details",
				  7, NULL, p, NULL, NULL, 0),
		     "raising an alert");
}

/* The batch in one transaction. Returns 0 or -EIO (rolled back). */
static int db_write(struct scorer *s)
{
	int rc = db_ensure(s);
	if (rc)
		return rc;
	rc = check(s, PQexec(s->db, "BEGIN"), "BEGIN");
	if (!rc && s->nrows) {
		rc = copy_in(s,
			     "COPY scorer_scores (time, gpu_key, score, status, thermal, memory, power, "
			     "interconnect, xid, reasons) FROM STDIN",
			     &s->scores);
		rc = rc ? rc
			: check(s, PQexec(s->db, "INSERT INTO gpu_health_scores SELECT * FROM scorer_scores "
						 "ON CONFLICT DO NOTHING"),
				"scores");
		rc = rc ? rc
			: copy_in(s,
				  "COPY scorer_predictions (time, gpu_key, horizon_hours, probability, "
				  "model_version, reasons, recommendation) FROM STDIN",
				  &s->preds);
		rc = rc ? rc
			: check(s, PQexec(s->db, "INSERT INTO gpu_failure_predictions SELECT * FROM "
						 "scorer_predictions ON CONFLICT DO NOTHING"),
				"predictions");
		/* the newest state of these GPUs and their hosts for the console's overview
		 * (schema 14): a few index probes per GPU written, in the same transaction */
		rc = rc || !s->has_fleet_now
			? rc
			: check(s, PQexec(s->db, "SELECT gpuhealth_fleet_now_merge(array(SELECT DISTINCT "
						 "gpu_key FROM scorer_scores))"),
				"the fleet's newest state");
	}
	for (size_t i = 0; !rc && i < s->nops; i++)
		rc = write_op(s, &s->ops[i]);
	rc = rc ? rc : check(s, PQexec(s->db, "COMMIT"), "COMMIT");
	if (rc) {
		if (s->db && PQstatus(s->db) == CONNECTION_OK && !s->reconnect)
			PQclear(PQexec(s->db, "ROLLBACK"));
		if (s->db && (PQstatus(s->db) != CONNECTION_OK || s->reconnect))
			db_close(s);
	}
	return rc;
}

static void batch_clear(struct scorer *s)
{
	strbuf_reset(&s->scores);
	strbuf_reset(&s->preds);
	for (size_t i = 0; i < s->nops; i++)
		op_free(&s->ops[i]);
	s->nops = 0;
	s->nrows = 0;
	s->noffs = 0;
}

/* Sleeps for the attempt's backoff unless stopping past the deadline. Returns false to give up. */
static bool backoff(struct scorer *s, int attempt, double deadline)
{
	double d = BACKOFF_MIN_S * (double)(1u << (attempt < 6 ? attempt : 6));
	if (d > BACKOFF_MAX_S)
		d = BACKOFF_MAX_S;
	double until = time_mono() + d;
	while (time_mono() < until) {
		if (atomic_load(&s->stop) && (time_mono() >= deadline || atomic_load(&s->stop_now)))
			return false;
		if (s->producer)
			rd_kafka_poll(s->producer, 0);
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
	}
	return !(atomic_load(&s->stop) && (time_mono() >= deadline || atomic_load(&s->stop_now)));
}

static void announce(struct scorer *s, struct alert_op *op)
{
	if (s->producer && op->body) {
		for (int tries = 0; tries < 50; tries++) {
			rd_kafka_resp_err_t e = rd_kafka_producev(
				s->producer, RD_KAFKA_V_TOPIC(s->alerts_topic),
				RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
				RD_KAFKA_V_KEY(op->key, strlen(op->key)),
				RD_KAFKA_V_VALUE(op->body, strlen(op->body)), RD_KAFKA_V_END);
			if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
				break;
			if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
				STAT_ADD(s, alerts_produce_failed, 1);
				log_warn("scorer: cannot produce an alert: %s", rd_kafka_err2str(e));
				break;
			}
			rd_kafka_poll(s->producer, 100);
		}
	}
	if (s->hook && op->body && webhook_post(s->hook, op->body, strlen(op->body)))
		log_warn("scorer: out of memory queueing a webhook");
	if (s->am && op->am) {
		alertmanager_post(s->am, op->am); /* the sender owns it now */
		op->am = NULL;
	}
}

static void store_offsets(struct scorer *s)
{
	if (!s->noffs)
		return;
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(s->noffs);
	for (int i = 0; i < s->noffs; i++)
		rd_kafka_topic_partition_list_add(l, s->topic, s->offs[i].partition)->offset = s->offs[i].next;
	rd_kafka_resp_err_t e = rd_kafka_offsets_store(s->consumer, l);
	if (e)
		log_debug("scorer: offsets not stored: %s", rd_kafka_err2str(e));
	rd_kafka_topic_partition_list_destroy(l);
}

/* Ends the batch: the transaction (retried while the database is away), then the offsets,
 * then the alert announcements. When stopping, gives up after the deadline: nothing stored,
 * so Kafka redelivers it. */
static int flush(struct scorer *s)
{
	if (!s->nrows && !s->nops && !s->noffs)
		return 0;
	double deadline = time_mono() + STOP_DEADLINE_S;
	int attempt = 0;
	if (s->scores.overflow || s->preds.overflow) {
		log_error("scorer: a batch outgrew its buffers");
		goto abandon;
	}
	if (s->nrows || s->nops) {
		double told = 0;
		while (db_write(s)) {
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
	store_offsets(s); /* only now: the batch is durable */
	uint64_t raised = 0, cleared = 0;
	for (size_t i = 0; i < s->nops; i++) {
		announce(s, &s->ops[i]);
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

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct scorer *s = opaque;
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		log_info("scorer: assigned %d partition(s) of %s", parts->cnt, s->topic);
		rd_kafka_assign(rk, parts);
	} else {
		flush(s); /* finish what we hold before the partitions move on */
		log_info("scorer: partitions revoked");
		rd_kafka_assign(rk, NULL);
	}
}

static void update_webhook_stats(struct scorer *s)
{
	if (s->hook) {
		struct webhook_stats w;
		webhook_stats(s->hook, &w);
		pthread_mutex_lock(&s->lock);
		s->st.webhook_sent = w.sent;
		s->st.webhook_failed = w.failed;
		s->st.webhook_dropped = w.dropped;
		pthread_mutex_unlock(&s->lock);
	}
	if (s->am) {
		struct alertmanager_stats a;
		alertmanager_stats(s->am, &a);
		pthread_mutex_lock(&s->lock);
		s->st.am_sent = a.sent;
		s->st.am_failed = a.failed;
		s->st.am_dropped = a.dropped;
		s->st.am_pending = a.pending;
		pthread_mutex_unlock(&s->lock);
	}
}

static void *scorer_main(void *arg)
{
	struct scorer *s = arg;
	int attempt = 0;
	while (!atomic_load(&s->stop) && db_ensure(s)) {
		if (attempt == 0)
			log_warn("scorer: %s; retrying", s->st.last_error);
		backoff(s, attempt++, 0);
	}
	if (!atomic_load(&s->stop))
		log_info("scorer: connected to PostgreSQL");
	double last_stats = 0;
	while (!atomic_load(&s->stop)) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(s->consumer, 100);
		if (m) {
			take(s, m);
			rd_kafka_message_destroy(m);
		}
		if (s->producer)
			rd_kafka_poll(s->producer, 0);
		double now = time_mono();
		if (s->nrows >= (size_t)s->o.batch_size || s->scores.len >= COPY_MAX_BYTES / 4 ||
		    ((s->nrows || s->nops || s->noffs) && now - s->batch_started >= s->o.batch_timeout_s))
			flush(s);
		if (now - last_stats >= 0.5) {
			update_webhook_stats(s);
			last_stats = now;
		}
	}
	flush(s);
	rd_kafka_resp_err_t e = rd_kafka_commit(s->consumer, NULL, 0);
	if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
		log_warn("scorer: final offset commit: %s", rd_kafka_err2str(e));
	rd_kafka_consumer_close(s->consumer);
	if (s->producer) {
		rd_kafka_flush(s->producer, 10000);
		int left = rd_kafka_outq_len(s->producer);
		if (left)
			log_warn("scorer: %d alert message(s) not delivered to Kafka at stop", left);
	}
	db_close(s);
	update_webhook_stats(s);
	pthread_mutex_lock(&s->lock);
	s->st.running = false;
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static char *dup_or_null(const char *p) { return p && *p ? strdup(p) : NULL; }

int scorer_create(struct scorer **out, const struct scorer_options *o, char *err, size_t errlen)
{
	int rc = -ENOMEM;
	rd_kafka_conf_t *conf = NULL;
	const char **all = NULL;
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
	s->o.brokers = s->o.topic = s->o.group = s->o.alerts_topic = s->o.conninfo = NULL;
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

	char grp[300];
	snprintf(grp, sizeof(grp), "group.id=%s", s->group);
	const char *base[] = {grp, "max.poll.interval.ms=3600000", "enable.partition.eof=false",
			      "statistics.interval.ms=0"};
	size_t nall = 4 + o->nkafka_props;
	rc = -ENOMEM;
	all = calloc(nall, sizeof(*all));
	if (!all)
		goto fail;
	memcpy(all, base, sizeof(base));
	for (size_t i = 0; i < o->nkafka_props; i++)
		all[4 + i] = o->kafka_props[i];
	rc = -EINVAL;
	conf = kafka_conf_new(KAFKA_CONSUMER, s->brokers, all, nall, err, errlen);
	if (!conf)
		goto fail;
	rd_kafka_conf_set_opaque(conf, s);
	rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
	rd_kafka_conf_set_error_cb(conf, kafka_error_cb);
	char why[512];
	s->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
	if (!s->consumer) {
		snprintf(err, errlen, "cannot create the Kafka consumer: %s", why);
		goto fail;
	}
	conf = NULL; /* owned by the consumer now */
	rd_kafka_poll_set_consumer(s->consumer);

	if (s->alerts_topic) {
		conf = kafka_conf_new(KAFKA_PRODUCER, s->brokers, o->kafka_props, o->nkafka_props, err,
				      errlen);
		if (!conf)
			goto fail;
		rd_kafka_conf_set_opaque(conf, s);
		rd_kafka_conf_set_dr_msg_cb(conf, alert_dr_cb);
		rd_kafka_conf_set_error_cb(conf, kafka_error_cb);
		s->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
		if (!s->producer) {
			snprintf(err, errlen, "cannot create the alert producer: %s", why);
			goto fail;
		}
		conf = NULL;
	}
	rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(sub, s->topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t e = rd_kafka_subscribe(s->consumer, sub);
	rd_kafka_topic_partition_list_destroy(sub);
	if (e) {
		snprintf(err, errlen, "cannot subscribe to %s: %s", s->topic, rd_kafka_err2str(e));
		goto fail;
	}
	free(all);
	*out = s; /* caller owns */
	return 0;
fail:
	free(all);
	if (conf)
		rd_kafka_conf_destroy(conf);
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory creating the scorer");
	scorer_destroy(s);
	return rc;
}

int scorer_start(struct scorer *s)
{
	pthread_mutex_lock(&s->lock);
	s->st.running = true;
	pthread_mutex_unlock(&s->lock);
	int rc = pthread_create(&s->thread, NULL, scorer_main, s);
	if (rc) {
		s->st.running = false;
		return -rc;
	}
	s->started = true;
	return 0;
}

void scorer_stop_now(struct scorer *s)
{
	if (!s)
		return;
	atomic_store(&s->stop_now, true);
	scorer_stop(s);
}

void scorer_stop(struct scorer *s)
{
	if (!s || !s->started)
		return;
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	s->started = false;
}

void scorer_stats(struct scorer *s, struct scorer_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->st;
	pthread_mutex_unlock(&s->lock);
}

void scorer_destroy(struct scorer *s)
{
	if (!s)
		return;
	scorer_stop(s);
	batch_clear(s);
	free(s->ops);
	for (size_t i = 0; i < s->capwritten; i++)
		free(s->written[i].key);
	free(s->written);
	strbuf_free(&s->scores);
	strbuf_free(&s->preds);
	if (s->consumer)
		rd_kafka_destroy(s->consumer);
	if (s->producer)
		rd_kafka_destroy(s->producer);
	webhook_destroy(s->hook);
	alertmanager_destroy(s->am);
	if (s->curl_inited)
		curl_global_cleanup();
	db_close(s);
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
