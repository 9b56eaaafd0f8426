/*
 * producer: the collector's Kafka producer, built so that a broker outage loses nothing.
 *
 * librdkafka is set up as an idempotent producer (acks=all), lz4 compression, the murmur2
 * partitioner (the Java client's: one GPU's key always lands in one partition, in order), and
 * message.timeout.ms=0 (librdkafka never gives up on a message by itself). Every -X property
 * is applied after these defaults and wins.
 *
 * Where an event waits, oldest first:
 *
 *   librdkafka's queue  <-  the memory queue  <-  the disk spool  <-  producer_send()
 *   (queue.buffering.     (buffer_events        (spool_dir, up to
 *    max.messages)          events)               spool_max bytes)
 *
 * An event is handed to librdkafka without a copy and kept until its delivery report: delivered
 * events are freed and counted; a report that says failed and not persisted (a timeout set by
 * -X, a purge at stop) puts the event back at the head of the memory queue to be produced again;
 * any other failure is counted and logged. When the memory queue is full, new events go to the
 * spool: append-only segment files replayed in order when there is room again. When the spool
 * is full too (or there is none), the oldest waiting event is dropped, counted, and the drops
 * are logged at most once per drop_log_interval_s. On close, what is pending is flushed for
 * flush_timeout_s, then librdkafka's queue is purged and everything left is written to the
 * spool as its oldest segment (with no spool it is counted as dropped and logged).
 *
 * With a spool, every accepted event is also appended to a journal in the spool directory
 * until it is settled (delivered, failed, dropped, or in the spool file): a run killed by
 * SIGKILL loses nothing it accepted; the next start sends the journal's events again (some
 * may be duplicates, which the sink removes by (GPU, time)).
 *
 * Threads: one thread drives a producer (send, poll, flush, close); producer_stats() may be
 * called from any thread.
 *
 * Its parts: record.h (an event in memory, the queues, the files' record format), spool.h (the
 * disk spool), journal.h (the journal); producer.c ties them to librdkafka.
 */
#ifndef GPUHEALTH_PRODUCER_H
#define GPUHEALTH_PRODUCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct producer_options {
	const char *brokers;            /* bootstrap servers (required) */
	const char *topic;              /* required */
	const char *const *kafka_props; /* "key=value" librdkafka overrides (-X), applied last */
	size_t nkafka_props;
	size_t buffer_events;           /* memory queue bound in events, >= 1 */
	const char *spool_dir;          /* NULL or "": no spool */
	uint64_t spool_max_bytes;       /* disk bound of the spool (with spool_dir) */
	double flush_timeout_s;         /* producer_close(): how long to wait for deliveries */
	double drop_log_interval_s;     /* drops are logged at most this often (0: 10 s) */
	uint64_t buffer_max_bytes;      /* memory queue bound in key + value bytes (0: none) */
	size_t max_event_bytes;         /* a larger event (key + value) is refused before produce
					   and counted in refused (0: no bound) */
};

struct producer_stats {
	uint64_t produced;       /* events accepted by producer_send() */
	uint64_t delivered;      /* delivery reports: persisted by the broker */
	uint64_t failed;         /* delivery reports: failed for good (logged) */
	uint64_t retried;        /* failed but not persisted: produced again */
	uint64_t dropped;        /* oldest events dropped past the bounds, or lost at close */
	uint64_t refused;        /* larger than max_event_bytes: refused before produce (logged) */
	uint64_t delivered_bytes; /* key + value bytes of the delivered events */
	uint64_t in_flight_bytes; /* key + value bytes in librdkafka */
	uint64_t queued_bytes;    /* key + value bytes in the memory queue */
	bool held;               /* producer_set_credit() is 0: nothing goes to librdkafka */
	uint64_t spooled;        /* events written to the spool */
	uint64_t unspooled;      /* events read back from the spool */
	uint64_t spool_errors;   /* spool I/O errors and damaged records (logged) */
	uint64_t in_flight;      /* in librdkafka, no delivery report yet */
	uint64_t queued;         /* in the memory queue */
	uint64_t spool_events;   /* in the spool */
	uint64_t spool_bytes;
	bool fatal;              /* librdkafka reported a fatal error (see last_error) */
	char last_error[256];
};

struct producer;

/* Creates the Kafka handle and opens the spool (its segments from an earlier run are replayed
 * first). Returns 0, or -EINVAL (bad option or Kafka property), -ENOMEM, -errno of the spool
 * directory, with a message in err. *out is owned by the caller (producer_destroy). */
int producer_create(struct producer **out, const struct producer_options *opts, char *err,
		    size_t errlen);

/* Queues one event (key and value are copied). Returns 0 (also when the bound made it drop
 * the oldest event: see stats.dropped), -EPIPE after producer_close(), or -ENOMEM. */
int producer_send(struct producer *p, const char *key, size_t klen, const char *value,
		  size_t vlen);

/* With a spool directory: writes the journal of the events accepted so far out of this process
 * (see journal.h), so that they survive a SIGKILL; the next start sends them
 * again. Call it after a batch of sends (the collector: after each scrape, before counting it
 * as done); every poll calls it too. Without a spool it does nothing. Returns 0 or -errno. */
int producer_sync(struct producer *p);

/* Serves delivery reports, moves waiting events towards librdkafka, logs drops. Waits up to
 * timeout_ms for librdkafka's events. Call it on every loop. */
void producer_poll(struct producer *p, int timeout_ms);

/* Polls until nothing is pending (memory queue, spool, librdkafka) or timeout_s has passed.
 * Returns 0 or -ETIMEDOUT. */
int producer_flush(struct producer *p, double timeout_s);

/* Flushes for flush_timeout_s, then writes what is still pending to the spool (or counts it
 * as dropped when there is none). Sends are refused afterwards. Returns the number of events
 * left undelivered (spooled or dropped). Idempotent. */
uint64_t producer_close(struct producer *p);

void producer_stats(struct producer *p, struct producer_stats *out);

/* Bounds what is handed to librdkafka from now on, for a broker that must not be given more than
 * it can keep (the pipeline's in-process cluster): -1 no bound (the default), 0 hold everything
 * back, n hand over at most n more events. Held events wait in the memory queue, then the
 * spool, within their bounds. Any thread; takes effect on the next send or poll. */
void producer_set_credit(struct producer *p, int64_t events);

/* Sets the memory queue's bounds at run time: events (0: unchanged) and key + value bytes
 * (0: unchanged). Any thread. A smaller bound drops nothing at once: the next sends make room. */
void producer_set_buffer(struct producer *p, size_t events, uint64_t bytes);

/* Closes (if not yet) and frees. NULL is fine. */
void producer_destroy(struct producer *p);

/* Reads every record of a spool directory in replay order: cb(key, klen, value, vlen, ud) per
 * event; a non-zero return stops. For tests and inspection. Returns 0, cb's value, or -errno. */
int producer_spool_scan(const char *dir,
			int (*cb)(const char *key, size_t klen, const char *val, size_t vlen,
				  void *ud),
			void *ud);

#endif
