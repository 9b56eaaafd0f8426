/*
 * sink_db: the sink writers' PostgreSQL connections and the statement helpers of the sink
 * service (private to src/sink/: sink_int.h). Writer w uses only its own session, s->pg[w]
 * (store/pgconn.h; owned by the sink; closed by sink_db_close). sink_db_ensure connects when
 * there is none or the last statement asked for a new one (a lost session is re-opened with
 * PQreset), refuses a read-only server, creates the session's
 * staging tables, reads what the schema has (the rollup mark, gpu_workloads, the fleet
 * overview's merge) and the retention; after a lost connection every GPU is merged again.
 * The helpers return 0, -EINVAL when the database refuses the data (SQLSTATE class 22 or 23)
 * or -EIO (retried), with the message in err and the SQLSTATE in state; a SQLSTATE that a new
 * connection may get past (pg_sqlstate_reconnect) marks the connection to be replaced.
 */
#ifndef GPUHEALTH_SINK_DB_H
#define GPUHEALTH_SINK_DB_H

#include <stdbool.h>
#include <stddef.h>

struct pg_result; /* libpq's PGresult */

struct sink;

/* Connects writer w, creates the staging tables, reads the retention. Returns 0 or -EIO (the
 * reason in the stats' last_error). */
int sink_db_ensure(struct sink *s, int w);
/* Closes writer w's connection (none: nothing) and marks the database disconnected. */
void sink_db_close(struct sink *s, int w);
/* The result r of one statement expecting tuples or a command (r stays the caller's). */
int sink_db_result(struct sink *s, int w, struct pg_result *r, char *err, size_t errlen,
                   char state[6]);
/* COPY ... FROM STDIN of [text, text+len): text format, or binary (the header and trailer are
 * added here around binary COPY tuples). */
int sink_db_copy_in(struct sink *s, int w, const char *sql, bool binary, const char *text,
                    size_t len, char *err, size_t errlen, char state[6]);
/* PQexecParams with n text parameters; on success *out (when out is not NULL) is the result,
 * which the caller PQclears. */
int sink_db_exec(struct sink *s, int w, const char *sql, int n, const char *const *params,
                 struct pg_result **out, char *err, size_t errlen, char state[6]);
/* After a failed statement of writer w: its results drained, then its transaction rolled back,
 * or its connection closed when that is gone or when the failure asks for another connection
 * (pg_sqlstate_reconnect: a read-only server, a shutdown). */
void sink_db_abort(struct sink *s, int w);

#endif
