#include "sink/sink.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus/consumer.h"
#include "bus/sender.h"
#include "core/errmsg.h"
#include "core/event_check.h"
#include "core/grow.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "core/timeutil.h"
#include "sink/event_row.h"
#include "sink/rollup.h"
#include "sink/sink_db.h"
#include "sink/sink_dlq.h"
#include "sink/sink_gpus.h"
#include "sink/sink_int.h"
#include "sink/sink_queue.h"
#include "sink/sink_upkeep.h"
#include "sink/workloads.h"

#define ROWS_MAX_BYTES   (256u << 20) /* hard bound of one batch's COPY text */
#define ROWS_FLUSH_BYTES (64u << 20)  /* flush early past this */
#define BACKOFF_MIN_S    0.5
#define BACKOFF_MAX_S    30.0

void sink_set_error(struct sink *s, const char *fmt, ...)
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

/* The consumer's and the dead-letter sender's errors: a fatal one stops the sink. */
static void kafka_error(void *ctx, bool fatal, const char *text)
{
	struct sink *s = ctx;
	sink_set_error(s, "%s", text);
	if (!fatal)
		return;
	pthread_mutex_lock(&s->lock);
	s->st.failed = true;
	pthread_mutex_unlock(&s->lock);
	atomic_store(&s->w.stop, true);
}

/* Sets partition p's acked offset (with s->lock held): always when store, else only when
 * none is known yet (the first offset read since the assignment). */
void sink_acked_set(struct sink *s, int32_t p, int64_t off, bool store)
{
	for (int i = 0; i < s->nacked; i++)
		if (s->acked[i].partition == p) {
			if (store)
				s->acked[i].acked = off;
			return;
		}
	if (s->nacked < SINK_MAX_PARTS) {
		s->acked[s->nacked].partition = p;
		s->acked[s->nacked++].acked = off;
	}
}

static void record_offset(struct sink *s, struct batch *b, int32_t p, int64_t off)
{
	if (!bus_offsets_note(&b->offs, p, off))
		return;
	/* a partition new to this batch (not per message): the group's position, if unknown */
	pthread_mutex_lock(&s->lock);
	sink_acked_set(s, p, off, false);
	pthread_mutex_unlock(&s->lock);
}

static void poll_dlq(void *ctx)
{
	struct sink *s = ctx;
	sender_poll(s->dlq, 0);
}

/* Sleeps a backoff step with jitter, the dead letters' reports served meanwhile. Returns false
 * when stopping past the deadline (or stopping now). */
bool sink_backoff(struct sink *s, int attempt, double deadline)
{
	return worker_backoff(&s->w, attempt, BACKOFF_MIN_S, BACKOFF_MAX_S, deadline, poll_dlq, s);
}

/* consumer_hooks.take: the message into the filling batch, as a row or a dead letter. */
static void take(void *ctx, struct bus_msg *m)
{
	struct sink *s = ctx;
	struct batch *b = s->fill;
	if (grow_array((void **)&b->items, &b->capitems, b->nitems + 1, sizeof(*b->items), 1024)) {
		/* Not acknowledged: redelivered after a restart. */
		log_error("sink: out of memory holding a batch");
		bus_msg_free(m);
		atomic_store(&s->w.stop, true);
		return;
	}
	if (b->nitems == 0)
		b->batch_started = time_mono();
	struct item *it = &b->items[b->nitems++];
	memset(it, 0, sizeof(*it));
	it->m = *m; /* the batch owns it now */
	record_offset(s, b, m->partition, m->offset);
	atomic_fetch_add_explicit(&s->consumed, 1, memory_order_relaxed); /* no lock per message */

	/* the wall clock as tick() last read it (at most TICK_EVERY_S and one consumer poll
	 * ago): it bounds ages of days and clock skews of seconds */
	struct event_row_opts o = {.now = s->wall_now,
	                           .max_age_s = s->retention_s,
	                           .max_future_s = s->max_future_s,
	                           .workload = &s->wl_text};
	struct event_row_info info;
	char reason[256];
	it->row_off = b->rows.len;
	it->ident_off = b->idents.len;
	int rc = event_row_append(m->payload, m->len, &o, &b->rows, &b->idents, &info, reason,
	                          sizeof(reason));
	if (rc == 0) {
		it->row_len = b->rows.len - it->row_off;
		it->ident_len = b->idents.len - it->ident_off;
		it->time = info.time;
		char key[256];
		sink_gpus_ident_key(b->idents.data + it->ident_off, it->ident_len, key,
		                    sizeof(key));
		if (sink_gpus_seen_add(b, key, info.time, it->ident_off, it->ident_len, &it->gpu) ||
		    workload_runs_add(b->wl_runs, info.gpu_key, s->wl_text.data ? s->wl_text.data : "",
		                      s->wl_text.len, info.time)) {
			log_error("sink: out of memory");
			atomic_store(&s->w.stop, true);
		}
		if (b->roll_ok && rollup_add(b->roll, b->rows.data + it->row_off, it->row_len))
			b->roll_ok = false; /* the database computes them instead */
		if (b->nrows == 0 || info.time < b->tmin)
			b->tmin = info.time;
		if (b->nrows == 0 || info.time > b->tmax)
			b->tmax = info.time;
		b->nrows++;
		return;
	}
	if (rc != -EINVAL)
		snprintf(reason, sizeof(reason), "cannot hold the row: %s", strerror(-rc));
	it->reason = strdup(reason);
	if (!it->reason) {
		log_error("sink: out of memory");
		atomic_store(&s->w.stop, true);
	}
}

