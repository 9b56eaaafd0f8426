/*
 * sender: a plain Kafka producer for the messages a service sends beside its main work: the
 * sink's dead letters, the scorer's alerts. Idempotent, acks=all (kafka_conf's producer
 * defaults), then -X. No spool and no journal (the collector's producer.h has those): a
 * message the topic does not take is reported to the caller, which has its own fall-back (the
 * dead_letters table) or counts it.
 *
 * Every message's delivery report comes through delivered(ctx, opaque, err) from inside
 * sender_poll or sender_flush, on the calling thread; err is 0 or a bus error code
 * (sender_err_str names it; sender_err_permanent says whether a retry of the same record can
 * mend it). Threads: send, poll and flush from any thread (librdkafka's producer is
 * thread-safe); the reports come on whichever thread polls.
 */
#ifndef GPUHEALTH_SENDER_H
#define GPUHEALTH_SENDER_H

#include <stdbool.h>
#include <stddef.h>

struct sender;

struct sender_options {
	const char *who; /* the log prefix: "sink", "scorer" */
	const char *brokers;
	const char *const *kafka_props; /* -X */
	size_t nkafka_props;
	/* message.timeout.ms unless -X gives one (every report within this bound); 0: the
	 * library's default */
	int message_timeout_ms;
	void *ctx;
	void (*delivered)(void *ctx, void *opaque, int err);   /* optional */
	void (*error)(void *ctx, bool fatal, const char *text); /* optional, as consumer.h */
};

struct bus_header {
	const char *name;
	const char *value; /* text */
};

int sender_create(struct sender **out, const struct sender_options *o, char *err,
                  size_t errlen);
struct consumer_options;
struct consumer_hooks;
/* A sender beside a service's consumer (co, h): the same log prefix, brokers and -X, the same
 * ctx and error hook; delivered and message_timeout_ms as in sender_options. */
int sender_create_beside(struct sender **out, const struct consumer_options *co,
                         const struct consumer_hooks *h, int message_timeout_ms,
                         void (*delivered)(void *ctx, void *opaque, int err), char *err,
                         size_t errlen);
/*
 * Queues one message (copied), waiting up to wait_ms while the local queue is full (serving
 * reports meanwhile). opaque comes back in its delivery report. Returns 0, -EAGAIN (still full
 * after wait_ms) or -EIO (refused at once: *code says why, for sender_err_str).
 */
int sender_send(struct sender *p, const char *topic, const void *key, size_t klen,
                const void *value, size_t vlen, const struct bus_header *h, size_t nh,
                void *opaque, int wait_ms, int *code);
/* Serves the reports due (waiting up to ms for one). */
void sender_poll(struct sender *p, int ms);
/* Waits up to ms for every queued message's report. Returns how many are still queued. */
int sender_flush(struct sender *p, int ms);
/* Drops what is queued or in flight: each gets its report (failed) at the next poll. */
void sender_purge(struct sender *p);
void sender_destroy(struct sender *p);

const char *sender_err_str(int code);
/* An error no retry of the same record can mend (too large, refused by policy or ACL, timed
 * out after message_timeout_ms). */
bool sender_err_permanent(int code);

#endif
