/*
 * sink: consumes sample events from Kafka and writes them to PostgreSQL in batches, exactly
 * once per (GPU, time). The consumer thread turns each event into a binary COPY row (event_row)
 * and fills a batch; two writer threads, each on its own connection, write the queued batches,
 * each in one transaction: the rows by binary COPY straight into gpu_metrics (when a row is
 * already there, a redelivery, again through the staging table and gpuhealth_ingest_staged(),
 * which leaves out the rows present), the 1-minute rollups of the rows before the rollup mark
 * (computed in C from the batch; on the staged path by the database from the new rows), the GPUs
 * that are new or changed into gpus and the fleet overview, the dead letters the dead-letter
 * topic refused (into the dead_letters table), the workload runs. Kafka offsets are stored only
 * after COMMIT, in the order the batches were filled. Bad events go to the dead-letter topic
 * with the reason. Writer 0, between batches, writes the rollups of the newest minutes when
 * they close (kept in memory until then), moves gpus.last_seen, keeps the partitions, and every
 * SINK_STATS_PERIOD_S (and once at stop) inserts the counters and the consumer lag into
 * pipeline_stats, one statement in a transaction of its own. The parts: sink_queue, sink_write,
 * sink_db, sink_gpus, sink_rollups, sink_dlq, sink_upkeep (private to src/sink/, sink_int.h).
 *
 * The service face shared by every service: create, start (its own threads), stop, stats,
 * destroy. The console and `gpuhealth sink` drive it the same way.
 */
#ifndef GPUHEALTH_SINK_H
#define GPUHEALTH_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sink_options {
	const char *brokers;    /* bootstrap servers */
	const char *topic;      /* sample events */
	const char *group;      /* consumer group */
	const char *dlq_topic;  /* dead letters */
	const char *const *kafka_props; /* "key=value" librdkafka overrides (-X) */
	size_t nkafka_props;
	const char *conninfo;   /* NULL/"" = libpq PG* variables */
	int batch_size;         /* rows (and dead letters) per transaction, upper bound */
	double batch_timeout_s; /* longest wait before a partial batch is written */
	double maintenance_interval_s; /* upkeep period: partitions, expired rows dropped */
	double max_future_s;           /* allowed clock skew: samples further in the future are dead
	                                * letters (0: EVENT_CHECK_MAX_SKEW_S, 5 min) */
};

#define SINK_MAX_PARTS 64
#define SINK_STATS_PERIOD_S 10.0 /* how often a pipeline_stats row is written */

struct sink_stats {
	uint64_t consumed;      /* messages read from Kafka */
	uint64_t rows_written;  /* new rows committed to gpu_metrics */
	uint64_t duplicates;    /* rows already present, ignored */
	uint64_t batches;       /* committed transactions */
	uint64_t dead_letters;  /* events refused: out to the dead-letter topic or, when it
	                         * refused them too, into the dead_letters table */
	uint64_t dead_letters_db; /* of those, the ones in the dead_letters table */
	uint64_t db_errors;     /* failed attempts to write a batch */
	uint64_t partitions_dropped;
	uint64_t stats_rows;    /* rows written to pipeline_stats */
	uint64_t stats_errors;  /* failed pipeline_stats inserts (logged, never fatal) */
	uint64_t rollup_closes; /* transactions that closed 1-minute rollups (moved the mark) */
	uint64_t rollup_recomputes; /* of those, the ones the database computed from gpu_metrics */
	double rows_per_s;      /* over the last stats window */
	bool db_connected;
	bool paused;            /* consumption paused while the database is away */
	bool running;
	bool failed;            /* stopped by a fatal error (see last_error) */
	bool retrying;          /* a batch is being retried: stuck until the database takes it */
	double retry_since;     /* time_mono() when the oldest message held arrived */
	int64_t lag_total;      /* messages behind the partition ends, -1 unknown */
	int nparts;
	struct {
		int32_t partition;
		int64_t offset; /* next to consume */
		int64_t lag;    /* -1 unknown */
	} parts[SINK_MAX_PARTS];
	char last_error[256];
};

struct sink;

/* Validates the options and creates the Kafka handles (no I/O to the database yet). Returns 0
 * or -EINVAL/-ENOMEM with a message in err. *out is owned by the caller (sink_destroy). */
int sink_create(struct sink **out, const struct sink_options *opts, char *err, size_t errlen);
/* Starts the sink's thread. Returns 0 or -errno. */
int sink_start(struct sink *s);
/* Asks the thread to stop: the open batch is committed if the database answers, else abandoned
 * (it is redelivered: its offsets were not stored); stored offsets are committed; the consumer
 * leaves its group. Blocks until the thread has ended. */
void sink_stop(struct sink *s);
/* The same, but a batch the database does not take at once is abandoned at once (it is
 * redelivered) instead of retried for up to 10 s: for a database known to be gone. */
void sink_stop_now(struct sink *s);
/* Copies a snapshot of the counters (never blocks on I/O). */
void sink_stats(struct sink *s, struct sink_stats *out);
/* What the sink consumes, for log lines and the service's status text: "consuming TOPIC as
 * group GROUP", with batches ", batches of up to N rows or T s". Returns snprintf's. */
int sink_describe(const struct sink *s, bool batches, char *buf, size_t len);
void sink_destroy(struct sink *s);

#endif
