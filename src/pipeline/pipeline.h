/*
 * pipeline: the embedded pipeline the console and `--daemon` drive the same way.
 *
 * From the configuration (the same options as the separate services) it builds:
 *   sim      the simulator and its exporter on a free loopback port (unless --target is given)
 *   collect  the collector, scraping the simulator or the --target URLs; every event it builds
 *            is also handed to the fleet (fleet.h) in-process
 *   broker   --brokers, or librdkafka's in-process mock cluster with its gate (mockbroker.h)
 *   db       --db, or a private PostgreSQL under $XDG_STATE_HOME/gpuhealth/ (unix socket only;
 *            run as an unprivileged user when we are root), or none when the server binaries
 *            are not installed (said in the part's detail)
 *   sink     Kafka -> PostgreSQL (when there is a database)
 *   scorer   health scores, predictions and alerts into the database (when there is one)
 *   reader   a thread that reads the database back every couple of seconds (fleetdb.h): row
 *            counts, and, for a fleet database, every host's GPUs (fleet_ingest_health)
 * Each service runs in its own thread(s). A part that fails is shown with its error; the others
 * go on. pipeline_stop() stops them in order (collector flushes, sink commits, private
 * PostgreSQL stopped) and is idempotent.
 */
#ifndef GPUHEALTH_PIPELINE_H
#define GPUHEALTH_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collect/collector.h"
#include "core/config.h"
#include "exporter/exporter.h"
#include "fleet/fleet.h"
#include "health/scorer.h"
#include "sink/sink.h"

enum pipeline_part { PP_SIM = 0, PP_COLLECTOR, PP_BROKER, PP_DATABASE, PP_SINK, PP_SCORER, PP_COUNT };

enum part_state {
	PART_OFF = 0, /* not part of this configuration (detail says why) */
	PART_STARTING,
	PART_RUNNING,
	PART_DEGRADED, /* running, but its last attempt failed (last_error) */
	PART_FAILED,   /* stopped by an error (last_error); the rest goes on */
	PART_STOPPED,
	PART_STUCK, /* running, but retrying a batch it cannot write: nothing moves (lag grows) */
};

const char *pipeline_part_name(enum pipeline_part p);  /* "simulator", "collector", ... */
const char *pipeline_state_name(enum part_state s);    /* "off", "running", ... */

#define PIPELINE_MAX_TARGETS 64

struct pipeline_part_view {
	enum part_state state;
	char detail[192];     /* e.g. "mock cluster 127.0.0.1:40123", "private PostgreSQL 15.8,
				 socket /root/.local/state/gpuhealth/pg", "none: PostgreSQL
				 server binaries not found (install postgresql)" */
	char last_error[256]; /* "" when none */
	double last_error_time;
};

/* Everything the pipeline panel and the daemon's stats line show; a value copy. */
/*
 * The gate in front of the in-process cluster. librdkafka's mock cluster keeps at most 5 MiB or
 * 100,000 message sets per partition and silently forgets the oldest past that, whether the
 * sink has committed them or not. So the pipeline (mockbroker.h) measures, per partition, what
 * the sink's group has not committed (log end minus committed offset, plus what is in flight)
 * and, above a high-water mark (40 % of either limit), has the producer hold new events in its
 * memory queue (bounded by --buffer-hours of the fleet's events and --buffer-max bytes) and
 * spool; below a low-water mark they flow again. Whatever is still lost is counted with its
 * reason.
 */
struct pipeline_gate_view {
	bool active;            /* the in-process cluster is used: the gate runs */
	bool held;              /* events held back: the backlog passed the high-water mark */
	int64_t backlog;        /* most events one partition holds that the sink has not committed */
	uint64_t backlog_bytes; /* estimated bytes of one partition's uncommitted events, most */
	int64_t high_events;    /* high-water marks */
	uint64_t high_bytes;
	uint64_t holds;         /* times the gate closed */
	uint64_t lost;          /* events the in-process log forgot before the sink committed them */
	uint64_t buffer_events; /* the memory queue's bounds in use (--buffer-hours, --buffer-max) */
	uint64_t buffer_bytes;
	char error[160];        /* the last measurement error, "" when none */
};

