#include "sink/sink_db.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "sink/sink_gpus.h"
#include "sink/sink_int.h"
#include "sink/workloads.h"
#include "store/pg.h"
#include "store/pgconn.h"

void sink_db_close(struct sink *s, int w)
{
	pgconn_close(s->pg[w]);
	pthread_mutex_lock(&s->lock);
	s->st.db_connected = false;
	pthread_mutex_unlock(&s->lock);
}

/* Connects (store/pgconn.h: a lost session re-opened with PQreset, a read-only one refused),
 * creates the staging tables, reads the retention. Returns 0 or -EIO. */
int sink_db_ensure(struct sink *s, int w)
{
	char err[512];
	int rc = pgconn_ensure(s->pg[w], PGCONN_WRITER, err, sizeof(err));
	if (rc == 0)
		return 0;
	if (rc < 0) {
		sink_set_error(s, "%s", err);
		sink_db_close(s, w);
		return -EIO;
	}
	if (s->db_was_up[w]) {
		/* a new connection after a loss, maybe to another server: merge every GPU again */
		sink_gpus_forget(s);
		workloads_forget(s->workloads);
	}
	s->db_was_up[w] = true;
	if (pg_exec(pgconn_db(s->pg[w]), "SELECT gpuhealth_create_stage()", err, sizeof(err))) {
		sink_set_error(s, "database not ready (%s): run 'gpuhealth db migrate'", err);
		sink_db_close(s, w);
		return -EIO;
	}
	if (pg_exec(pgconn_db(s->pg[w]), "SELECT gpuhealth_create_rollup_stage()", err, sizeof(err))) {
		sink_set_error(
		    s, "database schema older than this sink (%s): run 'gpuhealth db migrate'",
		    err);
		sink_db_close(s, w);
		return -EIO;
	}
	PGresult *r = pg_exec_simple(pgconn_db(s->pg[w]),
	                             "SELECT to_regclass('gpuhealth_rollup_mark') IS NOT NULL");
	bool mark = pg_tuples_ok(r) && pg_rows(r) == 1 && strcmp(pg_text(r, 0, 0), "t") == 0;
	pg_clear(r);
	atomic_store(&s->has_mark, mark);
	bool wl = workloads_db_ready(pgconn_db(s->pg[w]));
	atomic_store(&s->has_workloads, wl);
	r = pg_exec_simple(pgconn_db(s->pg[w]),
	                   "SELECT to_regprocedure('gpuhealth_fleet_now_sink()') IS NOT NULL");
	atomic_store(&s->has_fleet_now,
	             pg_tuples_ok(r) && pg_rows(r) == 1 && strcmp(pg_text(r, 0, 0), "t") == 0);
	pg_clear(r);
	if (!wl && !atomic_exchange(&s->workloads_missing_told, true))
		log_warn("sink: the database schema is older than version 13 (no "
		         "gpuhealth_merge_workloads): the GPUs' workloads are not recorded; run "
		         "'gpuhealth db migrate'");
	if (!mark && !atomic_exchange(&s->mark_missing_told, true)) {
		log_warn(
		    "sink: the database schema is older than version 6 (no gpuhealth_rollup_mark): "
		    "every batch merges its 1-minute rollups, the slow way; run 'gpuhealth db "
		    "migrate'");
	}
	r = pg_exec_simple(pgconn_db(s->pg[w]),
	                   "SELECT extract(epoch FROM value::interval) FROM gpuhealth_settings "
	                   "WHERE key = 'retention'");
	if (pg_tuples_ok(r) && pg_rows(r) == 1)
		s->retention_s = pg_double(r, 0, 0);
	pg_clear(r);
	pthread_mutex_lock(&s->lock);
	s->st.db_connected = true;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

int sink_db_result(struct sink *s, int w, PGresult *r, char *err, size_t errlen, char state[6])
{
	return pgconn_result(s->pg[w], r, err, errlen, state);
}

int sink_db_copy_in(struct sink *s, int w, const char *sql, bool binary, const char *text,
                    size_t len, char *err, size_t errlen, char state[6])
{
	return pgconn_copy_in(s->pg[w], sql, binary, text, len, err, errlen, state);
}

int sink_db_exec(struct sink *s, int w, const char *sql, int n, const char *const *params,
                 PGresult **out, char *err, size_t errlen, char state[6])
{
	return pgconn_exec(s->pg[w], sql, n, params, out, err, errlen, state);
}

void sink_db_abort(struct sink *s, int w)
{
	pgconn_abort(s->pg[w]);
	if (!pgconn_db(s->pg[w]))
		sink_db_close(s, w); /* the session went: say so in the stats */
}
