#include "bus/producer.h"

#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/journal.h"
#include "bus/kafka_conf.h"
#include "bus/record.h"
#include "bus/spool.h"
#include "core/log.h"
#include "core/timeutil.h"

/* ------------------------------------------------------------------ producer */

struct producer {
	rd_kafka_t *rk;        /* owned */
	rd_kafka_topic_t *rkt; /* owned */
	char *topic;           /* owned */
	_Atomic size_t buffer_events;     /* memory queue bounds: producer_set_buffer() */
	_Atomic uint64_t buffer_bytes;    /* 0: none */
	size_t max_event_bytes;           /* 0: none */
	_Atomic int64_t credit;           /* producer_set_credit(): -1 no bound, 0 hold */
	bool has_spool;
	struct spool spool;
	struct journal wal; /* with the spool */
	double flush_timeout_s, drop_log_s;
	bool closed;

	struct record_queue mem;   /* waiting for room in librdkafka, oldest first */
	struct record_queue retry; /* failed-not-persisted reports of this poll, in report order */
	struct producer_stats c; /* counters, this thread only */
	uint64_t drops_unlogged;
	uint64_t refused_unlogged;
	double last_drop_log;
	double last_err_log;
	uint64_t fail_unlogged;

	pthread_mutex_t lock; /* guards pub */
	struct producer_stats pub;
};

static void publish(struct producer *p)
{
	p->c.queued = p->mem.n;
	p->c.queued_bytes = p->mem.bytes;
	p->c.held = atomic_load(&p->credit) == 0;
	p->c.spool_events = p->has_spool ? p->spool.events : 0;
	p->c.spool_bytes = p->has_spool ? p->spool.bytes : 0;
	pthread_mutex_lock(&p->lock);
	p->pub = p->c;
	pthread_mutex_unlock(&p->lock);
}

static void set_error(struct producer *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct producer *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->c.last_error, sizeof(p->c.last_error), fmt, ap);
	va_end(ap);
}

/* Errors after which the message was certainly not written and producing it again is right. */
static bool retriable(rd_kafka_resp_err_t e)
{
	switch (e) {
	case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
	case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
	case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
	case RD_KAFKA_RESP_ERR__TIMED_OUT:
	case RD_KAFKA_RESP_ERR__TRANSPORT:
	case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
	case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
	case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
	case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
	case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
	case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
	case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
		return true;
	default:
		return false;
	}
}

static void settle(struct producer *p, struct record *r);
static void journal(struct producer *p, struct record *r);

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	struct producer *p = opaque;
	struct record *r = m->_private; /* ours again from here */
	p->c.in_flight--;
	p->c.in_flight_bytes -= record_bytes(r);
	if (!m->err) {
		p->c.delivered++;
		p->c.delivered_bytes += record_bytes(r);
		settle(p, r);
		free(r);
		return;
	}
	rd_kafka_msg_status_t st = rd_kafka_message_status(m);
	/* A purge at close may catch a message in flight: it is kept (spooled) even though the
	 * broker may have it, because a duplicate (time, GPU) is removed downstream and a loss is
	 * not. */
	if ((st == RD_KAFKA_MSG_STATUS_NOT_PERSISTED && retriable(m->err)) ||
	    m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
		if (m->err != RD_KAFKA_RESP_ERR__PURGE_QUEUE &&
		    m->err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
			p->c.retried++;
		record_queue_push(&p->retry, r);
		return;
	}
	p->c.failed++;
	p->fail_unlogged++;
	set_error(p, "delivery failed (%s): %s",
		  st == RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED ? "possibly persisted" : "not persisted",
		  rd_kafka_err2str(m->err));
	settle(p, r);
	free(r);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct producer *p = opaque;
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		char buf[256];
		rd_kafka_fatal_error(rk, buf, sizeof(buf));
		p->c.fatal = true;
		set_error(p, "kafka fatal error: %s", buf);
		log_error("producer: Kafka fatal error: %s; what is pending will be spooled", buf);
		return;
	}
	set_error(p, "kafka: %s", reason);
	double now = time_mono();
	if (now - p->last_err_log >= 30) {
		log_warn("producer: %s", reason);
		p->last_err_log = now;
	} else {
		log_debug("producer: %s", reason);
	}
}

