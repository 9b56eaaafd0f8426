/*
 * sink_int: the sink service's private state, shared by the files of src/sink/ that make up the
 * service (sink.c, sink_queue.c, sink_write.c, sink_db.c, sink_gpus.c, sink_rollups.c,
 * sink_dlq.c, sink_upkeep.c) and included by no other file. struct sink is made by sink_create
 * (sink.c), owned by its caller and freed by sink_destroy; the other files only work on it,
 * each on the members its comments name, under the lock they name.
 *
 * Threads: the consumer thread (sink.c) fills one batch at a time and hands it to the batch
 * queue (sink_queue.c); WRITERS writer threads each write the oldest queued batch on their own
 * connection (pgconn_db(s->pg[w]), sink_db.c) in one transaction (sink_write.c), and writer 0 also does the
 * upkeep between batches (sink_gpus.c, sink_rollups.c, sink_upkeep.c).
 */
#ifndef GPUHEALTH_SINK_INT_H
#define GPUHEALTH_SINK_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus/consumer.h"
#include "bus/sender.h"
#include "core/strbuf.h"
#include "core/worker.h"
#include "store/pgconn.h"
#include "sink/sink.h"

/* Writer threads, each with its own connection: while one waits for PostgreSQL the other's
 * batch is being written, so the database works on two cores (on the 2-core benchmark machine,
 * +25 % rows/s over one writer; a third added nothing). */
#define WRITERS 2
/* One filling, one being written per writer, and one queued: with only WRITERS + 1 the
 * consumer, having filled a batch while both writers were busy, waited for one to finish, and
 * that writer then waited for the next batch to be filled (measured on a backlog: each writer's
 * connection idle between batches for as long as a fill takes). */
#define NBATCH (WRITERS + 2)

/* A dead letter's way out: produced to the dead-letter topic (PENDING, then DONE or FAILED);
 * after DLQ_ATTEMPTS failed tries, or at once when the topic refuses it for good (too large,
 * not allowed), TABLE: into the dead_letters table in the batch's own transaction. */
enum dlq_state { DLQ_NONE = 0, DLQ_PENDING, DLQ_DONE, DLQ_FAILED, DLQ_TABLE };

/* A batch's life: filled by the consumer thread, queued, written by one writer, then finished
 * (offsets stored, cleared) in the order it was queued, and free again. */
enum batch_state { B_FREE = 0, B_FILLING, B_QUEUED, B_WRITING, B_DONE };

/* One consumed message of the open batch: a row (reason == NULL) or a dead letter. */
struct item {
	struct bus_msg m; /* owned until the batch ends (bus_msg_free) */
	size_t row_off, row_len;
	size_t ident_off, ident_len; /* this row's identity text in the batch's ident buffer */
	double time;
	uint32_t gpu;        /* its GPU's ordinal in the batch (gpu_seen.ord) */
	char *reason;        /* owned; dead letter when set */
	_Atomic int dlq;     /* enum dlq_state, written by the delivery callback */
	_Atomic int dlq_err; /* the last failed try's error (sender_err_str) */
	int dlq_tries;
};

struct rollup;        /* sink/rollup.h */
struct workload_runs; /* sink/workloads.h */
struct workloads;     /* sink/workloads.h */
struct gpu_seen;      /* sink_gpus.c: one GPU of a batch */
struct gpu_known;     /* sink_gpus.c: one GPU of the gpus table, as far as this sink knows */
struct gpu_sent;      /* sink_gpus.c: one line of a batch's gpuhealth_ident COPY */

/* A batch of consumed messages, their rows and what the transaction needs. */
struct batch {
	struct item *items;
	size_t nitems, capitems, nrows;
	struct strbuf rows;
	struct strbuf idents;  /* identity text of each row, in row order */
	struct gpu_seen *seen; /* open-addressing set of the batch's GPUs */
	size_t seen_cap, seen_n;
	struct strbuf ident_copy; /* the batch's gpuhealth_ident COPY text */
	struct rollup *roll;      /* the rows' 1-minute rollups, computed as they arrive */
	bool roll_ok;             /* false: roll is incomplete, let the database compute them */
	struct strbuf roll_copy;  /* the batch's gpuhealth_rollup_stage binary COPY */
	double tmin, tmax, batch_started;
	struct bus_offsets offs; /* what the batch acknowledges once committed */
	char *by_gpu; /* the rows again, grouped by GPU: what the COPY sends */
	size_t by_gpu_cap;
	size_t *gpu_off; /* per GPU ordinal: where its rows go in by_gpu */
	size_t gpu_off_cap;
	struct gpu_sent *sent; /* the GPUs this batch's transaction merges into gpus */
	size_t nsent, capsent;
	struct strbuf touch_keys, touch_times; /* writer 0's idle batch: gpus_touch() arrays */
	struct workload_runs *wl_runs; /* the rows' workload runs (gpu_workloads, schema/013) */
	char *wl_json; /* owned: the runs this batch's transaction merges; NULL = none */
	/* guarded by the sink's wlock */
	enum batch_state state;
	uint64_t seq; /* queue order */
	int rc;       /* the writer's result: 0 committed, else given up */
	long long ins, dups;
	uint64_t dead, dead_db; /* dead letters out; of them, into the dead_letters table */
};