/* consumer_hooks.assigned: reading starts again from the committed offsets, so what was given
 * up is read again: offsets may be stored again. */
static void assigned(void *ctx, const int32_t *parts, int n)
{
	(void)parts;
	(void)n;
	struct sink *s = ctx;
	atomic_store(&s->abandoned, false);
	pthread_mutex_lock(&s->lock);
	s->nacked = 0;
	pthread_mutex_unlock(&s->lock);
}

/* consumer_hooks.revoked: what is held for these partitions is written before they move on. */
static void revoked(void *ctx)
{
	struct sink *s = ctx;
	if (s->writers_up)
		sink_queue_drain(s);
}

static void update_lag(struct sink *s)
{
	struct bus_position pos[SINK_MAX_PARTS];
	int n = consumer_positions(s->consumer, pos, SINK_MAX_PARTS);
	if (n < 0)
		return;
	int64_t total = 0;
	bool known = n > 0;
	pthread_mutex_lock(&s->lock);
	s->st.nparts = 0;
	for (int i = 0; i < n; i++) {
		int64_t lo = pos[i].low, hi = pos[i].high, at = pos[i].position;
		/* the group's lag: from what is committed (or stored to be), not from what was read
		 */
		for (int j = 0; j < s->nacked; j++)
			if (s->acked[j].partition == pos[i].partition && s->acked[j].acked >= 0)
				at = s->acked[j].acked;
		int64_t lag = -1;
		if (hi >= 0 && at >= 0)
			lag = hi - at;
		else if (hi >= 0 && lo >= 0 && at < 0)
			lag = hi - lo;
		if (lag < 0)
			known = false;
		else
			total += lag;
		s->st.parts[i].partition = pos[i].partition;
		s->st.parts[i].offset = at;
		s->st.parts[i].lag = lag;
		s->st.nparts++;
	}
	s->st.lag_total = known ? total : -1;
	double now = time_mono();
	/* over 10 s: batches commit every few seconds, so a 1 s window reads as bursts and zeros */
	if (now - s->rate_t >= 10.0) {
		s->st.rows_per_s = (double)(s->st.rows_written - s->rate_rows) / (now - s->rate_t);
		s->rate_rows = s->st.rows_written;
		s->rate_t = now;
	}
	pthread_mutex_unlock(&s->lock);
}

/* The dead-letter producer is polled (its delivery reports served) and the wall clock read
 * at most this often, not once per message: at 100,000+ messages/s the two cost more than
 * the rest of the loop. An idle loop still runs every POLL_MS of the consumer. */
#define TICK_EVERY_S 0.005

/* consumer_hooks.tick: the dead letters' reports and the wall clock every TICK_EVERY_S, the
 * lag once a second. */
static void tick(void *ctx, double now)
{
	struct sink *s = ctx;
	if (now - s->last_poll >= TICK_EVERY_S || now < s->last_poll) {
		sender_poll(s->dlq, 0);
		s->wall_now = time_now();
		s->last_poll = now;
	}
	if (now - s->last_lag >= 1.0) {
		update_lag(s);
		s->last_lag = now;
	}
}

/* consumer_hooks.due: the filling batch is full, too large, or old enough. */
static bool due(void *ctx, double now)
{
	struct sink *s = ctx;
	const struct batch *b = s->fill;
	return b->nitems >= (size_t)s->batch_size || b->rows.len >= ROWS_FLUSH_BYTES ||
	       (b->nitems && now - b->batch_started >= s->batch_timeout_s);
}

/* consumer_hooks.flush: the filling batch to the writers. */
static void flush(void *ctx)
{
	sink_queue_handoff(ctx);
}

