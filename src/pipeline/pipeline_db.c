#include "pipeline/pipeline_int.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "health/scorer_cmd.h"
#include "pipeline/fleetdb.h"
#include "pipeline/privpg.h"
#include "sink/sink_cmd.h"
#include "store/pg.h"
#include "store/pgconn.h"

#define READER_PERIOD_S    2.0
#define PG_START_TIMEOUT_S 30.0
#define PG_STOP_TIMEOUT_S  10.0

static void start_sink(struct pipeline *p)
{
	char err[512] = "", detail[192];
	struct sink_options o;
	sink_cmd_options(p->cfg, &o);
	/* the pipeline's broker (embedded or given), database and librdkafka properties */
	o.brokers = p->brokers;
	o.conninfo = p->conninfo;
	o.kafka_props = p->cprops;
	o.nkafka_props = p->ncprops;
	struct sink *s = NULL;
	struct service *svc = NULL;
	int rc = sink_create(&s, &o, err, sizeof(err));
	if (pipeline_run_part(p, PP_SINK, "not running", rc, &sink_service_ops, s, &svc, err,
	                      sizeof(err)))
		return;
	pthread_mutex_lock(&p->lock);
	p->sink = s; /* owned by p, through its service */
	p->sink_svc = svc;
	pthread_mutex_unlock(&p->lock);
	snprintf(detail, sizeof(detail), "topic %s -> gpu_metrics, group %s", o.topic, o.group);
	pipeline_set_part(p, PP_SINK, PART_RUNNING, detail, NULL);
}

static void start_scorer(struct pipeline *p)
{
	char err[512] = "", detail[192];
	struct scorer_options o;
	scorer_cmd_options(p->cfg, &o);
	o.brokers = p->brokers;
	o.conninfo = p->conninfo;
	o.kafka_props = p->cprops;
	o.nkafka_props = p->ncprops;
	struct scorer *s = NULL;
	struct service *svc = NULL;
	int rc = scorer_create(&s, &o, err, sizeof(err));
	if (pipeline_run_part(p, PP_SCORER, "not running", rc, &scorer_service_ops, s, &svc, err,
	                      sizeof(err)))
		return;
	pthread_mutex_lock(&p->lock);
	p->scorer = s; /* owned by p, through its service */
	p->scorer_svc = svc;
	pthread_mutex_unlock(&p->lock);
	snprintf(detail, sizeof(detail), "group %s, health into the database", o.group);
	pipeline_set_part(p, PP_SCORER, PART_RUNNING, detail, NULL);
}

/* The last RATE_SAMPLES row counts: rows/s is the growth over them (about 16 s at the
 * reader's period), so batches committed every few seconds read as a steady rate, not as
 * bursts between zeros. */
#define RATE_SAMPLES 8
struct rate_window {
	double t[RATE_SAMPLES];
	int64_t v[RATE_SAMPLES];
	size_t n, next; /* samples held, slot of the next one */
};

/* Adds a sample; returns the rate over the window, or NAN with fewer than two samples. */
static double rate_add(struct rate_window *w, double t, int64_t v)
{
	w->t[w->next] = t;
	w->v[w->next] = v;
	w->next = (w->next + 1) % RATE_SAMPLES;
	if (w->n < RATE_SAMPLES)
		w->n++;
	size_t oldest = (w->next + RATE_SAMPLES - w->n) % RATE_SAMPLES;
	if (w->n < 2 || t <= w->t[oldest])
		return NAN;
	return (double)(v - w->v[oldest]) / (t - w->t[oldest]);
}

/* Rows in gpu_metrics (fleetdb_count_rows) and their growth over win, for the view. */
static void count_rows(struct pipeline *p, struct pg_conn *c, struct rate_window *win)
{
	bool estimate = false;
	int64_t rows = fleetdb_count_rows(c, &estimate);
	double rate = rows >= 0 ? rate_add(win, time_mono(), rows) : NAN;
	pthread_mutex_lock(&p->lock);
	p->db_rows = rows;
	p->db_rows_estimate = estimate;
	if (!isnan(rate))
		p->db_rows_per_s = rate;
	pthread_mutex_unlock(&p->lock);
}

static void db_error(struct pipeline *p, const char *e)
{
	pthread_mutex_lock(&p->lock);
	struct pipeline_part_view *v = &p->parts[PP_DATABASE];
	bool changed = strcmp(v->last_error, e) != 0;
	snprintf(v->last_error, sizeof(v->last_error), "%s", e);
	v->last_error_time = time_now();
	if (v->state == PART_RUNNING)
		v->state = PART_DEGRADED;
	pthread_mutex_unlock(&p->lock);
	if (changed)
		log_warn("database: %s", e);
}