struct writer {
	struct sink *s;
	int w; /* index: its connection is s->pg[w] */
	pthread_t thread;
	bool started;
};

struct sink {
	/* options, owned copies */
	char *brokers, *topic, *group, *dlq_topic, *conninfo;
	int batch_size;
	double batch_timeout_s, maintenance_s, max_future_s;

	struct consumer *consumer; /* owned */
	struct sender *dlq;        /* owned: the dead letters' idempotent producer */
	struct pgconn *pg[WRITERS]; /* owned: pg[w] by writer w (pg[0] by the sink thread until
	                             * the writers start) */
	double retention_s;

	struct worker w; /* the consumer thread, its stop and stop-now flags */

	/* The consumer thread fills one batch while the writers write the ones queued before it,
	 * each in its own transaction on its own connection. */
	struct batch batches[NBATCH];
	struct batch *fill; /* consumer thread */
	uint64_t seq_next;  /* guarded by wlock: the next batch queued gets this number */
	uint64_t seq_done;  /* guarded by wlock: batches before this one are finished */
	bool finishing;     /* guarded by wlock: a writer is finishing the oldest batch */
	struct writer writers[WRITERS];
	bool writer_stop; /* guarded by wlock */
	bool writers_up;  /* consumer thread: every writer runs */
	bool maint;       /* guarded by wlock: writer 0 keeps the partitions, no batch starts */
	atomic_bool abandoned; /* a batch was given up: no later batch may store offsets */
	pthread_mutex_t wlock;
	pthread_cond_t wcond;
	double last_maint;
	double last_lag;         /* consumer thread: when update_lag last ran */
	double last_poll;        /* consumer thread: when the dead-letter producer was polled */
	double wall_now;         /* consumer thread: the wall clock as of last_poll (take()'s now) */
	double last_stats;       /* writer thread: when the last pipeline_stats row was tried */
	char instance[300];      /* pipeline_stats.instance: hostname:pid */
	bool stats_missing_told; /* "run gpuhealth db migrate" said once */
	bool stats_failing;      /* the last pipeline_stats insert failed (warn once per streak) */

	/* The GPUs known to be in the gpus table (struct gpu_known), shared by the writers. */
	pthread_mutex_t glock; /* guards the four below */
	struct gpu_known *known;
	size_t known_cap, known_n;
	double gpus_merged_at; /* time_mono() of the last sink_gpus_refresh() */
	struct batch idle; /* writer 0: only ident_copy, sent, touch_*, for sink_gpus_refresh() */
	bool db_was_up[WRITERS]; /* writer w's connection was up once */

	/* The rollups of the rows this sink committed at or after the mark (schema/006), written
	 * when their minute closes (sink_rollups_close). */
	atomic_bool has_mark;      /* the schema has gpuhealth_rollup_mark (version 6) */
	atomic_bool has_workloads; /* the schema has gpuhealth_merge_workloads (version 13) */
	atomic_bool has_fleet_now; /* the schema has gpuhealth_fleet_now_sink (version 17) */
	atomic_bool workloads_missing_told;
	struct workloads *workloads; /* what this sink merged into gpu_workloads */
	struct strbuf wl_text;       /* the consumer thread's: one event's workload (event_row) */
	atomic_bool mark_missing_told;
	pthread_mutex_t
	    rlock; /* guards the five below; a writer holds it from its COMMIT until its
	            * rollups are in open, so a close never sees the rows without them */
	struct rollup *open;
	double newest;            /* newest committed sample time (s since 1970); -INFINITY: none */
	double last_commit;       /* time_mono() of the last committed batch */
	int64_t mark;             /* the newest mark seen (us since 2000), INT64_MIN: none */
	double closed_at;         /* time_mono() of the last close */
	struct strbuf close_copy; /* writer 0: the closing minutes' binary COPY */

	/* The consumer group's position per partition, as this sink moves it: the offset stored
	 * after the last committed batch, else the first offset read since the assignment (where
	 * the group's committed offset stood). The lag is measured from it, not from the fetch
	 * position, so a batch that cannot be written shows as lag. Guarded by lock. */
	struct {
		int32_t partition;
		int64_t acked;
	} acked[SINK_MAX_PARTS];
	int nacked;

	_Atomic uint64_t consumed; /* st.consumed, counted without the lock */
	pthread_mutex_t lock;      /* guards st */
	struct sink_stats st;
	uint64_t rate_rows;
	double rate_t;
};

/* sink.c: the service's own helpers, for every file of the service. */

/* Sets st.last_error (under s->lock). */
void sink_set_error(struct sink *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sleeps a backoff step with jitter (worker_backoff, the dead letters' reports served meanwhile).
 * Returns false when stopping past the deadline, or stopping now. */
bool sink_backoff(struct sink *s, int attempt, double deadline);
/* Sets partition p's acked offset (with s->lock held): always when store, else only when
 * none is known yet (the first offset read since the assignment). */
void sink_acked_set(struct sink *s, int32_t p, int64_t off, bool store);

#endif