struct pipeline_view {
	double now; /* wall clock, epoch seconds */
	double started;
	struct pipeline_part_view parts[PP_COUNT];
	bool have_exporter;
	struct exporter_stats exporter;
	bool have_collector;
	struct collector_stats collector; /* producer counters in collector.producer */
	size_t ntargets;
	struct scrape_target_stats targets[PIPELINE_MAX_TARGETS];
	double scrapes_per_s; /* over the last window */
	double events_per_s;
	bool have_sink;
	bool in_process_broker; /* librdkafka's mock cluster: its log dies with the process */
	struct sink_stats sink; /* lag_total, parts[] lag, rows_written, rows_per_s, dead_letters */
	bool have_scorer;
	struct scorer_stats scorer;
	int64_t db_rows;      /* rows in gpu_metrics (exact or estimate), -1 unknown */
	bool db_rows_estimate;
	double db_rows_per_s; /* growth of db_rows over the reader's window */
	bool fleet_db;        /* GPUs of other hosts come from the database */
	struct fleet_stats fleet;
	/* added by the pipeline work: scrapes (ok + failed) per second of each target, over the
	 * last window, same order as targets[] */
	double target_scrapes_per_s[PIPELINE_MAX_TARGETS];
	struct pipeline_gate_view gate;
	/* issue #25: a console pointed at a fleet database (--db) on a machine without GPUs, and
	 * asked for no simulation, is a read-only viewer: no simulator, collector, broker, sink or
	 * scorer, and its database session is read-only */
	bool read_only;
	char mode[160]; /* what this console does, e.g. "read-only viewer of the fleet database" */
};

struct pipeline;

/* Validates the configuration and creates the parts (no thread yet, no private PostgreSQL yet).
 * cfg is borrowed and must outlive the pipeline.
 * Returns 0 or -EINVAL/-ENOMEM with a message in err naming the option and the fix. */
int pipeline_create(struct pipeline **out, const struct config *cfg, char *err, size_t errlen);

/* Call from a thread that lives as long as the pipeline (the main thread): the private
 * PostgreSQL server is a child process that is stopped when the console dies.
 * Starts every part in order; a part that cannot start is marked failed with its error and the
 * rest starts anyway. Returns 0, or -errno when nothing useful can run (message in err). */
int pipeline_start(struct pipeline *p, char *err, size_t errlen);

/* How long pipeline_stop lets the sink catch up with the events the collector delivered
 * before it stops the sink (default 0.75 s, for a console that quits within 2 s; the daemon waits
 * longer). Added by the pipeline work. */
void pipeline_set_drain(struct pipeline *p, double seconds);

/* issue #25: the console reads its fleet table from the fleet database itself (src/viewdb,
 * paged in SQL): as a read-only viewer the reader thread then leaves the fleet empty instead of
 * loading every host's GPUs every 2 s. Any time; the daemon and `status` keep the fleet. */
void pipeline_set_table_from_db(struct pipeline *p, bool yes);

/* The database's conninfo (--db's, or the private PostgreSQL's once it runs) into buf.
 * Returns 0, or -EAGAIN while there is none (not started, failed, none installed). */
int pipeline_conninfo(struct pipeline *p, char *buf, size_t len);

/* Re-reads the targets (SIGHUP). */
int pipeline_reload(struct pipeline *p);

/* Stops every part in order; idempotent; blocks until done. */
void pipeline_stop(struct pipeline *p);

/* Copies the view under the lock; never blocks on I/O. */
void pipeline_view(struct pipeline *p, struct pipeline_view *out);

/* The fleet the pipeline feeds (owned by the pipeline; valid until pipeline_destroy). */
struct fleet *pipeline_fleet(struct pipeline *p);

void pipeline_destroy(struct pipeline *p);

struct pg_conn; /* libpq's PGconn */

/* Reads every GPU's latest sample, stored health and latest prediction from a gpuhealth
 * database (v_latest_gpu_metrics, v_latest_health, gpu_failure_predictions) into f. It is
 * fleetdb_read (fleetdb.h, which the reader thread calls for a fleet database) under the name
 * `gpuhealth status` calls. Returns 0, or -EIO / -ENOMEM with a message in err. */
int pipeline_read_fleet_db(struct pg_conn *c, struct fleet *f, char *err, size_t errlen);

/* The same for the GPUs keys[0..n) only (the fleet table's rows on screen, one GPU's detail):
 * a GPU without a sample is ingested with its identity (fleetdb_read_keys, for viewdb).
 * Returns 0, or -EIO / -ENOMEM with a message in err. */
int pipeline_read_fleet_keys(struct pg_conn *c, struct fleet *f, const char *const *keys, size_t n,
                             char *err, size_t errlen);

#endif
