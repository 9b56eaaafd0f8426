#include "sink/sink_db.h"

#include <errno.h>
#include <libpq-fe.h>
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
#include "store/pgcopy.h"

void sink_db_close(struct sink *s, int w)
{
	if (s->db[w])
		PQfinish(s->db[w]);
	s->db[w] = NULL;
	pthread_mutex_lock(&s->lock);
	s->st.db_connected = false;
	pthread_mutex_unlock(&s->lock);
}

/* Connects, creates the staging table, reads the retention. Returns 0 or -EIO. */
int sink_db_ensure(struct sink *s, int w)
{
	char err[512];
	if (s->db[w] && PQstatus(s->db[w]) == CONNECTION_OK && !s->reconnect[w])
		return 0;
	sink_db_close(s, w);
	s->reconnect[w] = false;
	s->db[w] = pg_connect(s->conninfo, "gpuhealth-sink", err, sizeof(err));
	if (!s->db[w]) {
		sink_set_error(s, "%s", err);
		return -EIO;
	}
	if (pg_session_read_only(s->db[w])) {
		/* a standby, or a primary fenced read-only: retried, like a server that is away */
		sink_set_error(s,
		               "the database server at %s:%s (--db) is read-only (a standby, or "
		               "default_transaction_read_only on): list every host in --db and add "
		               "target_session_attrs=read-write",
		               PQhost(s->db[w]), PQport(s->db[w]));
		sink_db_close(s, w);
		return -EIO;
	}
	if (s->db_was_up[w]) {
		/* a new connection after a loss, maybe to another server: merge every GPU again */
		sink_gpus_forget(s);
		workloads_forget(s->workloads);
	}
	s->db_was_up[w] = true;
	if (pg_exec(s->db[w], "SELECT gpuhealth_create_stage()", err, sizeof(err))) {
		sink_set_error(s, "database not ready (%s): run 'gpuhealth db migrate'", err);
		sink_db_close(s, w);
		return -EIO;
	}
	if (pg_exec(s->db[w], "SELECT gpuhealth_create_rollup_stage()", err, sizeof(err))) {
		sink_set_error(
		    s, "database schema older than this sink (%s): run 'gpuhealth db migrate'",
		    err);
		sink_db_close(s, w);
		return -EIO;
	}
	PGresult *r = PQexec(s->db[w], "SELECT to_regclass('gpuhealth_rollup_mark') IS NOT NULL");
	bool mark = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
	            strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	atomic_store(&s->has_mark, mark);
	bool wl = workloads_db_ready(s->db[w]);
	atomic_store(&s->has_workloads, wl);
	r = PQexec(s->db[w], "SELECT to_regprocedure('gpuhealth_fleet_now_sink()') IS NOT NULL");
	atomic_store(&s->has_fleet_now, PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
	                                    strcmp(PQgetvalue(r, 0, 0), "t") == 0);
	PQclear(r);
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
	r = PQexec(s->db[w], "SELECT extract(epoch FROM value::interval) FROM gpuhealth_settings "
	                     "WHERE key = 'retention'");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		s->retention_s = strtod(PQgetvalue(r, 0, 0), NULL);
	PQclear(r);
	pthread_mutex_lock(&s->lock);
	s->st.db_connected = true;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* SQLSTATE classes that a retry cannot fix: the data itself is refused. */
static bool is_data_error(const char *state)
{
	return state && (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0);
}

/* Runs one statement expecting tuples or a command; on error returns -EINVAL for refused data,
 * -EIO otherwise, with the message in err and the SQLSTATE in state. */
int sink_db_result(struct sink *s, int w, PGresult *r, char *err, size_t errlen, char state[6])
{
	ExecStatusType st = PQresultStatus(r);
	int rc = 0;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		const char *m = PQresultErrorMessage(r);
		snprintf(err, errlen, "%s", m && *m ? m : PQerrorMessage(s->db[w]));
		const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		snprintf(state, 6, "%s", code ? code : "");
		rc = is_data_error(code) ? -EINVAL : -EIO;
		if (pg_sqlstate_reconnect(code)) /* e.g. the server is read-only now: another */
			s->reconnect[w] = true;
	}
	return rc;
}

/* COPY ... FROM STDIN of text. Returns 0, -EINVAL (data refused) or -EIO. */
int sink_db_copy_in(struct sink *s, int w, const char *sql, bool binary, const char *text,
                    size_t len, char *err, size_t errlen, char state[6])
{
	PGresult *r = PQexec(s->db[w], sql);
	int rc = 0;
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		rc = sink_db_result(s, w, r, err, errlen, state);
		PQclear(r);
		return rc ? rc : -EIO;
	}
	PQclear(r);
	if (binary && PQputCopyData(s->db[w], pgcopy_header, PGCOPY_HEADER_LEN) != 1) {
		snprintf(err, errlen, "COPY: %s", PQerrorMessage(s->db[w]));
		return -EIO;
	}
	for (size_t off = 0; off < len;) {
		size_t n = len - off > (1u << 20) ? (1u << 20) : len - off;
		if (PQputCopyData(s->db[w], text + off, (int)n) != 1) {
			snprintf(err, errlen, "COPY: %s", PQerrorMessage(s->db[w]));
			return -EIO;
		}
		off += n;
	}
	if (binary && PQputCopyData(s->db[w], pgcopy_trailer, sizeof(pgcopy_trailer)) != 1) {
		snprintf(err, errlen, "COPY: %s", PQerrorMessage(s->db[w]));
		return -EIO;
	}
	if (PQputCopyEnd(s->db[w], NULL) != 1) {
		snprintf(err, errlen, "COPY end: %s", PQerrorMessage(s->db[w]));
		return -EIO;
	}
	r = PQgetResult(s->db[w]);
	rc = sink_db_result(s, w, r, err, errlen, state);
	PQclear(r);
	while ((r = PQgetResult(s->db[w])))
		PQclear(r);
	return rc;
}

int sink_db_exec(struct sink *s, int w, const char *sql, int n, const char *const *params,
                 PGresult **out, char *err, size_t errlen, char state[6])
{
	PGresult *r = PQexecParams(s->db[w], sql, n, NULL, params, NULL, NULL, 0);
	int rc = sink_db_result(s, w, r, err, errlen, state);
	if (out && !rc)
		*out = r;
	else
		PQclear(r);
	return rc;
}

/* After a failed statement of writer w: its results drained, then its transaction rolled back,
 * or its connection closed when that is gone or when the failure asks for another connection
 * (pg_sqlstate_reconnect: a read-only server, a shutdown). */
void sink_db_abort(struct sink *s, int w)
{
	PGresult *r;
	while ((r = PQgetResult(s->db[w])))
		PQclear(r);
	if (PQstatus(s->db[w]) == CONNECTION_OK && !s->reconnect[w]) {
		char ignore[128], st2[6];
		sink_db_exec(s, w, "ROLLBACK", 0, NULL, NULL, ignore, sizeof(ignore), st2);
	} else {
		sink_db_close(s, w);
	}
}