static void *sink_main(void *arg)
{
	struct sink *s = arg;
	int attempt = 0;
	const int w = 0; /* the first writer's connection, until the writers start */
	while (!worker_stopping(&s->w) && sink_db_ensure(s, w)) {
		if (attempt == 0)
			log_warn("sink: %s; retrying", s->st.last_error);
		sink_backoff(s, attempt++, 0);
	}
	if (!worker_stopping(&s->w)) {
		log_info("sink: connected to PostgreSQL; retention %.0f s", s->retention_s);
		sink_upkeep_partitions(s);
		s->last_maint = time_mono();
	}
	/* From here on the connections belong to the writer threads, one each. */
	bool all = sink_queue_start(s);
	if (!all) {
		sink_set_error(s, "cannot start the writer threads");
		pthread_mutex_lock(&s->lock);
		s->st.failed = true;
		pthread_mutex_unlock(&s->lock);
		atomic_store(&s->w.stop, true);
	}
	s->writers_up = all;
	s->last_lag = 0;
	s->last_poll = time_mono();
	s->wall_now = time_now();
	consumer_run(s->consumer, &s->w.stop);
	update_lag(s); /* fresh for the writer's last pipeline_stats row */
	if (s->writers_up)
		sink_queue_drain(s);
	s->writers_up = false;
	sink_queue_stop(s);
	consumer_close(s->consumer);
	sender_flush(s->dlq, 10000);
	for (int i = 0; i < WRITERS; i++)
		sink_db_close(s, i);
	update_lag(s);
	pthread_mutex_lock(&s->lock);
	s->st.running = false;
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static char *dup_or_null(const char *p)
{
	return p ? strdup(p) : NULL;
}

void sink_destroy(struct sink *s)
{
	if (!s)
		return;
	sink_stop(s);
	for (int i = 0; i < NBATCH; i++) {
		struct batch *b = &s->batches[i];
		sink_queue_clear(b);
		free(b->items);
		strbuf_free(&b->rows);
		strbuf_free(&b->idents);
		strbuf_free(&b->ident_copy);
		strbuf_free(&b->roll_copy);
		rollup_destroy(b->roll);
		workload_runs_destroy(b->wl_runs);
		free(b->seen);
		free(b->sent);
		free(b->by_gpu);
		free(b->gpu_off);
	}
	consumer_destroy(s->consumer);
	sender_destroy(s->dlq);
	for (int i = 0; i < WRITERS; i++) {
		sink_db_close(s, i);
		pgconn_destroy(s->pg[i]);
	}
	free(s->brokers);
	free(s->topic);
	free(s->group);
	free(s->dlq_topic);
	free(s->conninfo);
	sink_gpus_forget(s);
	strbuf_free(&s->idle.ident_copy);
	strbuf_free(&s->idle.touch_keys);
	strbuf_free(&s->idle.touch_times);
	free(s->idle.sent);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->glock);
	pthread_mutex_destroy(&s->rlock);
	rollup_destroy(s->open);
	workloads_destroy(s->workloads);
	strbuf_free(&s->wl_text);
	strbuf_free(&s->close_copy);
	pthread_mutex_destroy(&s->wlock);
	pthread_cond_destroy(&s->wcond);
	free(s);
}

