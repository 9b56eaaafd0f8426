/*
 * consumer: the one batch consumer of a Kafka topic, for the sink and the scorer (issue #22).
 *
 * A service that reads events in batches gives it its callbacks and runs its loop:
 *
 *   consumer_run():  poll (100 ms) -> take(msg)        the service owns the message now
 *                    tick(now)                          every turn: side producers, stats
 *                    due(now)? -> flush()               the held batch is full or old enough
 *   rebalance:       assigned(partitions), revoked()    revoked: finish or give up what is
 *                                                       held before the partitions move on
 *   errors:          error(fatal, text)                 fatal: the service stops
 *
 * Offsets: automatic commit of *stored* offsets only (kafka_conf's consumer defaults); the
 * service stores an offset with consumer_store() after the rows it covers are committed in
 * the database, in the order of its batches, so nothing is acknowledged before it is durable
 * and a redelivery repeats at most what was not. consumer_close() commits what is stored and
 * leaves the group (call it after the service's last batch is finished).
 *
 * Threads: the service's consumer thread calls consumer_run, consumer_close and receives every
 * callback (the rebalance ones inside consumer_run's poll); consumer_store, consumer_pause and
 * consumer_positions may be called from any thread (the sink's writers store offsets).
 * Only bus/ speaks librdkafka: a message is handed over as a struct bus_msg.
 */
#ifndef GPUHEALTH_CONSUMER_H
#define GPUHEALTH_CONSUMER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One consumed message. The taker owns it from take() on and ends it with bus_msg_free()
 * (payload, key and topic stay valid until then). */
struct bus_msg {
	const void *payload; /* NULL for an empty message */
	size_t len;
	const void *key; /* NULL when it has none */
	size_t key_len;
	const char *topic;
	int32_t partition;
	int64_t offset;
	void *impl; /* the library's message: bus/ only */
};

void bus_msg_free(struct bus_msg *m);

/* The next offset to read per partition: what a batch acknowledges once it is durable. */
#define BUS_MAX_PARTS 256
struct bus_offsets {
	struct {
		int32_t partition;
		int64_t next; /* the highest offset taken + 1 */
	} o[BUS_MAX_PARTS];
	int n;
};

/* Notes offset off of partition p as taken. Returns true when p is new to the set. */
bool bus_offsets_note(struct bus_offsets *b, int32_t p, int64_t off);

struct consumer_hooks {
	void *ctx;
	void (*take)(void *ctx, struct bus_msg *m); /* owns *m (a copy is fine) */
	void (*tick)(void *ctx, double now);        /* optional */
	bool (*due)(void *ctx, double now);
	void (*flush)(void *ctx);
	void (*assigned)(void *ctx, const int32_t *parts, int n); /* optional */
	void (*revoked)(void *ctx);                               /* optional */
	void (*error)(void *ctx, bool fatal, const char *text);   /* optional */
};

struct consumer_options {
	const char *who; /* "sink", "scorer": the prefix of its log lines */
	const char *brokers;
	const char *topic;
	const char *group;
	/* the service's own defaults ("key=value"), then -X (kafka_props), which wins */
	const char *const *defaults;
	size_t ndefaults;
	const char *const *kafka_props;
	size_t nkafka_props;
};

struct consumer;

/* Creates the consumer and subscribes to the topic. Returns 0, -EINVAL (a bad property, named
 * in err with the fix) or -ENOMEM. *out is the caller's. */
int consumer_create(struct consumer **out, const struct consumer_options *o,
                    const struct consumer_hooks *h, char *err, size_t errlen);
/* Runs the loop until *stop. Returns with the held batch still the service's. */
void consumer_run(struct consumer *c, atomic_bool *stop);
/* Stores the offsets of a durable batch. Returns 0, or -ESRCH when a partition is no longer
 * ours (revoked meanwhile: its new owner reads again from the last commit). */
int consumer_store(struct consumer *c, const struct bus_offsets *offs);
/* Stops (or starts again) fetching from every assigned partition: a service whose writers are
 * behind holds the backlog in Kafka, not in memory. */
void consumer_pause(struct consumer *c, bool paused);

struct bus_position {
	int32_t partition;
	int64_t position; /* the next offset this consumer reads, -1 unknown */
	int64_t low, high; /* the partition's watermarks, -1 unknown */
};
/* The assigned partitions' positions and watermarks (cached, no request). Returns how many
 * (at most max), or -EIO when the assignment cannot be read. */
int consumer_positions(struct consumer *c, struct bus_position *out, int max);
/* Commits the stored offsets and leaves the group. */
void consumer_close(struct consumer *c);
void consumer_destroy(struct consumer *c);

#endif
