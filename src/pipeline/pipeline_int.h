/*
 * pipeline_int: private to src/pipeline/ (pipeline.c, pipeline_db.c); nothing else includes
 * it. The embedded pipeline's own state (struct pipeline), shared by the wiring of the services
 * (pipeline.c: create, start, reload, stop, view, destroy) and the database thread
 * (pipeline_db.c: the private PostgreSQL or --db, the sink and the scorer it starts, the
 * reader).
 */
#ifndef GPUHEALTH_PIPELINE_INT_H
#define GPUHEALTH_PIPELINE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collect/collector_cmd.h"
#include "collect/targets.h"
#include "core/config.h"
#include "core/service.h"
#include "pipeline/pipeline.h"

struct discovery;
struct inject_spec;
struct mockbroker;
struct privpg;
struct sim_model;

struct pipeline {
	const struct config *cfg; /* borrowed: outlives the pipeline */
	pthread_mutex_t lock;     /* guards parts, the rates, the reader's figures, sink/scorer */
	struct pipeline_part_view parts[PP_COUNT];
	double started;
	double drain_s;
	struct fleet *fleet; /* owned */

	/* simulator */
	const struct sim_model *model;
	struct inject_spec *faults; /* owned */
	size_t nfaults;
	char hostname[256];
	struct exporter *ex;    /* owned by ex_svc once started */
	struct service *ex_svc; /* its service face (core/service.h): started, stopped, destroyed */
	char sim_url[320];

	/* collector */
	struct targets
	    tg; /* the --target / --targets-file set (empty, no discovery: the simulator) */
	/* --file-sd, --http-sd, --dns-sd (NULL: none): polled by the discovery thread, which owns
	 * disc and merged once started (start_collector reads them before) */
	struct discovery *disc;
	struct collector_merged merged; /* tg + the discovered targets */
	bool scrapes; /* static or discovered targets (no simulator): set once at create, read by
	                 every thread, unlike tg, which the discovery thread replaces */
	pthread_t sd_thread;
	bool sd_started;
	atomic_bool sd_stop;
	atomic_bool sd_force; /* SIGHUP: every source again */
	const char *const *props; /* -X, borrowed from cfg */
	size_t nprops;
	const char **cprops; /* consumers: props + mock settings */
	size_t ncprops;
	struct collector *col; /* owned by col_svc once started */
	struct service *col_svc;

	/* broker */
	struct mockbroker *mb; /* owned: the in-process cluster and its gate; NULL with --brokers */
	char brokers[512];

	/* database */
	bool fleet_db;             /* --db given: read every host's GPUs back */
	atomic_bool table_from_db; /* pipeline_set_table_from_db */
	bool viewer;    /* --db, no local GPUs, no simulation asked: read-only, nothing started
	                   that writes (issue #25) */
	char mode[160]; /* what this console does, for the pipeline screen */
	bool want_db;
	char bindir[4096];
	char state_dir[4096];
	char conninfo[4096];
	struct privpg *pg;     /* owned by the db thread until it ends */
	struct sink *sink;     /* owned by sink_svc; created by the db thread */
	struct scorer *scorer; /* owned by scorer_svc; created by the db thread */
	struct service *sink_svc, *scorer_svc;
	pthread_t db_thread;
	bool db_thread_started;
	atomic_bool reader_stop; /* leave the reader loop */
	atomic_bool pg_stop;     /* stop the private server and end the thread */
	atomic_bool reader_done;

	/* figures */
	int64_t db_rows;
	bool db_rows_estimate;
	double db_rows_per_s;
	double rate_t;
	uint64_t rate_scrapes, rate_events;
	double scrapes_per_s, events_per_s;
	size_t rate_ntargets;
	uint64_t rate_target[PIPELINE_MAX_TARGETS];
	double target_rate[PIPELINE_MAX_TARGETS];

	bool stopped;
};

/* Sets a part's state, its detail (NULL: unchanged) and its error (NULL or "": unchanged),
 * under the lock; logs a part failed (with its error), off or running (with its detail). */
void pipeline_set_part(struct pipeline *p, enum pipeline_part part, enum part_state st,
                       const char *detail, const char *error);

/* A part that ran is now stopped; one that failed or was off keeps its state and error. */
void pipeline_stop_part(struct pipeline *p, enum pipeline_part part);

/* A part's state, read under the lock. */
enum part_state pipeline_part_state(struct pipeline *p, enum pipeline_part part);

/* Runs a part: obj, made by its constructor (made: 0, or the constructor's -errno with err
 * set), wrapped in its service face (ops) and started through that. On failure obj and its
 * service are destroyed, *svc is NULL and the part is marked failed with the detail failed and
 * err. Returns 0 or -errno. */
int pipeline_run_part(struct pipeline *p, enum pipeline_part part, const char *failed, int made,
                      const struct service_ops *ops, void *obj, struct service **svc, char *err,
                      size_t errlen);

/* Sleeps s seconds. */
void pipeline_nap(double s);

/* pipeline_db.c: starts the database thread (a private PostgreSQL is started from it, or --db
 * is used), which starts the sink and the scorer once there is a database and the broker runs,
 * then reads the database back every 2 s until reader_stop, and stops the private server at
 * pg_stop. Without server binaries or a state directory it only sets the parts. */
void pipeline_db_start(struct pipeline *p);

#endif