static void reader_loop(struct pipeline *p)
{
	struct pgconn *pc = pgconn_create(p->conninfo, "gpuhealth-console");
	struct pg_conn *c = NULL;
	double next = 0;
	struct rate_window win = {0};
	char err[512];
	if (!pc) {
		db_error(p, "out of memory");
		return;
	}
	while (!atomic_load(&p->reader_stop)) {
		if (p->pg && privpg_check(p->pg, err, sizeof(err)) != 0) {
			pipeline_set_part(p, PP_DATABASE, PART_FAILED, NULL, err);
			break;
		}
		if (time_mono() < next) {
			pipeline_nap(0.05);
			continue;
		}
		next = time_mono() + READER_PERIOD_S;
		/* store/pgconn.h: a lost session is re-opened with PQreset */
		int up = pgconn_ensure(pc, 0, err, sizeof(err));
		if (up < 0) {
			db_error(p, err);
			continue;
		}
		c = pgconn_db(pc);
		if (up == 1) { /* a new session: its settings */
			pg_exec(c, "SET statement_timeout = '1500ms'", err, sizeof(err));
			/* the reader only reads; a viewer's session cannot write even by mistake */
			if (p->viewer &&
			    pg_exec(c, "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", err,
			            sizeof(err)) != 0) {
				db_error(p, err);
				pgconn_close(pc);
				continue;
			}
		}
		count_rows(p, c, &win);
		/* a read-only viewer whose console reads its fleet table from the database itself
		 * (src/viewdb, paged in SQL) leaves the fleet empty: every host's GPUs in memory
		 * every 2 s was 1.4 s a read and 1.1 GB at 200,704 GPUs */
		bool table_elsewhere = p->viewer && atomic_load(&p->table_from_db);
		int rc = p->fleet_db && !table_elsewhere
		             ? fleetdb_read(c, p->fleet, err, sizeof(err))
		             : 0;
		if (rc)
			db_error(p, err);
		else if (pipeline_part_state(p, PP_DATABASE) == PART_DEGRADED)
			pipeline_set_part(p, PP_DATABASE, PART_RUNNING, NULL, NULL);
	}
	pgconn_destroy(pc);
}

static void *db_main(void *arg)
{
	struct pipeline *p = arg;
	char err[1024] = "";
	if (!p->fleet_db) {
		char detail[192];
		snprintf(detail, sizeof(detail), "starting private PostgreSQL in %.150s/pg",
		         p->state_dir);
		pipeline_set_part(p, PP_DATABASE, PART_STARTING, detail, NULL);
		struct privpg *pg = NULL;
		int rc = privpg_start(&pg, p->bindir, p->state_dir, PG_START_TIMEOUT_S,
		                      &p->reader_stop, err, sizeof(err));
		if (rc == -ECANCELED) {
			pipeline_set_part(p, PP_DATABASE, PART_STOPPED, "stopped while it started",
			                  NULL);
			goto wait;
		} else if (rc) {
			pipeline_set_part(p, PP_DATABASE, PART_FAILED,
			                  "private PostgreSQL not running", err);
			pipeline_set_part(p, PP_SINK, PART_OFF,
			                  "no database (see the database's error)", NULL);
			pipeline_set_part(p, PP_SCORER, PART_OFF,
			                  "no database (see the database's error)", NULL);
			goto wait;
		}
		p->pg = pg; /* owned by this thread until it ends */
		snprintf(p->conninfo, sizeof(p->conninfo), "%s", privpg_conninfo(pg));
		pipeline_set_part(p, PP_DATABASE, PART_RUNNING, privpg_describe(pg), NULL);
	} else {
		char red[sizeof(p->conninfo)], detail[192];
		pg_redact(p->conninfo, red, sizeof(red));
		snprintf(detail, sizeof(detail), "fleet database %.170s", red);
		pipeline_set_part(p, PP_DATABASE, PART_RUNNING, detail, NULL);
	}
	if (p->viewer) {
		pipeline_set_part(p, PP_SINK, PART_OFF, "read-only viewer: writes nothing", NULL);
		pipeline_set_part(p, PP_SCORER, PART_OFF, "read-only viewer: writes nothing", NULL);
	} else if (!atomic_load(&p->reader_stop) &&
	           pipeline_part_state(p, PP_BROKER) == PART_RUNNING) {
		start_sink(p);
		start_scorer(p);
	} else if (pipeline_part_state(p, PP_BROKER) != PART_RUNNING) {
		pipeline_set_part(p, PP_SINK, PART_OFF, "no broker", NULL);
		pipeline_set_part(p, PP_SCORER, PART_OFF, "no broker", NULL);
	}
	reader_loop(p);
wait:
	atomic_store(&p->reader_done, true);
	/* the server is this thread's child (its parent-death signal follows this thread): stay
	 * until the sink and the scorer have committed, then stop it */
	while (!atomic_load(&p->pg_stop))
		pipeline_nap(0.02);
	if (p->conninfo[0] && pipeline_part_state(p, PP_DATABASE) == PART_RUNNING) {
		/* the last count, after the sink's final commit */
		struct pg_conn *c = pg_connect(p->conninfo, "gpuhealth-console", err, sizeof(err));
		if (c) {
			struct rate_window once = {0}; /* one sample: the rate is left as it was */
			count_rows(p, c, &once);
			pg_close(c);
		}
	}
	if (p->pg) {
		privpg_stop(p->pg, PG_STOP_TIMEOUT_S);
		privpg_destroy(p->pg);
		p->pg = NULL;
		pipeline_stop_part(p, PP_DATABASE);
	}
	return NULL;
}

void pipeline_db_start(struct pipeline *p)
{
	if (!p->fleet_db) {
		if (privpg_find_bindir(p->bindir, sizeof(p->bindir)) != 0) {
			pipeline_set_part(
			    p, PP_DATABASE, PART_OFF,
			    "none: PostgreSQL server binaries not found (install postgresql, or "
			    "give --db)",
			    NULL);
			pipeline_set_part(p, PP_SINK, PART_OFF, "no database", NULL);
			pipeline_set_part(p, PP_SCORER, PART_OFF, "no database", NULL);
			return;
		}
		if (privpg_state_dir(p->state_dir, sizeof(p->state_dir)) != 0) {
			pipeline_set_part(
			    p, PP_DATABASE, PART_FAILED, "no state directory",
			    "neither XDG_STATE_HOME nor HOME is set; set one, or give --db");
			return;
		}
	}
	int rc = pthread_create(&p->db_thread, NULL, db_main, p);
	if (rc) {
		pipeline_set_part(p, PP_DATABASE, PART_FAILED, NULL,
		                  "cannot start the database thread");
		return;
	}
	p->db_thread_started = true;
}