static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	/* connection failures reach error_cb too, rate-limited there */
	if (level <= 4 && strcmp(fac, "FAIL") != 0)
		log_warn("producer: librdkafka %s: %s", fac, buf);
	else
		log_debug("producer: librdkafka %s: %s", fac, buf);
}

/* Hands r to librdkafka. Returns 0 (librdkafka owns it until the report), -ENOBUFS (queue full:
 * r is still the caller's), or -EIO (refused for good: r was freed and counted). */
static int hand_over(struct producer *p, struct record *r)
{
	rd_kafka_resp_err_t e = rd_kafka_producev(
		p->rk, RD_KAFKA_V_RKT(p->rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
		RD_KAFKA_V_MSGFLAGS(0), RD_KAFKA_V_KEY(r->data, r->klen),
		RD_KAFKA_V_VALUE(r->data + r->klen, r->vlen), RD_KAFKA_V_OPAQUE(r), RD_KAFKA_V_END);
	if (!e) {
		p->c.in_flight++;
		p->c.in_flight_bytes += record_bytes(r);
		if (atomic_load(&p->credit) > 0)
			atomic_fetch_sub(&p->credit, 1);
		return 0;
	}
	if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
		return -ENOBUFS;
	if (e == RD_KAFKA_RESP_ERR__FATAL)
		return -ENOBUFS; /* keep it: it is spooled at close */
	p->c.failed++;
	p->fail_unlogged++;
	set_error(p, "produce refused: %s (key %.*s)", rd_kafka_err2str(e), (int)r->klen, r->data);
	settle(p, r);
	free(r);
	return -EIO;
}

static void spool_error(struct producer *p, const char *what, int rc)
{
	p->c.spool_errors++;
	set_error(p, "spool %s: %s: %s", p->spool.dir, what, strerror(-rc));
	log_error("producer: spool %s: %s: %s", p->spool.dir, what, strerror(-rc));
}

static void journal(struct producer *p, struct record *r)
{
	if (!p->has_spool)
		return;
	int rc = journal_append(&p->wal, r);
	if (rc) {
		p->c.spool_errors++;
		set_error(p, "journal in %s: %s", p->spool.dir, strerror(-rc));
		log_error("producer: cannot write the journal in %s: %s (this event is not kept "
			  "across a crash)",
			  p->spool.dir, strerror(-rc));
	}
}

static void settle(struct producer *p, struct record *r)
{
	if (p->has_spool)
		journal_settle(&p->wal, r);
}

/* The memory queue is at one of its bounds (events or bytes). */
static bool mem_full(const struct producer *p)
{
	uint64_t maxb = atomic_load(&p->buffer_bytes);
	return p->mem.n >= atomic_load(&p->buffer_events) || (maxb && p->mem.bytes >= maxb);
}

static bool held(const struct producer *p) { return atomic_load(&p->credit) == 0; }

/* Moves events towards librdkafka: memory -> librdkafka, spool -> memory. */
static void feed(struct producer *p)
{
	for (;;) {
		while (p->mem.head && !p->c.fatal && !held(p)) {
			struct record *r = record_queue_pop(&p->mem);
			if (hand_over(p, r) == -ENOBUFS) {
				struct record_queue one = {r, r, 1, record_bytes(r)};
				record_queue_prepend(&p->mem, &one);
				break;
			}
		}
		if (!p->has_spool || !p->spool.events || mem_full(p))
			return;
		while (p->spool.events && !mem_full(p)) {
			struct record *r = NULL;
			uint64_t lost = 0;
			int rc = spool_pop(&p->spool, &r, &lost);
			if (rc) {
				p->c.dropped += lost;
				p->drops_unlogged += lost;
				spool_error(p, "reading back", rc);
				if (rc != -EBADMSG)
					return;
				continue;
			}
			if (!r)
				break;
			p->c.unspooled++;
			journal(p, r); /* out of the spool file, not yet in Kafka */
			record_queue_push(&p->mem, r);
		}
		if (p->c.fatal || held(p) || (p->mem.head && mem_full(p)))
			return;
	}
}

static void drop_oldest(struct producer *p)
{
	struct record *r = record_queue_pop(&p->mem);
	if (!r) {
		uint64_t lost = 0;
		if (p->has_spool && spool_pop(&p->spool, &r, &lost) != 0) {
			p->c.dropped += lost;
			p->drops_unlogged += lost;
		}
		if (!r)
			return;
	}
	settle(p, r);
	free(r);
	p->c.dropped++;
	p->drops_unlogged++;
}

int producer_send(struct producer *p, const char *key, size_t klen, const char *value, size_t vlen)
{
	if (p->closed)
		return -EPIPE;
	if (p->max_event_bytes && klen + vlen > p->max_event_bytes) {
		/* refused before produce: one event the broker cannot hold must not take others
		 * along (an in-process broker's log drops whole batches past its size) */
		p->c.refused++;
		p->refused_unlogged++;
		set_error(p, "event of %zu bytes refused: larger than the %zu the broker takes (key %.*s)",
			  klen + vlen, p->max_event_bytes, (int)(klen < 128 ? klen : 128), key);
		publish(p);
		return 0;
	}
	struct record *r = record_new(key, klen, value, vlen);
	if (!r)
		return -ENOMEM;
	p->c.produced++;
	journal(p, r);
	bool spooling = p->has_spool && p->spool.events > 0;
	if (!spooling && !p->mem.head && !p->c.fatal && !held(p)) {
		int rc = hand_over(p, r);
		if (rc != -ENOBUFS) {
			publish(p);
			return 0;
		}
	}
	if (!spooling && !mem_full(p)) {
		record_queue_push(&p->mem, r);
		publish(p);
		return 0;
	}
	if (p->has_spool) {
		uint64_t need = RECORD_HDR + (uint64_t)r->klen + r->vlen;
		/* past both bounds: drop the oldest; the memory queue takes the spool's oldest */
		while (p->spool.bytes + need > p->spool.max_bytes && (p->mem.head || p->spool.events)) {
			drop_oldest(p);
			if (!mem_full(p) && p->spool.events) {
				struct record *o = NULL;
				uint64_t lost = 0;
				int rc = spool_pop(&p->spool, &o, &lost);
				p->c.dropped += lost;
				p->drops_unlogged += lost;
				if (o) {
					p->c.unspooled++;
					journal(p, o);
					record_queue_push(&p->mem, o);
				} else if (rc && rc != -EBADMSG) {
					break;
				}
			}
		}
		if (p->spool.bytes + need <= p->spool.max_bytes) {
			int rc = spool_append(&p->spool, r);
			if (!rc) {
				p->c.spooled++;
				settle(p, r); /* its journal goes after the spool is flushed */
				free(r);
				publish(p);
				return 0;
			}
			spool_error(p, "writing", rc);
		}
		/* no room on disk at all (or a write error): keep it in memory over its bound
		 * rather than lose the newest event; the oldest makes room */
		if (mem_full(p))
			drop_oldest(p);
		record_queue_push(&p->mem, r);
		publish(p);
		return 0;
	}
	drop_oldest(p);
	while (p->mem.head && mem_full(p)) /* the byte bound may need more than one */
		drop_oldest(p);
	record_queue_push(&p->mem, r);
	publish(p);
	return 0;
}

void producer_set_credit(struct producer *p, int64_t events) { atomic_store(&p->credit, events); }

void producer_set_buffer(struct producer *p, size_t events, uint64_t bytes)
{
	if (events)
		atomic_store(&p->buffer_events, events);
	if (bytes)
		atomic_store(&p->buffer_bytes, bytes);
}

int producer_sync(struct producer *p)
{
	if (!p->has_spool)
		return 0;
	int rc = journal_sync(&p->wal);
	if (rc) {
		p->c.spool_errors++;
		set_error(p, "journal in %s: %s", p->spool.dir, strerror(-rc));
		log_error("producer: cannot write the journal in %s: %s", p->spool.dir,
			  strerror(-rc));
	}
	return rc;
}

static void log_losses(struct producer *p, bool force)
{
	double now = time_mono();
	if (!force && now - p->last_drop_log < p->drop_log_s)
		return;
	if (p->drops_unlogged) {
		log_warn("producer: buffer full (%zu events in memory, %" PRIu64
			 " spooled, %" PRIu64 " in librdkafka): dropped the %" PRIu64
			 " oldest events since the last report (%" PRIu64
			 " in all); raise --buffer-events or --spool-max, or give --spool-dir",
			 p->mem.n, p->has_spool ? p->spool.events : 0, p->c.in_flight, p->drops_unlogged,
			 p->c.dropped);
		p->drops_unlogged = 0;
		p->last_drop_log = now;
	}
	const struct {
		uint64_t *unlogged, total;
		const char *what;
	} lost[] = {{&p->refused_unlogged, p->c.refused, "refused"},
	            {&p->fail_unlogged, p->c.failed, "failed for good"}};
	for (size_t i = 0; i < sizeof(lost) / sizeof(lost[0]); i++) {
		if (!*lost[i].unlogged)
			continue;
		log_error("producer: %" PRIu64 " events %s since the last report (%" PRIu64
		          " in all); last: %s",
		          *lost[i].unlogged, lost[i].what, lost[i].total, p->c.last_error);
		*lost[i].unlogged = 0;
		p->last_drop_log = now;
	}
}

void producer_poll(struct producer *p, int timeout_ms)
{
	rd_kafka_poll(p->rk, timeout_ms);
	/* failed-not-persisted: oldest, produce again first */
	record_queue_prepend(&p->mem, &p->retry);
	if (!p->closed)
		feed(p);
	int rc = p->has_spool ? spool_flush(&p->spool) : 0;
	if (rc)
		spool_error(p, "writing", rc);
	if (p->has_spool) {
		producer_sync(p);
		journal_collect(&p->wal, &p->spool);
	}
	log_losses(p, false);
	publish(p);
}

static bool pending(const struct producer *p)
{
	return p->mem.n || p->retry.n || p->c.in_flight || (p->has_spool && p->spool.events);
}

int producer_flush(struct producer *p, double timeout_s)
{
	double until = time_mono() + timeout_s;
	while (pending(p) && !p->c.fatal) {
		double left = until - time_mono();
		if (left <= 0)
			return -ETIMEDOUT;
		producer_poll(p, left > 0.1 ? 100 : (int)(left * 1000) + 1);
	}
	return pending(p) ? -ETIMEDOUT : 0;
}

uint64_t producer_close(struct producer *p)
{
	if (p->closed)
		return 0;
	if (producer_flush(p, p->flush_timeout_s) == 0) {
		p->closed = true;
		if (p->has_spool)
			journal_remove_all(&p->wal); /* everything is delivered */
		log_losses(p, true);
		publish(p);
		return 0;
	}
	p->closed = true;
	/* Take back what librdkafka holds: each comes back through its report as purged. */
	rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	double until = time_mono() + 10;
	while (p->c.in_flight && time_mono() < until)
		producer_poll(p, 50);
	record_queue_prepend(&p->mem, &p->retry);
	uint64_t left = p->mem.n + (p->has_spool ? p->spool.events : 0);
	if (p->c.in_flight)
		log_error("producer: %" PRIu64 " events still in librdkafka after the purge: lost",
			  p->c.in_flight);
	if (p->has_spool) {
		uint64_t written = 0;
		int rc = spool_prepend(&p->spool, &p->mem, &written);
		if (rc) {
			spool_error(p, "writing the pending events at stop", rc);
			p->c.dropped += p->mem.n;
			log_error("producer: %zu pending events lost: the spool could not take them",
				  p->mem.n);
		} else {
			p->c.spooled += written;
			if (!p->c.in_flight) /* all of it is in the fsync'd spool now */
				journal_remove_all(&p->wal);
			log_info("producer: stopped with %" PRIu64 " events undelivered: %" PRIu64
				 " in the spool %s (%" PRIu64 " written now); they are sent on the "
				 "next start",
				 left, p->spool.events, p->spool.dir, written);
		}
	} else if (p->mem.n) {
		p->c.dropped += p->mem.n;
		log_error("producer: stopped with %zu events undelivered and no --spool-dir to keep "
			  "them: lost (counted as dropped)",
			  p->mem.n);
	}
	record_queue_free(&p->mem);
	log_losses(p, true);
	publish(p);
	return left;
}

void producer_stats(struct producer *p, struct producer_stats *out)
{
	pthread_mutex_lock(&p->lock);
	*out = p->pub;
	pthread_mutex_unlock(&p->lock);
}


/* journal_replay()'s hands: the journal's events are sent and synced like new ones. */
static int replay_send(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
	return producer_send(ud, key, klen, val, vlen);
}

static int replay_sync(void *ud)
{
	return producer_sync(ud);
}

void producer_destroy(struct producer *p)
{
	if (!p)
		return;
	if (p->rk)
		producer_close(p);
	if (p->rkt)
		rd_kafka_topic_destroy(p->rkt);
	if (p->rk)
		rd_kafka_destroy(p->rk);
	record_queue_free(&p->mem);
	record_queue_free(&p->retry);
	journal_free(&p->wal);
	if (p->has_spool || p->spool.dir)
		spool_close(&p->spool);
	pthread_mutex_destroy(&p->lock);
	free(p->topic);
	free(p);
}

int producer_create(struct producer **out, const struct producer_options *o, char *err,
		    size_t errlen)
{
	*out = NULL;
	int rc = -EINVAL;
	struct producer *p = NULL;
	if (!o->brokers || !*o->brokers) {
		snprintf(err, errlen, "no Kafka brokers: give --brokers HOST:PORT "
				      "(KAFKA_BOOTSTRAP_SERVERS), or --output - for standard output");
		goto fail;
	}
	if (!o->topic || !*o->topic) {
		snprintf(err, errlen, "--topic is empty: name the topic of the sample events");
		goto fail;
	}
	if (o->buffer_events < 1) {
		snprintf(err, errlen, "--buffer-events must be at least 1");
		goto fail;
	}
	rc = -ENOMEM;
	p = calloc(1, sizeof(*p));
	if (!p)
		goto fail;
	pthread_mutex_init(&p->lock, NULL);
	if (!(p->topic = strdup(o->topic)))
		goto fail;
	p->spool.rd_fd = -1;
	atomic_store(&p->buffer_events, o->buffer_events);
	atomic_store(&p->buffer_bytes, o->buffer_max_bytes);
	p->max_event_bytes = o->max_event_bytes;
	atomic_store(&p->credit, -1);
	p->flush_timeout_s = o->flush_timeout_s;
	p->drop_log_s = o->drop_log_interval_s > 0 ? o->drop_log_interval_s : 10;
	p->last_drop_log = -1e9;
	p->last_err_log = -1e9;

	/* Our defaults first, so that -X overrides any of them. */
	static const char *const defaults[] = {
		"message.timeout.ms=0", /* never give up on an event: we bound the buffer */
		"compression.codec=lz4",
		"partitioner=murmur2_random", /* the Java client's: same key, same partition */
		"linger.ms=50",
	};
	const struct kafka_client k = {
	    .role = KAFKA_PRODUCER,
	    .what = "producer",
	    .brokers = o->brokers,
	    .props = {defaults, o->kafka_props},
	    .nprops = {sizeof(defaults) / sizeof(defaults[0]), o->nkafka_props},
	    .opaque = p,
	    .dr_msg_cb = dr_cb,
	    .error_cb = error_cb,
	    .log_cb = kafka_log_cb,
	};
	if ((rc = kafka_client_new(&p->rk, &k, err, errlen)) != 0)
		goto fail;
	rc = -EINVAL;
	p->rkt = rd_kafka_topic_new(p->rk, p->topic, NULL);
	if (!p->rkt) {
		snprintf(err, errlen, "cannot use topic '%s': %s", p->topic,
			 rd_kafka_err2str(rd_kafka_last_error()));
		goto fail;
	}
	if (o->spool_dir && *o->spool_dir) {
		uint64_t damaged = 0;
		rc = spool_open(&p->spool, o->spool_dir, o->spool_max_bytes, &damaged, err, errlen);
		if (rc)
			goto fail;
		p->has_spool = true;
		p->c.spool_errors = damaged;
		if (p->spool.events)
			log_info("producer: %" PRIu64 " events (%.1f MiB) in the spool %s from an earlier "
				 "run: they are sent first",
				 p->spool.events, (double)p->spool.bytes / 1048576.0, o->spool_dir);
		p->wal.dir = p->spool.dir;
		uint64_t moved = 0;
		rc = journal_replay(&p->wal, replay_send, replay_sync, p, &moved, err, errlen);
		p->c.spool_errors += moved;
		if (rc)
			goto fail;
	}
	publish(p);
	*out = p; /* caller owns */
	return 0;
fail:
	producer_destroy(p);
	return rc;
}

int producer_spool_scan(const char *dir,
			int (*cb)(const char *key, size_t klen, const char *val, size_t vlen,
				  void *ud),
			void *ud)
{
	return spool_scan(dir, cb, ud);
}