int sink_create(struct sink **out, const struct sink_options *o, char *err, size_t errlen)
{
	int rc = -ENOMEM;
	struct sink *s = calloc(1, sizeof(*s));
	if (!s)
		goto fail;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->glock, NULL);
	pthread_mutex_init(&s->rlock, NULL);
	s->newest = -INFINITY;
	s->mark = INT64_MIN;
	strbuf_init(&s->close_copy, 0); /* as large as the fleet's open minutes */
	if (rollup_create(&s->open) || !(s->workloads = workloads_create()))
		goto fail;
	strbuf_init(&s->wl_text, 0);
	strbuf_init(&s->idle.ident_copy, ROWS_MAX_BYTES);
	strbuf_init(&s->idle.touch_keys, 0); /* as large as the fleet this sink knows */
	strbuf_init(&s->idle.touch_times, 0);
	pthread_mutex_init(&s->wlock, NULL);
	pthread_cond_init(&s->wcond, NULL);
	for (int i = 0; i < NBATCH; i++) {
		strbuf_init(&s->batches[i].rows, ROWS_MAX_BYTES);
		strbuf_init(&s->batches[i].idents, ROWS_MAX_BYTES);
		strbuf_init(&s->batches[i].ident_copy, ROWS_MAX_BYTES);
		strbuf_init(&s->batches[i].roll_copy, ROWS_MAX_BYTES);
		if (rollup_create(&s->batches[i].roll) ||
		    !(s->batches[i].wl_runs = workload_runs_create()))
			goto fail;
		s->batches[i].roll_ok = true;
	}
	s->fill = &s->batches[0];
	s->fill->state = B_FILLING;
	rc = -EINVAL;
	if (!o->brokers || !*o->brokers) {
		snprintf(
		    err, errlen,
		    "the sink needs Kafka: give --brokers HOST:PORT or KAFKA_BOOTSTRAP_SERVERS");
		goto fail;
	}
	if (o->batch_size < 1 || o->batch_timeout_s <= 0) {
		snprintf(err, errlen, "batch size and timeout must be positive");
		goto fail;
	}
	rc = -ENOMEM;
	s->brokers = strdup(o->brokers);
	s->topic = strdup(o->topic ? o->topic : "gpu-metrics-raw");
	s->group = strdup(o->group ? o->group : "gpuhealth-sink");
	s->dlq_topic = strdup(o->dlq_topic ? o->dlq_topic : "gpu-metrics-dlq");
	s->conninfo = dup_or_null(o->conninfo);
	if (!s->brokers || !s->topic || !s->group || !s->dlq_topic || (o->conninfo && !s->conninfo))
		goto fail;
	for (int i = 0; i < WRITERS; i++)
		if (!(s->pg[i] = pgconn_create(s->conninfo, "gpuhealth-sink")))
			goto fail;
	s->batch_size = o->batch_size;
	s->batch_timeout_s = o->batch_timeout_s;
	s->maintenance_s = o->maintenance_interval_s > 0 ? o->maintenance_interval_s : 600;
	s->max_future_s = o->max_future_s > 0 ? o->max_future_s : EVENT_CHECK_MAX_SKEW_S;
	s->retention_s = 7 * 86400;
	s->rate_t = time_mono();
	s->st.lag_total = -1;
	s->last_stats = -1e9; /* the first row as soon as the writer is idle */
	char host[256];
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	snprintf(s->instance, sizeof(s->instance), "%s:%ld", host, (long)getpid());

	/* The prefetch: librdkafka (2.0.x) stops fetching while its queue holds
	 * queued.min.messages or queued.max.messages.kbytes, and looks again only about once a
	 * second, so on a backlog the sink could take at most one queue's worth per second (the
	 * defaults: ~100,000 events, ~100,000 rows/s) and then waited for the next fetch with its
	 * writers idle. 256 MiB holds more than a second at the rate PostgreSQL takes them; it is
	 * filled only while catching up (a steady stream keeps it near empty). -X overrides. */
	static const char *const prefetch[] = {"queued.min.messages=10000000",
	                                       "queued.max.messages.kbytes=262144"};
	const struct consumer_options co = {.who = "sink",
	                                    .brokers = s->brokers,
	                                    .topic = s->topic,
	                                    .group = s->group,
	                                    .defaults = prefetch,
	                                    .ndefaults = sizeof(prefetch) / sizeof(prefetch[0]),
	                                    .kafka_props = o->kafka_props,
	                                    .nkafka_props = o->nkafka_props};
	const struct consumer_hooks hooks = {.ctx = s,
	                                     .take = take,
	                                     .tick = tick,
	                                     .due = due,
	                                     .flush = flush,
	                                     .assigned = assigned,
	                                     .revoked = revoked,
	                                     .error = kafka_error};
	rc = consumer_create(&s->consumer, &co, &hooks, err, errlen);
	if (rc)
		goto fail;
	/* every dead letter's report within DLQ_TIMEOUT_MS, so a batch never waits on the topic
	 * for ever (unless -X message.timeout.ms says otherwise) */
	rc = sender_create_beside(&s->dlq, &co, &hooks, DLQ_TIMEOUT_MS, sink_dlq_delivered, err,
	                          errlen);
	if (rc)
		goto fail;
	*out = s; /* caller owns */
	return 0;
fail:
	sink_destroy(s);
	return errmsg_oom(rc, err, errlen, "the sink");
}

int sink_start(struct sink *s)
{
	pthread_mutex_lock(&s->lock);
	s->st.running = true;
	pthread_mutex_unlock(&s->lock);
	int rc = worker_start(&s->w, sink_main, s);
	if (rc)
		s->st.running = false;
	return rc;
}

void sink_stop_now(struct sink *s)
{
	if (s)
		worker_stop(&s->w, true);
}

void sink_stop(struct sink *s)
{
	if (s)
		worker_stop(&s->w, false);
}

void sink_stats(struct sink *s, struct sink_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->st;
	pthread_mutex_unlock(&s->lock);
	out->consumed = atomic_load_explicit(&s->consumed, memory_order_relaxed);
}

int sink_describe(const struct sink *s, bool batches, char *buf, size_t len)
{
	if (!batches)
		return snprintf(buf, len, "consuming %s as group %s", s->topic, s->group);
	return snprintf(buf, len, "consuming %s as group %s, batches of up to %d rows or %.1f s",
	                s->topic, s->group, s->batch_size, s->batch_timeout_s);
}
